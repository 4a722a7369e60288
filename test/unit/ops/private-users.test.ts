// cutover-instance and fallback-instance with private users, against a
// fake host: each machine's uid range, the instance's idmapped view of its
// image, and NAME.nspawn following the instance on a fallback.
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { BASE_MIN } from "../../../src/base/uids.ts";
import { mountUnitName } from "../../../src/host/systemd.ts";
import { cutover, fallback } from "../../../src/ops/switch.ts";
import { VIEW_SCRIPT } from "../../../src/overlay/views.ts";
import { mountUnitPath } from "../../../src/overlay/wiring.ts";
import { loadMachine } from "../../../src/store/machine.ts";
import { capture } from "../../lib/capture.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { recordOf, tempRoot } from "../../lib/fake-store.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const machine = () => recordOf(M);

describe("private users", {
  skip: process.getuid?.() !== 0 && "needs root: chowns to a uid range",
}, () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
  });
  const nspawn = () => readFileSync(paths.nspawnFile(M), "utf8");

  it("gives each machine its own range, kept for all its instances", async () => {
    await cutover(h, M, "foo-0.1", opts);
    await cutover(h, "db", "foo-0.1", opts);
    await cutover(h, M, "foo-0.2", opts);
    const m = machine();
    assert.equal(m.uidBase, BASE_MIN);
    assert.deepEqual(
      m.instances.map((i) => i.uidBase),
      [BASE_MIN, BASE_MIN],
    );
    assert.equal(loadMachine("db")?.uidBase, BASE_MIN + 65536);
    assert.equal(statSync(paths.upper(M, 2)).uid, BASE_MIN, "the upper dir is the range's root's");
    const unit = readFileSync(join(paths.unitDir(), "boxctl-view-web1-2.service"), "utf8");
    assert.match(
      unit,
      new RegExp(
        `^ExecStart=/usr/bin/perl \\S+ \\S+/images/foo-0.2/rootfs \\S+/views/web1/2 ${BASE_MIN} 65536$`,
        "m",
      ),
    );
    const mount = readFileSync(mountUnitPath(M), "utf8");
    assert.match(mount, /^Requires=boxctl-view-web1-2.service$/m);
    assert.match(mount, /lowerdir=\S+\/views\/web1\/2,/);
    assert.equal(readFileSync(paths.viewScript(), "utf8"), VIEW_SCRIPT);
  });

  it("--private-users no makes an instance without them; the machine keeps the choice", async () => {
    await cutover(h, M, "foo-0.1", { ...opts, privateUsers: false });
    assert.equal(machine().instances[0]?.uidBase, null);
    assert.match(nspawn(), /^PrivateUsers=no$/m);
    assert.doesNotMatch(readFileSync(mountUnitPath(M), "utf8"), /views/);
    await cutover(h, M, "foo-0.2", opts);
    assert.equal(machine().instances[1]?.uidBase, null);
  });

  it("falls back and forth between an instance without private users and one with", async () => {
    await cutover(h, M, "foo-0.1", { ...opts, privateUsers: false });
    await cutover(h, M, "foo-0.2", { ...opts, privateUsers: true });
    assert.match(nspawn(), /^PrivateUsers=1879048192:65536$/m);
    await fallback(h, M, opts);
    assert.match(nspawn(), /^PrivateUsers=no$/m, "NAME.nspawn follows the instance");
    assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, 1));
    await fallback(h, M, opts);
    assert.match(nspawn(), /^PrivateUsers=1879048192:65536$/m);
  });

  it("says what the image's view said when the new root cannot be mounted", async () => {
    const mount = mountUnitName(paths.machineRoot(M));
    const view = "boxctl-view-web1-1.service";
    h.failsToMount.add(mount);
    h.unitLog.set(view, [
      "idmap-view: mount_setattr (idmap 0:1879048192:65536) on /x/rootfs: Invalid argument",
      "idmap-view: its file system cannot be idmapped; private users need the store on one that can (ext4, xfs, btrfs; tmpfs from Linux 6.3)",
    ]);
    h.unitLog.set(mount, [`${mount}: Job ${mount}/start failed with result 'dependency'.`]);
    const stderr = await capture("stderr", () =>
      assert.rejects(cutover(h, M, "foo-0.1", opts), /left stopped with no current instance/),
    );
    assert.ok(stderr.includes(`${view}, ${mount} said:\n    idmap-view: mount_setattr`), stderr);
    assert.match(stderr, /its file system cannot be idmapped/);
    assert.ok(h.commands.includes("journalctl --sync"), "journald has stored what it was sent");
    const j = h.commands.find((c) => c.startsWith("journalctl -u "));
    assert.match(
      j ?? "",
      /^journalctl -u \S+ -u \S+ --since=@\d+\.\d{3} -n 12 -q --no-pager -o json$/,
    );
  });

  it("gives a new instance its own machine ID when the image carries one", async () => {
    mkdirSync(join(paths.imageRoot("foo-0.1"), "var/lib/dbus"), { recursive: true });
    writeFileSync(
      join(paths.imageRoot("foo-0.1"), "var/lib/dbus/machine-id"),
      `${"a".repeat(32)}\n`,
    );
    await cutover(h, M, "foo-0.1", opts);
    const link = join(paths.upper(M, 1), "var/lib/dbus/machine-id");
    assert.equal(readlinkSync(link), "/etc/machine-id");
    assert.equal(lstatSync(link).uid, BASE_MIN);
    assert.equal(statSync(join(paths.upper(M, 1), "var")).uid, BASE_MIN);
  });
});
