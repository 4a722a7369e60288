// delete-machine NAME: a stopped machine off the host and out of the
// store, every instance with it, as machinectl remove does for a plain
// container. It frees what prune cannot: the images a retired machine's
// current and fallback instances use.
import { BoxError } from "../base/errors.ts";
import { count, humanBytes } from "../base/format.ts";
import { checkName } from "../base/names.ts";
import { releaseReserve } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import type { Runner } from "../host/runner.ts";
import { isEnabledState, nspawnUnit } from "../host/systemd.ts";
import { isUpState, unitInfo } from "../host/unit-state.ts";
import { refuseLinkedSettings } from "../overlay/linked-settings.ts";
import { apply } from "../plan/apply.ts";
import { clearIntent, newIntent, readIntent } from "../plan/intent.ts";
import { changesSize, removeMachineDir } from "../store/instances.ts";
import {
  type InstanceRef,
  instanceRef,
  loadMachine,
  type MachineState,
  requireMachine,
} from "../store/machine.ts";
import { confirm } from "./ask.ts";
import { type DeleteMachineFacts, deleteMachinePlan, machineGens } from "./delete-machine-plan.ts";
import { guarded } from "./guard.ts";

export interface DeleteMachineResult {
  machine: string;
  /** The instances it deleted, changes and all. */
  instances: InstanceRef[];
  /** It started with the host; it no longer does. */
  wasEnabled: boolean;
  /** The mount point held files, so it was left (see removeMachineFiles). */
  keptMountPoint: boolean;
  /** Asked again after an interrupted delete-machine, which recovery finished. */
  completedInterrupted: boolean;
}

/** Asks before deleting; without a terminal, --yes is the answer. */
async function confirmed(r: Runner, m: MachineState, gens: number[]): Promise<boolean> {
  if (!process.stdin.isTTY) {
    throw new BoxError(
      `delete-machine deletes ${m.name} and every change made in it, and needs confirmation`,
      `run it on a terminal to be asked, or add --yes: boxctl delete-machine ${m.name} --yes`,
    );
  }
  let bytes = 0;
  for (const g of gens) bytes += (await changesSize(r, m.name, g)) ?? 0;
  return confirm(
    `Delete machine ${m.name}: ${count(gens.length, "instance")} and all their changes (${humanBytes(bytes)})? [y/N] `,
  );
}

/** null if the user said no. */
export async function deleteMachine(
  r: Runner,
  name: string,
  opts: { wait?: boolean; yes?: boolean },
): Promise<DeleteMachineResult | null> {
  checkName("machine", name);
  // On a full disk the deletion's records fit in what this frees (host/files.ts).
  releaseReserve(r);
  return guarded(r, name, "delete-machine", opts, async (settled) => {
    // Asked again after a delete-machine that failed half-way (a busy root)
    // or was killed, which recovery has just finished: the machine being
    // gone is the answer, not an error.
    if (settled?.verb === "delete-machine" && !r.dryRun && loadMachine(name) === null)
      return {
        machine: name,
        instances: [],
        wasEnabled: false,
        keptMountPoint: false,
        completedInterrupted: true,
      };
    const m = requireMachine(name);
    // One look at the unit answers both: is it running, does it start with the host.
    const unit = await unitInfo(r, nspawnUnit(name));
    if (isUpState(unit.activeState)) {
      throw new BoxError(
        `container ${name} is running; delete-machine deletes only a stopped machine`,
        `power it off first: boxctl poweroff ${name}`,
      );
    }
    refuseLinkedSettings(name, null);
    const facts: DeleteMachineFacts = {
      gens: machineGens(name, m),
      enabled: isEnabledState(unit.unitFileState),
    };
    if (!opts.yes && !r.dryRun && !(await confirmed(r, m, facts.gens))) return null;
    const newest = m.instances[m.instances.length - 1] ?? { gen: 1, image: "" };
    let keptMountPoint = false;
    const plan = deleteMachinePlan(
      name,
      newIntent("delete-machine", m, newest, false),
      facts,
      (removed) => {
        keptMountPoint = !removed;
      },
    );
    await apply(r, plan).catch((e) => {
      // Begun (its intent on disk), it is finished, never undone: say how, besides what to fix.
      if (!(e instanceof BoxError) || r.dryRun || readIntent(name) === null) throw e;
      const then = `then run boxctl delete-machine ${name} again to finish the delete (its steps so far stay done)`;
      throw new BoxError(e.message, e.hint ? `${e.hint}; ${then}` : then, e.exitCode, {
        changed: true,
        step: plan.intent.step,
      });
    });
    if (!r.dryRun) {
      clearIntent(r, name);
      removeMachineDir(r, name);
    }
    await journal(r, {
      machine: name,
      operation: "delete-machine",
      result: "ok",
      message: `deleted, with ${facts.gens.length} instance(s)${facts.enabled ? "; it no longer starts with the host" : ""}`,
    });
    return {
      machine: name,
      instances: m.instances.map((i) => instanceRef(i) as InstanceRef),
      wasEnabled: facts.enabled,
      keptMountPoint,
      completedInterrupted: false,
    };
  });
}
