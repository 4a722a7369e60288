// Power cuts (issue 14). An ENABLED machine is cut over or fallen back;
// boxctl stops itself right after a step (BOXCTL_CRASH_AFTER=STEP), and
// the whole test host is killed at that moment (TestHost.powerCut():
// SIGKILL to its init and its nspawn; no shutdown, no unmount, /run gone).
// The host boots again and NO boxctl command is run: boxctl-recover.service
// must have settled the machine before systemd started it, so that it runs
// the old instance (its upper dir unchanged) or the new one with the old
// as fallback, and `boxctl status --json` names what runs. Each step runs
// on one of the two test hosts, alternately (shareOf in test/host/suites.ts);
// BOXCTL_TEST_FULL=1 runs every step on both.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CUTOVER_STEPS, FALLBACK_STEPS } from "../../src/plan/steps.ts";
import { STABLE_SUITES, shareOf, TestHost } from "../host/host.ts";
import {
  checkSettledCutover,
  committed,
  isActive,
  machineJson,
  mounted,
  ok,
  release,
  STORE,
  stageBroken,
  twoInstancesWithData,
  userDataSum,
  writeUserData,
} from "./instances-helpers.ts";
import { beyondSwitches, journal } from "./powercut-more.ts";

const INTENT = `${STORE}/machines/system1/intent.json`;

for (const suite of STABLE_SUITES) {
  describe(`power cuts on ${suite}`, () => {
    let host: TestHost;
    before(async () => {
      host = await TestHost.boot(suite, { store: "tmpfs" });
      await twoInstancesWithData(host);
      ok(await host.boxctl(["enable", "system1"]));
    });
    after(() => host?.destroy());

    /** After a power cut: boots, runs no boxctl command, and checks what runs. */
    async function bootAndCheck(sums: Map<number, string>) {
      await host.start();
      // Enabled: systemd started it at boot. Nothing of boxctl's has run but its recovery unit.
      await host.waitBooted("system1");
      assert.notEqual((await host.exec(["test", "-e", INTENT])).code, 0, "settled at boot");
      // By boxctl-recover.service, which ran (its condition held) and succeeded.
      const unit = Object.fromEntries(
        (
          await host.sh([
            "systemctl",
            "show",
            "-p",
            "ConditionResult,Result,InactiveExitTimestampMonotonic,InactiveEnterTimestampMonotonic",
            "boxctl-recover.service",
          ])
        )
          .trim()
          .split("\n")
          .map((l) => l.split("=") as [string, string]),
      );
      assert.deepEqual([unit.ConditionResult, unit.Result], ["yes", "success"]);
      const ms =
        (Number(unit.InactiveEnterTimestampMonotonic) -
          Number(unit.InactiveExitTimestampMonotonic)) /
        1000;
      process.stderr.write(`# boxctl-recover.service ran for ${ms.toFixed(0)} ms\n`);
      const m = await machineJson(host);
      const cur = m.instances.find((i) => i.gen === m.current);
      assert.equal(await isActive(host), true, "running after the boot");
      assert.equal(
        (await mounted(host)).upper,
        `${STORE}/machines/system1/instances/${m.current}/upper`,
      );
      assert.equal(await release(host), cur?.image === "foo-0.1" ? "0.1" : "0.2");
      for (const [gen, sum] of sums)
        assert.equal(await userDataSum(host, gen), sum, `upper of instance ${gen} unchanged`);
      const status = JSON.parse(ok(await host.boxctl(["status", "system1", "--json"])).stdout);
      assert.equal(status.current.gen, m.current);
      assert.equal(status.mount.instance, m.current, "status names the instance that runs");
      assert.equal(status.attention, null);
      assert.equal(status.state, "running");
      return m;
    }

    async function powerCutAfter(args: string[], step: string) {
      const m0 = await machineJson(host);
      const sums = new Map<number, string>();
      for (const i of m0.instances) sums.set(i.gen, await userDataSum(host, i.gen));
      const r = await host.boxctl(args, { env: { BOXCTL_CRASH_AFTER: step } });
      assert.equal(r.code, 137, `boxctl should have stopped after ${step}: ${r.stderr}`);
      await host.powerCut();
      return { m0, m: await bootAndCheck(sums) };
    }

    for (const step of shareOf(FALLBACK_STEPS, suite)) {
      it(`fallback-instance, power cut after '${step}'`, async () => {
        const { m0, m } = await powerCutAfter(["fallback-instance", "system1"], step);
        const want = committed(FALLBACK_STEPS, step)
          ? [m0.fallback, m0.current]
          : [m0.current, m0.fallback];
        assert.deepEqual([m.current, m.fallback], want);
      });
    }

    for (const step of shareOf(CUTOVER_STEPS, suite)) {
      it(`cutover-instance, power cut after '${step}'`, async () => {
        const { m0, m } = await powerCutAfter(["cutover-instance", "system1", "foo-0.2"], step);
        await checkSettledCutover(host, step, m0, m);
      });
    }

    it("cutover-instance, power cut at a moment in between: while systemd restarts the container", async () => {
      const m0 = await machineJson(host);
      const sums = new Map<number, string>();
      for (const i of m0.instances) sums.set(i.gen, await userDataSum(host, i.gen));
      const run = host.boxctl(["cutover-instance", "system1", "foo-0.2"]);
      // 'remount' done: boxctl is in `systemctl restart`, the container going down or coming up.
      for (let i = 0; i < 1000; i++) {
        const j = await host.exec(["sed", "-n", 's/.*"step": "\\(.*\\)".*/\\1/p', INTENT]);
        if (j.stdout.trim() === "remount") break;
      }
      await host.powerCut();
      await run;
      const m = await bootAndCheck(sums);
      // Whichever it is, it is one of the two, and the other is kept.
      const newGen = Math.max(...m.instances.map((i) => i.gen));
      if (m.current === newGen) assert.equal(m.fallback, m0.current);
      else assert.deepEqual([m.current, m.fallback], [m0.current, m0.fallback]);
      if (m.current === newGen) ok(await host.boxctl(["fallback-instance", "system1"]));
      ok(
        await host.boxctl(["delete-instance", "system1", "foo-0.2", "--instance", String(newGen)]),
      );
    });

    it("a broken image powered off while boxctl waits for its boot comes back on the old instance", async () => {
      await stageBroken(host);
      const m0 = await machineJson(host);
      const sums = new Map<number, string>();
      for (const i of m0.instances) sums.set(i.gen, await userDataSum(host, i.gen));
      // The moment boxctl waits for the boot and its check: 'restart' is
      // the last step done. A broken container fails within a second, so
      // boxctl stops itself there (BOXCTL_CRASH_AFTER) for the power cut
      // to find it at that moment every time.
      const r = await host.boxctl(["cutover-instance", "system1", "broken", "--check", "true"], {
        env: { BOXCTL_CRASH_AFTER: "restart" },
      });
      assert.equal(r.code, 137, r.stderr);
      await host.powerCut();
      const m = await bootAndCheck(sums);
      assert.deepEqual([m.current, m.fallback], [m0.current, m0.fallback]);
      const entries = await journal(host);
      const rec = entries.filter((e) => e.BOXCTL_OPERATION === "recover").at(-1);
      assert.equal(rec?.BOXCTL_RESULT, "rolled-back");
      assert.equal(rec?.BOXCTL_AT_BOOT, "yes");
      assert.equal(rec?.BOXCTL_INTERRUPTED, "cutover-instance");
      assert.equal(rec?.BOXCTL_INSTANCE, String(m0.current));
      const started = entries.filter(
        (e) => e.BOXCTL_OPERATION === "cutover-instance" && e.BOXCTL_IMAGE === "broken",
      );
      assert.equal(started.at(-1)?.BOXCTL_RESULT, "started");
    });

    it("journalctl -t boxctl shows a cutover, a failed check and the automatic fallback", async () => {
      const r = await host.boxctl(["cutover-instance", "system1", "foo-0.2", "--check", "false"]);
      assert.equal(r.code, 1);
      const entries = (await journal(host)).filter(
        (e) => e.BOXCTL_OPERATION === "cutover-instance",
      );
      assert.deepEqual(
        entries.slice(-3).map((e) => e.BOXCTL_RESULT),
        ["started", "check-failed", "rolled-back"],
      );
      const fb = entries.at(-1);
      assert.equal(fb?.BOXCTL_INSTANCE, String((await machineJson(host)).current));
      assert.match(fb?.MESSAGE ?? "", /automatic fallback/);
    });

    it("a reset cut off after discarding is finished at boot: the instance is empty and runs", async () => {
      const m0 = await machineJson(host);
      const cur = m0.instances.find((i) => i.gen === m0.current);
      assert.ok(cur);
      await writeUserData(host, "to-be-reset");
      const sums = new Map<number, string>();
      for (const i of m0.instances)
        if (i.gen !== m0.current) sums.set(i.gen, await userDataSum(host, i.gen));
      // --instance: earlier tests left other instances of the same image, and reset takes the newest.
      const r = await host.boxctl(
        ["reset", "system1", cur.image, "--instance", String(cur.gen), "--yes"],
        {
          env: { BOXCTL_CRASH_AFTER: "discard" },
        },
      );
      assert.equal(r.code, 137, r.stderr);
      await host.powerCut();
      const m = await bootAndCheck(sums);
      assert.deepEqual([m.current, m.fallback], [m0.current, m0.fallback]);
      const gone = await host.inMachine("system1", ["test", "-e", "/root/data/file"]);
      assert.notEqual(gone.code, 0, "the reset's changes are gone");
      const left = await host.sh(["ls", "-A", `${STORE}/machines/system1/instances/${cur.gen}`]);
      assert.doesNotMatch(left, /discarded|\.new/);
    });

    it("a delete-instance cut off after forgetting is finished at boot: not listed, not on disk", async () => {
      const m0 = await machineJson(host);
      const victim = m0.instances.find((i) => i.gen !== m0.current && i.gen !== m0.fallback);
      const target = victim ?? m0.instances.find((i) => i.gen === m0.fallback);
      assert.ok(target);
      const r = await host.boxctl(
        ["delete-instance", "system1", target.image, "--instance", String(target.gen)],
        { env: { BOXCTL_CRASH_AFTER: "forget" } },
      );
      assert.equal(r.code, 137, r.stderr);
      await host.powerCut();
      const m = await bootAndCheck(new Map());
      assert.equal(
        m.instances.some((i) => i.gen === target.gen),
        false,
      );
      const dir = `${STORE}/machines/system1/instances/${target.gen}`;
      assert.notEqual((await host.exec(["test", "-e", dir])).code, 0, `${dir} is removed`);
    });

    beyondSwitches(() => host);
  });
}
