// What every container verb needs first: a managed machine that has a
// current instance, and a way to ask whether its container runs.
import { BoxError, UsageError } from "../errors.ts";
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

export const DEFAULT_BOOT_TIMEOUT_S = 90;

/** --timeout SECONDS, in milliseconds. */
export function timeoutMs(value: string | boolean | undefined, verb: string): number {
  if (value === undefined || typeof value === "boolean") return DEFAULT_BOOT_TIMEOUT_S * 1000;
  const s = Number(value);
  if (!Number.isFinite(s) || s <= 0) {
    throw new UsageError(
      `${verb}: --timeout wants a number of seconds, not '${value}'`,
      `for example: boxctl ${verb} NAME --timeout 180`,
    );
  }
  return s * 1000;
}
