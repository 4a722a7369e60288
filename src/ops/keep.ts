// set-keep NAME N|off: a machine's own prune, applied after each successful
// cutover (cutover-instance calls applyKeep once the cutover is committed and
// its lock released). It deletes only that machine's instances, never an
// image: images are shared by machines and left to boxctl prune.
import { UsageError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import type { Runner } from "../host/runner.ts";
import { loadMachine, requireMachine, saveMachine } from "../store/machine.ts";
import { guarded } from "./guard.ts";
import { applyPrune, type PruneResult, parseKeep, prunePlan } from "./prune.ts";

export async function setKeep(
  r: Runner,
  name: string,
  spec: string,
  opts: { wait?: boolean } = {},
): Promise<{ keep: number | null; changed: boolean }> {
  checkName("machine", name);
  const keep = spec === "off" ? null : parseKeepSpec(name, spec);
  requireMachine(name);
  return guarded(r, name, "set-keep", opts, async () => {
    const m = loadMachine(name) ?? requireMachine(name);
    const { keep: was, ...rest } = m;
    saveMachine(r, keep === null ? rest : { ...rest, keep });
    return { keep, changed: (was ?? null) !== keep };
  });
}

function parseKeepSpec(name: string, spec: string): number {
  try {
    return parseKeep(spec);
  } catch {
    throw new UsageError(
      `set-keep wants a number or off, not '${spec}'`,
      `for example: boxctl set-keep ${name} 2, or boxctl set-keep ${name} off`,
    );
  }
}

/** After a successful cutover: the machine's keep setting, if it has one; null if off. */
export async function applyKeep(r: Runner, name: string): Promise<PruneResult | null> {
  const m = loadMachine(name);
  if (m?.keep === undefined || r.dryRun) return null;
  const plan = { ...prunePlan([m], [], m.keep), images: [] };
  return plan.instances.length ? applyPrune(r, plan) : null;
}
