// Interrupting a plan the way kill -9 would, for the recovery and power-cut
// unit tests against the fake host.
import assert from "node:assert/strict";
import { apply, type Plan } from "../../src/plan/apply.ts";
import { readIntent } from "../../src/plan/intent.ts";
import { type Instance, loadMachine, type MachineState } from "../../src/store/machine.ts";
import type { FakeHost } from "./fake-host.ts";

/** The machine's record, which must exist. */
export function machineState(name: string): MachineState {
  const m = loadMachine(name);
  assert.ok(m, `${name} has a machine.json`);
  return m;
}

/** Applies plan's steps up to and including step, then stops as a kill -9 would. */
export async function interruptAfter(
  h: FakeHost,
  name: string,
  plan: Plan,
  step: string,
): Promise<void> {
  const upTo = plan.steps.findIndex((s) => s.name === step);
  assert.ok(upTo >= 0, `${step} is a step of the plan`);
  await apply(h, { ...plan, steps: plan.steps.slice(0, upTo + 1) });
  assert.equal(readIntent(name)?.step, step);
}

/** The record of an instance that a cutover is about to create. */
export function newInstance(gen: number, image: string): Instance {
  return { gen, image, created: new Date().toISOString(), lastActive: null };
}
