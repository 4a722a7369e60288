// Recovery from an intent left at every step of every operation, against a
// fake host: the real plans are applied up to a step, as if boxctl had been
// killed right after it, then recovery runs. The outcome must be the old
// state (rolled back) or the new one (completed), never a mix.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { deletePlan } from "../../../src/ops/delete-instance.ts";
import { recoverInterrupted, switchCommitted } from "../../../src/ops/recover.ts";
import { resetPlan } from "../../../src/ops/reset.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { switchPlan } from "../../../src/ops/switch-plan.ts";
import type { Plan } from "../../../src/plan/apply.ts";
import { type Intent, newIntent, readIntent } from "../../../src/plan/intent.ts";
import {
  COMMIT_FROM,
  CUTOVER_STEPS,
  DELETE_STEPS,
  FALLBACK_STEPS,
  RESET_STEPS,
} from "../../../src/plan/steps.ts";
import { instanceOf, type MachineState } from "../../../src/store/machine.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { tempRoot } from "../../lib/fake-store.ts";
import { interruptAfter as interruptAt, machineState, newInstance } from "../../lib/interrupt.ts";

const M = "db1";
const opts = { timeoutMs: 20_000 };
const state = (): MachineState => machineState(M);
const marker = (gen: number) => `${paths.upper(M, gen)}/marker`;

const interruptAfter = (h: FakeHost, plan: Plan, step: string) => interruptAt(h, M, plan, step);

/** A machine on foo-0.2 (gen 2) with foo-0.1 (gen 1) as fallback, each with a change. */
async function twoInstances(h: FakeHost): Promise<void> {
  await cutover(h, M, "foo-0.1", opts);
  writeFileSync(marker(1), "one\n");
  await cutover(h, M, "foo-0.2", opts);
  writeFileSync(marker(2), "two\n");
}

describe("recovery from an interrupted operation", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1", "foo-0.2", "foo-0.3"]);
    h = new FakeHost();
    await twoInstances(h);
  });

  it("cutover killed in the middle of 'carry': the view is released, the old instance untouched, rolled back", async () => {
    const m = state();
    const target = newInstance(3, "foo-0.3");
    const intent = newIntent("cutover-instance", m, target, true);
    await interruptAfter(h, switchPlan(m, intent, target, true, opts), "create-instance");
    // As a kill -9 inside the carry step leaves it: its read-only view still mounted.
    h.mounts.set(paths.carryView(M), "");
    await recoverInterrupted(h, M, opts.timeoutMs);
    assert.equal(h.mounts.has(paths.carryView(M)), false);
    assert.deepEqual([state().current, state().fallback], [2, 1]);
    assert.equal(readFileSync(marker(2), "utf8"), "two\n");
  });

  for (const step of CUTOVER_STEPS) {
    it(`cutover killed after '${step}': ${CUTOVER_STEPS.indexOf(step) >= CUTOVER_STEPS.indexOf(COMMIT_FROM) ? "completed" : "rolled back"}`, async () => {
      const m = state();
      const target = newInstance(3, "foo-0.3");
      const intent = newIntent("cutover-instance", m, target, true);
      await interruptAfter(h, switchPlan(m, intent, target, true, opts), step);
      const committed = switchCommitted(intent, state());
      await recoverInterrupted(h, M, opts.timeoutMs);
      const after = state();
      assert.equal(readIntent(M), null);
      if (committed) assert.deepEqual([after.current, after.fallback], [3, 2]);
      else assert.deepEqual([after.current, after.fallback], [2, 1]);
      assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, after.current ?? 0));
      assert.equal(h.units.get(`systemd-nspawn@${M}.service`)?.active, "active");
      assert.equal(readFileSync(marker(2), "utf8"), "two\n", "the old instance is untouched");
      if (existsSync(paths.upper(M, 3)))
        assert.ok(instanceOf(after, 3), "a created instance is always recorded");
    });
  }

  for (const step of FALLBACK_STEPS) {
    it(`fallback killed after '${step}'`, async () => {
      const m = state();
      const target = instanceOf(m, m.fallback);
      assert.ok(target);
      const intent = newIntent("fallback-instance", m, target, true);
      await interruptAfter(h, switchPlan(m, intent, target, false, opts), step);
      const committed = switchCommitted(intent, state());
      await recoverInterrupted(h, M, opts.timeoutMs);
      const after = state();
      assert.deepEqual([after.current, after.fallback], committed ? [1, 2] : [2, 1]);
      assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, after.current ?? 0));
      assert.equal(readFileSync(marker(1), "utf8"), "one\n");
      assert.equal(readFileSync(marker(2), "utf8"), "two\n");
    });
  }

  for (const step of RESET_STEPS) {
    it(`reset of the running current instance killed after '${step}' is finished`, async () => {
      const m = state();
      const inst = instanceOf(m, m.current);
      assert.ok(inst);
      const intent = newIntent("reset", m, inst, true);
      await interruptAfter(h, resetPlan(m, intent, inst, opts.timeoutMs), step);
      await recoverInterrupted(h, M, opts.timeoutMs);
      assert.equal(existsSync(marker(2)), false, "the changes are gone");
      assert.equal(readFileSync(marker(1), "utf8"), "one\n", "other instances keep theirs");
      assert.equal(existsSync(`${paths.upper(M, 2)}.discarded`), false);
      assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, 2));
      assert.equal(h.units.get(`systemd-nspawn@${M}.service`)?.active, "active");
      assert.equal(readIntent(M), null);
    });
  }

  for (const step of DELETE_STEPS) {
    it(`delete-instance killed after '${step}' is finished`, async () => {
      const m = state();
      const inst = instanceOf(m, 1);
      assert.ok(inst);
      await interruptAfter(
        h,
        deletePlan(m, newIntent("delete-instance", m, inst, false), inst),
        step,
      );
      await recoverInterrupted(h, M, opts.timeoutMs);
      const after = state();
      assert.equal(instanceOf(after, 1), undefined);
      assert.equal(after.fallback, null);
      assert.equal(existsSync(paths.instance(M, 1)), false);
      assert.equal(readFileSync(marker(2), "utf8"), "two\n");
      assert.equal(readIntent(M), null);
    });
  }
});

describe("recovery decision", () => {
  const intent = (verb: Intent["verb"], step: string): Intent => ({
    version: 1,
    verb,
    pid: 1,
    started: new Date().toISOString(),
    oldCurrent: 1,
    oldFallback: null,
    target: 2,
    wasRunning: true,
    step,
  });
  const m = { current: 1 } as MachineState;
  it("rolls back before the new instance has booted, completes after", () => {
    for (const [verb, steps] of [
      ["cutover-instance", CUTOVER_STEPS],
      ["fallback-instance", FALLBACK_STEPS],
    ] as const) {
      for (const step of ["none", ...steps]) {
        const done = step === "wait-booted" || step === "commit";
        assert.equal(switchCommitted(intent(verb, step), m), done, `${verb} ${step}`);
      }
    }
  });
  it("treats a committed state file as completed whatever the step says", () => {
    assert.equal(
      switchCommitted(intent("cutover-instance", "start"), { current: 2 } as MachineState),
      true,
    );
  });
  it("has crash steps named once each", () => {
    assert.equal(new Set(CUTOVER_STEPS).size, CUTOVER_STEPS.length);
    assert.ok(FALLBACK_STEPS.every((s) => (CUTOVER_STEPS as readonly string[]).includes(s)));
  });
});
