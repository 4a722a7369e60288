// What cutover-instance refuses before it stops or changes anything: a
// busy root, an image that cannot boot, a store on overlayfs, a new
// machine's name that machined already knows, and a new machine's settings
// where nspawn would not read them. Against a fake host.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeEach, describe, it } from "node:test";
import type { BoxError } from "../../../src/base/errors.ts";
import { paths } from "../../../src/base/paths.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { OVERLAYFS_MAGIC, refuseOverlayStore } from "../../../src/store/instances.ts";
import { emptyMachine, loadMachine, saveMachine } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { recordOf, tempRoot } from "../../lib/fake-store.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const machine = () => recordOf(M);
const nspawn = `systemd-nspawn@${M}.service`;

describe("cutover-instance refuses before it changes anything", () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
  });

  it("refuses a busy root before the container was ever stopped", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.busy.add(paths.machineRoot(M));
    h.calls.length = 0;
    await assert.rejects(cutover(h, M, "foo-0.2", opts), /failed/);
    const firstStop = h.commands.indexOf(`systemctl stop ${nspawn}`);
    const firstUmount = h.commands.findIndex((c) => c.startsWith("umount"));
    assert.ok(firstUmount >= 0 && (firstStop < 0 || firstStop > firstUmount));
    assert.equal(machine().current, 1);
  });

  it("refuses an image without systemd before it stops or changes anything, dry run or not", async () => {
    await cutover(h, M, "foo-0.1", opts);
    rmSync(join(paths.imageRoot("foo-0.2"), "usr/lib/systemd/systemd"));
    const before = readFileSync(paths.machineState(M), "utf8");
    for (const host of [new FakeHost({ dryRun: true }), h]) {
      host.calls.length = 0;
      await assert.rejects(cutover(host, M, "foo-0.2", opts), (e: BoxError) => {
        assert.match(
          e.message,
          /^image 'foo-0.2' cannot boot as a boxctl container: it has no systemd/,
        );
        assert.match(e.hint ?? "", /systemd-sysv/);
        return true;
      });
      assert.deepEqual(
        host.commands.filter((c) => !c.startsWith("flock ")),
        [],
        "no command but the locks ran",
      );
    }
    assert.equal(readFileSync(paths.machineState(M), "utf8"), before);
    assert.equal(existsSync(paths.instance(M, 2)), false);
    assert.equal(h.units.get(nspawn)?.active, "active", "web1 still runs");
  });

  it("refuses a store on overlayfs, whose upper dirs the kernel would not mount", () => {
    assert.throws(() => refuseOverlayStore(OVERLAYFS_MAGIC), /is on overlayfs/);
    refuseOverlayStore(0xef53); // ext4
    refuseOverlayStore(undefined); // not there yet
  });

  it("refuses a new machine's name that is not a hostname before anything, even a lock; an old one keeps it", async () => {
    await assert.rejects(
      cutover(h, "a.b_c", "foo-0.1", opts),
      /systemd-nspawn takes only a hostname/,
    );
    assert.deepEqual(h.commands, []);
    // A machine made by an older boxctl, which took '_': delete-machine and the rest still reach it.
    mkdirSync(paths.machine("old_1"), { recursive: true });
    saveMachine(h, emptyMachine("old_1"));
    await cutover(h, "old_1", "foo-0.1", opts);
    assert.equal(recordOf("old_1").current, 1);
  });

  it("refuses a new machine's name that machined knows: a machine running from elsewhere, an image elsewhere", async () => {
    const cases = [
      [
        { unit: "machine-web1.scope" },
        /: a machine named web1 is already running \(machine-web1\.scope\)/,
      ],
      [
        { image: "/etc/machines/web1" },
        /: an image named web1 already exists at \/etc\/machines\/web1/,
      ],
    ] as const;
    for (const [known, message] of cases) {
      h.machined.clear();
      h.machined.set(M, known);
      h.calls.length = 0;
      await assert.rejects(cutover(h, M, "foo-0.1", opts), message);
      assert.deepEqual(
        h.commands.filter((c) => !c.startsWith("flock ") && !c.startsWith("machinectl show")),
        [],
        "nothing but the locks and the looks ran",
      );
      assert.equal(loadMachine(M), null, "no record");
      assert.equal(existsSync(paths.machineRoot(M)), false, "no mount point");
    }
    // A machine boxctl already manages is not asked about again.
    h.machined.clear();
    await cutover(h, M, "foo-0.1", opts);
    h.machined.set(M, { unit: nspawn });
    h.calls.length = 0;
    await cutover(h, M, "foo-0.2", opts);
    assert.ok(
      !h.commands.some((c) => c.startsWith("machinectl show-image")),
      h.commands.join("\n"),
    );
  });

  it("refuses a new machine whose settings nspawn would no longer read, and says where they go", async () => {
    for (const shadowed of paths.shadowedNspawnFiles(M)) {
      mkdirSync(dirname(shadowed), { recursive: true });
      writeFileSync(shadowed, "[Files]\nBind=/srv/data\n");
      h.calls.length = 0;
      await assert.rejects(cutover(h, M, "foo-0.1", opts), (e: BoxError) => {
        assert.equal(
          e.message,
          `${shadowed} would be ignored: boxctl writes web1's settings to ${paths.nspawnFile(M)}, and systemd-nspawn reads only the first NAME.nspawn it finds, ${paths.nspawnDir()} first`,
        );
        assert.equal(
          e.hint,
          `move it there (mv ${shadowed} ${paths.nspawnFile(M)}); boxctl keeps its lines and adds its own`,
        );
        return true;
      });
      assert.equal(loadMachine(M), null, "no record");
      assert.equal(existsSync(paths.machineRoot(M)), false, "no mount point");
      rmSync(shadowed);
    }
    // Where the hint puts them, they are kept, boxctl's two lines added.
    mkdirSync(paths.nspawnDir(), { recursive: true });
    writeFileSync(paths.nspawnFile(M), "[Files]\nBind=/srv/data\n");
    await cutover(h, M, "foo-0.1", opts);
    assert.match(readFileSync(paths.nspawnFile(M), "utf8"), /Bind=\/srv\/data\n/);
  });
});
