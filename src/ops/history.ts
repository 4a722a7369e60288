// history NAME: a machine's instances, newest last, with the current and
// fallback ones marked. A read verb: it never recovers or changes anything.
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning } from "../host/systemd.ts";
import { changesSize } from "../store/instances.ts";
import {
  type CarryPolicy,
  DEFAULT_CARRY,
  type Instance,
  type MachineState,
  type Operation,
  requireMachine,
} from "../store/machine.ts";
import { pendingWarning } from "./recover.ts";

export interface HistoryDoc {
  machine: string;
  current: number | null;
  fallback: number | null;
  running: boolean;
  instances: (Instance & { changesBytes: number | null; current: boolean; fallback: boolean })[];
  lastOperation: Operation | null;
  /** What the next cutover carries (set-carry). */
  carry: CarryPolicy;
}

/** The history, and a warning if an interrupted operation is pending. */
export async function gatherHistory(
  r: Runner,
  name: string,
): Promise<{ doc: HistoryDoc; warning: string | null }> {
  checkName("machine", name);
  const m = readableMachine(name);
  const running = m.current !== null && (await isRunning(r, name));
  const instances = await Promise.all(
    m.instances.map(async (i) => ({
      ...i,
      changesBytes: await changesSize(r, name, i.gen),
      current: i.gen === m.current,
      fallback: i.gen === m.fallback,
    })),
  );
  return {
    doc: {
      machine: name,
      current: m.current,
      fallback: m.fallback,
      running,
      instances,
      lastOperation: m.lastOperation,
      carry: m.carry ?? DEFAULT_CARRY,
    },
    warning: pendingWarning(name),
  };
}

/** The machine's state, with a clear error when the store is root-only. */
export function readableMachine(name: string): MachineState {
  try {
    return requireMachine(name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EACCES") throw e;
    throw new BoxError(
      `cannot read ${name}'s state: boxctl's store is readable by root only`,
      `run it as root: sudo boxctl ${process.argv[2] ?? ""} ${name}`,
    );
  }
}
