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
        m.fallback !== null
          ? `go back first (boxctl fallback-instance ${name}) or cut over to another image, then delete it`
          : `cut over to another image first (boxctl cutover-instance ${name} IMAGE), then delete it`,
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
