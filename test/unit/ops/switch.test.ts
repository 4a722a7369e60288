// cutover-instance and fallback-instance, run against a fake host: the
// commands in their order, the files they leave, and the automatic
// fallback, in milliseconds. The system tests do the same on real systemd.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { BASE_MIN } from "../../../src/base/uids.ts";
import { cutover, fallback } from "../../../src/ops/switch.ts";
import { CUTOVER_STEPS } from "../../../src/plan/steps.ts";
import { capture } from "../../lib/capture.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { recordOf, tempRoot } from "../../lib/fake-store.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const machine = () => recordOf(M);
const mountedUpper = (h: FakeHost) => h.mounts.get(paths.machineRoot(M));
const nspawn = `systemd-nspawn@${M}.service`;

describe("cutover-instance and fallback-instance", () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2", "broken"]);
    h = new FakeHost();
  });

  it("creates a new machine on its first cutover and boots it", async () => {
    await cutover(h, M, "foo-0.1", opts);
    const m = machine();
    assert.equal(m.current, 1);
    assert.equal(m.fallback, null);
    assert.equal(m.lastOperation?.result, "ok");
    assert.equal(mountedUpper(h), paths.upper(M, 1));
    assert.equal(h.units.get(nspawn)?.active, "active");
    assert.ok(existsSync(paths.upper(M, 1)));
    assert.match(readFileSync(paths.nspawnFile(M), "utf8"), /^PrivateUsers=1879048192:65536$/m);
    assert.equal(existsSync(paths.intent(M)), false, "no intent left behind");
  });

  it("warns after a good boot when the host is nearly out of inotify instances, and only then", async () => {
    const stderr = (fn: () => Promise<unknown>) => capture("stderr", fn);
    h.inotify = { used: 120, max: 128 };
    const low = await stderr(() => cutover(h, M, "foo-0.1", opts));
    assert.match(low, /^boxctl: warning: the host is nearly out of inotify instances \(120 of/m);
    assert.equal(machine().current, 1, "the cutover itself succeeds");
    // A limit of INOTIFY_COUNT_BELOW or more is not counted after a good boot.
    h.inotify = { used: 2040, max: 2048 };
    assert.doesNotMatch(await stderr(() => cutover(h, M, "foo-0.2", opts)), /inotify/);
    h.inotify = { used: 20, max: 128 };
    assert.doesNotMatch(await stderr(() => fallback(h, M, opts)), /inotify/);
  });

  it("mounts the new root only once systemd has noticed the old one's umount", async () => {
    await cutover(h, M, "foo-0.1", opts);
    // systemd follows the mount table, three looks late: a start before that would mount nothing.
    h.unmountLag = 3;
    await cutover(h, M, "foo-0.2", opts);
    assert.equal(mountedUpper(h), paths.upper(M, 2));
    assert.equal(machine().current, 2);
  });

  it("leaves nothing of the switch in /run once committed, not even the drop-in's directory", async () => {
    await cutover(h, M, "foo-0.1", opts);
    await cutover(h, M, "foo-0.2", opts);
    await fallback(h, M, opts);
    assert.deepEqual(readdirSync(paths.runtimeUnitDir()), []);
  });

  it("waits for systemd's reload before it mounts, not after the commit", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.calls.length = 0;
    h.detached.length = 0;
    await cutover(h, M, "foo-0.2", opts);
    const reloads = h.commands
      .map((c, i) => [c, i] as const)
      .filter(([c]) => c === "systemctl daemon-reload");
    const mount = h.commands.findIndex(
      (c) => c.startsWith("systemctl start ") && c.endsWith(".mount"),
    );
    // The switch's reload (waited for, before the mount), and the commit's, started last.
    assert.equal(reloads.length, 2, h.commands.join("\n"));
    assert.ok((reloads[0]?.[1] ?? 99) < mount);
    assert.deepEqual(h.detached, ["systemctl daemon-reload"]);
    assert.equal(
      h.commands.at(-2),
      "systemctl daemon-reload",
      "the commit's reload is started last",
    );
  });

  it("mounts the new instance before the restart, and keeps the old one as fallback", async () => {
    await cutover(h, M, "foo-0.1", opts);
    writeFileSync(join1(), "changed in gen 1\n");
    h.calls.length = 0;
    await cutover(h, M, "foo-0.2", opts);
    const order = [
      (c: string) => c === `umount ${paths.machineRoot(M)}`,
      (c: string) => c.startsWith("systemctl start ") && c.endsWith("-var-lib-machines-web1.mount"),
      (c: string) => c === `systemctl restart ${nspawn}`,
    ].map((is) => h.commands.findIndex(is));
    assert.ok(
      order.every((i) => i >= 0),
      h.commands.join("\n"),
    );
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
      "umount, mount, then restart",
    );
    const m = machine();
    assert.deepEqual([m.current, m.fallback], [2, 1]);
    assert.equal(mountedUpper(h), paths.upper(M, 2));
    assert.equal(
      readFileSync(join1(), "utf8"),
      "changed in gen 1\n",
      "the old instance is untouched",
    );
  });

  it("carries from a read-only view of the old instance before anything switches, and never on a fallback", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.calls.length = 0;
    const res = await cutover(h, M, "foo-0.2", opts);
    assert.equal(res.carry?.policy, "identity", "identity is carried by default");
    const view = paths.carryView(M);
    const mount = h.commands.findIndex((c) => c.startsWith("mount -t overlay") && c.endsWith(view));
    assert.ok(mount >= 0, h.commands.join("\n"));
    assert.ok(
      h.commands[mount]?.includes(`ro,lowerdir=${paths.upper(M, 1)}:${view}.image`),
      "two lower layers, no upper: read-only; the image seen in the instance's uid range",
    );
    assert.ok(
      h.commands.some(
        (c) => c.startsWith("/usr/bin/perl") && c.includes(`${view}.image ${BASE_MIN} 65536`),
      ),
      "the carry mounts its own idmapped view of the old image",
    );
    const released = h.commands.indexOf(`umount ${view}`);
    // The /run unit is staged before the carry (its reload runs beside it); the root is switched after.
    const switched = h.commands.indexOf(`umount ${paths.machineRoot(M)}`);
    assert.ok(mount < released && released < switched, "the view is gone before the switch");
    assert.equal(h.mounts.has(view), false);
    h.calls.length = 0;
    const back = await fallback(h, M, opts);
    assert.equal(back.carry, undefined);
    assert.ok(!h.commands.some((c) => c.startsWith("mount ")), "a fallback never carries");
  });

  it("carries nothing under the policy none, or with --carry none", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.calls.length = 0;
    const none = { identity: false, etc: false, paths: [] };
    const res = await cutover(h, M, "foo-0.2", { ...opts, carry: none });
    assert.equal(res.carry, undefined);
    assert.ok(!h.commands.some((c) => c.startsWith("mount ")));
  });

  it("fallback-instance swaps current and fallback, twice over", async () => {
    await cutover(h, M, "foo-0.1", opts);
    await cutover(h, M, "foo-0.2", opts);
    await fallback(h, M, opts);
    assert.deepEqual([machine().current, machine().fallback], [1, 2]);
    assert.equal(mountedUpper(h), paths.upper(M, 1));
    await fallback(h, M, opts);
    assert.deepEqual([machine().current, machine().fallback], [2, 1]);
  });

  it("falls back on its own when the new instance does not boot, within the user's --timeout", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.failsToBoot.add(paths.upper(M, 2));
    h.calls.length = 0;
    await assert.rejects(
      cutover(h, M, "broken", opts),
      /cutover-instance web1 failed; web1 is running on instance 1 \(foo-0\.1\) again/,
    );
    const m = machine();
    assert.deepEqual([m.current, m.fallback], [1, null]);
    assert.equal(m.lastOperation?.result, "rolled-back");
    assert.match(m.lastOperation?.message ?? "", /after step 'restart'.*stopped while booting/);
    assert.equal(mountedUpper(h), paths.upper(M, 1));
    assert.equal(h.units.get(nspawn)?.active, "active");
    assert.ok(
      m.instances.some((i) => i.gen === 2),
      "the failed instance is kept",
    );
    // Both boots were followed by events (busctl monitor), not by entering the container;
    // that --timeout bounds such a wait is tested in host.test.ts.
    assert.equal(h.commands.filter((c) => c.startsWith("busctl monitor")).length, 2);
    assert.ok(!h.commands.some((c) => c.includes("is-system-running")));
    assert.equal(existsSync(paths.intent(M)), false);
  });

  it("says what the container printed on its way down when it stopped while booting", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.failsToBoot.add(paths.upper(M, 2));
    h.unitLog.set(nspawn, ["Failed to allocate manager object: Too many open files"]);
    const stderr = await capture("stderr", () => assert.rejects(cutover(h, M, "foo-0.2", opts)));
    assert.ok(
      stderr.includes(
        `container web1 stopped while booting (unit failed, result success)\n  ${nspawn} said:\n    Failed to allocate manager object`,
      ),
      stderr,
    );
    // That run's lines only, once journald has stored them.
    const j = h.commands.filter((c) => c.startsWith("journalctl "));
    assert.equal(j[0], "journalctl --sync");
    assert.match(
      j[1] ?? "",
      /^journalctl _SYSTEMD_INVOCATION_ID=(\w{32}) \+ INVOCATION_ID=\1 -n 10 /,
    );
    // The record names the failure; the lines stay in the journal.
    assert.equal(
      machine().lastOperation?.message,
      "failed after step 'restart': container web1 stopped while booting (unit failed, result success)",
    );
  });

  it("falls back when --check fails inside the new instance", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.checkExit = 3;
    await assert.rejects(cutover(h, M, "foo-0.2", { ...opts, check: "false" }), /failed/);
    assert.equal(machine().current, 1);
    assert.match(
      machine().lastOperation?.message ?? "",
      /--check 'false' failed inside web1 \(exit 3\)/,
    );
  });

  it("leaves a new machine stopped with no current instance when its first cutover fails", async () => {
    h.failsToBoot.add(paths.upper(M, 1));
    await assert.rejects(
      cutover(h, M, "broken", opts),
      /web1 is left stopped with no current instance/,
    );
    assert.equal(machine().current, null);
    assert.equal(mountedUpper(h), undefined);
  });

  it("--dry-run prints the plan's steps and changes nothing", async () => {
    await cutover(h, M, "foo-0.1", opts);
    const before = readFileSync(paths.machineState(M), "utf8");
    const dry = new FakeHost({ dryRun: true });
    for (const [k, v] of h.mounts) dry.mounts.set(k, v);
    await cutover(dry, M, "foo-0.2", opts);
    const shown = dry.notes.filter((n) => n.startsWith(`${M}: `)).map((n) => n.split(": ")[1]);
    assert.ok(dry.notes.includes("would carry identity: -"), "the carry is previewed");
    assert.deepEqual(shown, [...CUTOVER_STEPS]);
    assert.equal(readFileSync(paths.machineState(M), "utf8"), before);
    assert.equal(existsSync(paths.instance(M, 2)), false);
    assert.ok(dry.commands.includes(`systemctl restart ${nspawn}`));
  });

  function join1(): string {
    return `${paths.upper(M, 1)}/marker`;
  }
});
