// Crash safety. boxctl is killed with SIGKILL (the documented
// hook BOXCTL_CRASH_AFTER=STEP) right after each step of a cutover and of
// a fallback; the next boxctl command must leave the machine exactly on
// the old instance or exactly on the new one with the old as fallback,
// running, with no upper dir lost or changed.
//
// Each step runs on one of the two test hosts, alternately (shareOf in
// test/host/suites.ts); BOXCTL_TEST_FULL=1 runs every step on both.
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
  twoInstancesWithData,
  upSince,
  userDataSum,
} from "./instances-helpers.ts";

for (const suite of STABLE_SUITES) {
  describe(`crash safety on ${suite}`, () => {
    let host: TestHost;
    before(async () => {
      host = await TestHost.boot(suite, { store: "tmpfs" });
      await twoInstancesWithData(host);
      ok(await host.boxctl(["fallback-instance", "system1"]));
    });
    after(() => host?.destroy());

    /** Kills boxctl after step, recovers, and checks the machine is whole. */
    async function crashAndRecover(args: string[], step: string) {
      const m0 = await machineJson(host);
      const sums = new Map<number, string>();
      for (const i of m0.instances) sums.set(i.gen, await userDataSum(host, i.gen));
      const [up0, upper0] = [await upSince(host), (await mounted(host)).upper];
      const r = await host.boxctl(args, { env: { BOXCTL_CRASH_AFTER: step } });
      assert.equal(r.code, 137, `boxctl should have been killed after ${step}: ${r.stderr}`);
      if (step === "remount") {
        // The host has the target mounted; the container runs on, untouched, on its own copy of the old root.
        assert.notEqual((await mounted(host)).upper, upper0);
        assert.equal(await upSince(host), up0, "the container was not restarted");
        assert.equal(await isActive(host), true);
      }
      assert.equal(
        (await host.exec(["test", "-e", `${STORE}/machines/system1/intent.json`])).code,
        0,
      );
      const rec = ok(await host.boxctl(["recover", "system1"]), "recover");
      assert.match(rec.stderr, /(completing|rolling back) the interrupted/);
      assert.notEqual(
        (await host.exec(["test", "-e", `${STORE}/machines/system1/intent.json`])).code,
        0,
      );
      const m = await machineJson(host);
      assert.equal(await isActive(host), true, "running after recovery");
      const cur = m.instances.find((i) => i.gen === m.current);
      assert.equal(await release(host), cur?.image === "foo-0.1" ? "0.1" : "0.2");
      assert.equal(
        (await mounted(host)).upper,
        `${STORE}/machines/system1/instances/${m.current}/upper`,
      );
      for (const [gen, sum] of sums)
        assert.equal(await userDataSum(host, gen), sum, `upper of instance ${gen} unchanged`);
      return { m0, m };
    }

    for (const step of shareOf(FALLBACK_STEPS, suite)) {
      it(`fallback-instance killed after '${step}'`, async () => {
        const { m0, m } = await crashAndRecover(["fallback-instance", "system1"], step);
        const want = committed(FALLBACK_STEPS, step)
          ? [m0.fallback, m0.current]
          : [m0.current, m0.fallback];
        assert.deepEqual([m.current, m.fallback], want);
      });
    }

    for (const step of shareOf(CUTOVER_STEPS, suite)) {
      it(`cutover-instance killed after '${step}'`, async () => {
        const { m0, m } = await crashAndRecover(["cutover-instance", "system1", "foo-0.2"], step);
        await checkSettledCutover(host, step, m0, m);
      });
    }
  });
}
