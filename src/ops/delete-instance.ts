// delete-instance NAME IMAGE: remove an instance that is not current.
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { releaseReserve } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import type { Runner } from "../host/runner.ts";
import { removeInstance } from "../overlay/root.ts";
import { apply, intentStep, type Plan } from "../plan/apply.ts";
import { clearIntent, type Intent, newIntent } from "../plan/intent.ts";
import type { DeleteStep } from "../plan/steps.ts";
import {
  describe,
  forgetInstance,
  type Instance,
  instanceOfImage,
  type MachineState,
  requireMachine,
} from "../store/machine.ts";
import { guarded } from "./guard.ts";

/** The record first, then the directories: a crash between the two is finished by recovery. */
export function deletePlan(m: MachineState, intent: Intent, inst: Instance): Plan<DeleteStep> {
  const name = m.name;
  return {
    machine: name,
    intent,
    onStop: "finish",
    steps: [
      intentStep("intent"),
      {
        name: "forget",
        what: `remove ${describe(inst)} from ${name}'s instances`,
        run: async (r) => void forgetInstance(r, m, inst.gen),
      },
      {
        name: "remove",
        what: `delete ${paths.instance(name, inst.gen)}`,
        run: (r) => removeInstance(r, name, inst.gen),
      },
    ],
  };
}

/**
 * Without --instance, delete-instance picks the newest instance of the
 * image, which may be the current one while an older one of the same image
 * is what the user meant: name that one first.
 */
export function currentHint(m: MachineState, inst: Instance, named: boolean): string {
  const older = m.instances.filter((i) => i.image === inst.image && i.gen !== inst.gen);
  const last = older[older.length - 1];
  if (!named && last) {
    const which =
      older.length > 1
        ? `older instances of ${inst.image} are ${older.map((i) => i.gen).join(", ")}`
        : `older instance of ${inst.image} is ${last.gen}`;
    return `${m.name}'s ${which}: name one with --instance, e.g. boxctl delete-instance ${m.name} ${inst.image} --instance ${last.gen}`;
  }
  return m.fallback !== null
    ? `go back first (boxctl fallback-instance ${m.name}) or cut over to another image, then delete it`
    : `cut over to another image first (boxctl cutover-instance ${m.name} IMAGE), then delete it`;
}

export async function deleteInstance(
  r: Runner,
  name: string,
  image: string,
  opts: { wait?: boolean; instance?: number },
): Promise<{ instance: Instance; wasFallback: boolean }> {
  checkName("machine", name);
  checkName("image", image);
  // On a full disk the deletion's records fit in what this frees (host/files.ts).
  releaseReserve(r);
  return guarded(r, name, "delete-instance", opts, async () => {
    const m = requireMachine(name);
    const inst = instanceOfImage(m, image, opts.instance);
    if (m.current === inst.gen) {
      throw new BoxError(
        `${describe(inst)} is ${name}'s current instance; boxctl never deletes the current instance`,
        currentHint(m, inst, opts.instance !== undefined),
      );
    }
    const wasFallback = m.fallback === inst.gen;
    await apply(r, deletePlan(m, newIntent("delete-instance", m, inst, false), inst));
    clearIntent(r, name);
    await journal(r, {
      machine: name,
      operation: "delete-instance",
      instance: inst.gen,
      image: inst.image,
      result: "ok",
      message: `deleted ${describe(inst)}${wasFallback ? " (it was the fallback)" : ""}`,
    });
    return { instance: inst, wasFallback };
  });
}
