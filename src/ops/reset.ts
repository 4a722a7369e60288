// reset NAME IMAGE: discard every change of NAME's instance of IMAGE, so
// that it is the image as staged again. The instance keeps its generation.
import { BoxError } from "../base/errors.ts";
import { humanBytes } from "../base/format.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { bootAndVerify } from "../host/boot.ts";
import { journal } from "../host/journal.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning, stopMachine } from "../host/systemd.ts";
import { remountTo, unmountIfMounted } from "../overlay/root.ts";
import { apply, intentStep, type Plan, type Step } from "../plan/apply.ts";
import { clearIntent, type Intent, newIntent } from "../plan/intent.ts";
import type { ResetStep } from "../plan/steps.ts";
import { changesSize, discardChanges } from "../store/instances.ts";
import {
  describe,
  type Instance,
  instanceOfImage,
  type MachineState,
  requireMachine,
} from "../store/machine.ts";
import { confirm } from "./ask.ts";
import { guarded } from "./guard.ts";

export interface ResetOptions {
  yes?: boolean;
  wait?: boolean;
  instance?: number;
  timeoutMs: number;
}

/** The plan that empties inst; a current one is stopped, unmounted, mounted and started again. */
export function resetPlan(
  m: MachineState,
  intent: Intent,
  inst: Instance,
  timeoutMs: number,
): Plan<ResetStep> {
  const name = m.name;
  const isCurrent = m.current === inst.gen;
  const steps: Step<ResetStep>[] = [intentStep("intent")];
  if (isCurrent)
    steps.push(
      { name: "stop", what: `power ${name} off`, run: (r) => stopMachine(r, name) },
      {
        name: "unmount",
        what: `unmount ${paths.machineRoot(name)}`,
        run: (r) => unmountIfMounted(r, name),
      },
    );
  steps.push({
    name: "discard",
    what: `discard the changes of ${describe(inst)}`,
    run: (r) => discardChanges(r, name, inst),
  });
  if (isCurrent)
    steps.push({ name: "mount", what: "mount it again", run: (r) => remountTo(r, name, inst) });
  if (intent.wasRunning)
    steps.push({
      name: "start",
      what: `start ${name} and wait until it has booted`,
      run: (r) => bootAndVerify(r, name, paths.machineRoot(name), timeoutMs),
    });
  return { machine: name, intent, steps, onStop: "finish" };
}

/** Asks before discarding; without a terminal, --yes is the answer. */
async function confirmed(r: Runner, m: MachineState, inst: Instance, image: string) {
  if (!process.stdin.isTTY) {
    throw new BoxError(
      `reset discards every change of ${m.name}'s ${describe(inst)} and needs confirmation`,
      `run it on a terminal to be asked, or add --yes: boxctl reset ${m.name} ${image} --yes`,
    );
  }
  const size = await changesSize(r, m.name, inst.gen);
  const restarting = m.current === inst.gen ? ", restarting it" : "";
  return confirm(
    `Discard all changes (${size === null ? "?" : humanBytes(size)}) of ${m.name}'s ${describe(inst)}, its machine ID, SSH host keys and hostname included${restarting}? [y/N] `,
  );
}

/** The instance that was reset; null if the user said no. */
export async function reset(
  r: Runner,
  name: string,
  image: string,
  opts: ResetOptions,
): Promise<Instance | null> {
  checkName("machine", name);
  checkName("image", image);
  return guarded(r, name, "reset", opts, async () => {
    const m = requireMachine(name);
    const inst = instanceOfImage(m, image, opts.instance);
    if (!opts.yes && !r.dryRun && !(await confirmed(r, m, inst, image))) return null;
    const wasRunning = m.current === inst.gen && (await isRunning(r, name));
    const intent = newIntent("reset", m, { gen: inst.gen, image }, wasRunning);
    await apply(r, resetPlan(m, intent, inst, opts.timeoutMs));
    clearIntent(r, name);
    await journal(r, {
      machine: name,
      operation: "reset",
      instance: inst.gen,
      image: inst.image,
      result: "ok",
      message: `discarded the changes of ${describe(inst)}`,
    });
    return inst;
  });
}
