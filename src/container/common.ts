// What every container verb needs first: a managed machine that has a
// current instance, and a way to ask whether its container runs.
import { BoxError } from "../errors.ts";
import { type Instance, instanceOf, type MachineState, requireMachine } from "../machines/state.ts";
import { isRunning } from "../systemd.ts";

/** A managed machine with a current instance, or a clear error. */
export function requireInstance(name: string): { machine: MachineState; instance: Instance } {
  const machine = requireMachine(name);
  const instance = instanceOf(machine, machine.current);
  if (!instance) {
    throw new BoxError(
      `machine '${name}' has no current instance`,
      `give it one with: boxctl cutover-instance ${name} IMAGE (see boxctl list-images)`,
    );
  }
  return { machine, instance };
}

export async function requireRunning(name: string): Promise<void> {
  if (!(await isRunning(name))) {
    throw new BoxError(`container ${name} is not running`, `start it first: boxctl start ${name}`);
  }
}
