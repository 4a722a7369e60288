// The plan of delete-machine: the steps that take a stopped machine off
// the host and out of the store. Its own file, so that recovery
// (recover.ts) runs the same steps without importing the verb, which
// imports recovery through guard.ts.
import { paths } from "../base/paths.ts";
import { disableMachine } from "../host/systemd.ts";
import { unmountIfMounted } from "../overlay/root.ts";
import { unwireMachine } from "../overlay/wiring.ts";
import { intentStep, type Plan } from "../plan/apply.ts";
import type { Intent } from "../plan/intent.ts";
import type { DeleteMachineStep } from "../plan/steps.ts";
import { instanceGensOnDisk, removeMachineFiles } from "../store/instances.ts";
import { forgetMachine, type MachineState } from "../store/machine.ts";

export interface DeleteMachineFacts {
  /** Every instance the machine has: listed in machine.json or found on disk. */
  gens: number[];
  /** Whether it starts with the host (machinectl enable). */
  enabled: boolean;
}

/** Every instance the machine has: in its record (if it still has one) or on disk. */
export function machineGens(name: string, m: MachineState | null): number[] {
  const all = new Set([...(m?.instances.map((i) => i.gen) ?? []), ...instanceGensOnDisk(name)]);
  return [...all].sort((a, b) => a - b);
}

/**
 * Nothing in it is undone: a delete the user confirmed is finished, by
 * recovery if need be. The record goes after the host stops starting,
 * mounting and naming the machine, and before its data: an interrupted
 * delete never leaves a machine that boxctl lists but cannot run.
 * kept(false): the mount point held files and was left.
 */
export function deleteMachinePlan(
  name: string,
  intent: Intent,
  facts: DeleteMachineFacts,
  kept: (removed: boolean) => void = () => {},
): Plan<DeleteMachineStep> {
  const root = paths.machineRoot(name);
  const n = facts.gens.length;
  return {
    machine: name,
    intent,
    onStop: "finish",
    steps: [
      intentStep("intent"),
      {
        name: "disable",
        what: facts.enabled
          ? `stop ${name} starting with the host (systemctl disable systemd-nspawn@${name}.service)`
          : `${name} does not start with the host: nothing to disable`,
        run: async (r) => {
          if (facts.enabled) await disableMachine(r, name);
        },
      },
      {
        name: "unmount",
        what: `unmount ${root}`,
        run: (r) => unmountIfMounted(r, name),
      },
      {
        name: "unwire",
        what: `remove ${name}'s mount unit and view units, and boxctl's settings in ${paths.nspawnFile(name)}; reload systemd`,
        run: (r) => unwireMachine(r, name, facts.gens),
      },
      {
        name: "forget",
        what: `remove ${paths.machineState(name)}: boxctl no longer manages ${name}`,
        run: async (r) => forgetMachine(r, name),
      },
      {
        name: "remove",
        what: `delete ${n} instance${n === 1 ? "" : "s"} with all ${n === 1 ? "its" : "their"} changes (${paths.machine(name)}), and the mount point ${root}`,
        run: async (r) => kept(await removeMachineFiles(r, name)),
      },
    ],
  };
}
