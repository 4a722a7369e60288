import { checkName } from "../base/names.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning } from "../host/systemd.ts";
import { changesSize } from "../store/instances.ts";
import {
  type CarryPolicy,
  DEFAULT_CARRY,
  type Instance,
  type Operation,
  requireMachine,
} from "../store/machine.ts";
import { imageGone } from "./drift.ts";
import { pendingWarning } from "./recover.ts";

export interface HistoryDoc {
  machine: string;
  current: number | null;
  fallback: number | null;
  running: boolean;
  instances: (Instance & {
    changesBytes: number | null;
    current: boolean;
    fallback: boolean;
    /** Its image was deleted from the store by hand: the instance cannot start until it is staged again. */
    imageMissing: boolean;
  })[];
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
  const m = requireMachine(name);
  const running = m.current !== null && (await isRunning(r, name));
  const instances = await Promise.all(
    m.instances.map(async (i) => ({
      ...i,
      uidBase: i.uidBase ?? null,
      changesBytes: await changesSize(r, name, i.gen),
      current: i.gen === m.current,
      fallback: i.gen === m.fallback,
      imageMissing: imageGone(name, i) !== null,
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
