// prune: delete old instances and the images nobody uses any more.
//
// The plan is pure data computed from the machine records and the image
// metadata (prunePlan), so that --dry-run prints exactly what a real run
// removes. A real run then deletes one thing at a time through the
// existing delete-instance and delete-image machinery, each of which is
// crash-safe on its own (a Plan with intent and recovery, or one rename):
// a prune killed half-way leaves a store in which every instance and image
// is either whole or gone, and the next prune finishes the job: it first
// settles every machine's interrupted operation (settleInterrupted), since
// an instance whose deletion was cut off after "forget" is no longer in its
// machine's record, so no plan would name it again.
import { BoxError, UsageError } from "../base/errors.ts";
import type { Runner } from "../host/runner.ts";
import { pendingMachines } from "../plan/intent.ts";
import { type ImageMeta, listImageNames, loadImage } from "../store/images.ts";
import { listMachineNames, loadMachine, type MachineState } from "../store/machine.ts";
import { deleteInstance } from "./delete-instance.ts";
import { guarded } from "./guard.ts";
import { deleteImage } from "./images.ts";

export interface PrunedInstance {
  machine: string;
  gen: number;
  image: string;
}

export interface PrunePlan {
  keep: number;
  instances: PrunedInstance[];
  images: string[];
}

/**
 * What prune removes: on each machine, every instance beyond the keep
 * newest (by generation) that is neither current, fallback nor pinned;
 * then every image that no remaining instance uses and that is not pinned.
 * The current and fallback instances do not count among the keep newest:
 * --keep 0 leaves exactly current, fallback and pinned.
 */
export function prunePlan(ms: MachineState[], images: ImageMeta[], keep: number): PrunePlan {
  const instances: PrunedInstance[] = [];
  const used = new Set<string>();
  for (const m of ms) {
    let kept = 0;
    for (const i of [...m.instances].sort((a, b) => b.gen - a.gen)) {
      const protectedOne = i.gen === m.current || i.gen === m.fallback || i.pinned === true;
      if (protectedOne || kept < keep) {
        if (!protectedOne) kept++;
        used.add(i.image);
        continue;
      }
      instances.push({ machine: m.name, gen: i.gen, image: i.image });
    }
  }
  const gone = images
    .filter((im) => im.pinned !== true && !used.has(im.name))
    .map((im) => im.name)
    .sort();
  return { keep, instances, images: gone };
}

/**
 * Completes or rolls back every machine's interrupted operation (each
 * under its own lock, as any mutating verb on it would), so that the plan
 * is made from a settled store. Under --dry-run it only says what it would do.
 */
export async function settleInterrupted(r: Runner, opts: { wait?: boolean } = {}): Promise<void> {
  for (const name of pendingMachines())
    await guarded(r, name, "prune", { wait: opts.wait }, async () => undefined);
}

export function loadStore(): { machines: MachineState[]; images: ImageMeta[] } {
  return {
    machines: listMachineNames()
      .map((n) => loadMachine(n))
      .filter((m): m is MachineState => m !== null),
    images: listImageNames()
      .map((n) => loadImage(n))
      .filter((i): i is ImageMeta => i !== null),
  };
}

export function parseKeep(s: string | boolean | undefined): number {
  if (s === undefined) return 0;
  const n = typeof s === "string" && /^\d+$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new UsageError(`--keep wants a number of instances, not '${s}'`, "for example: --keep 2");
  return n;
}

export interface PruneResult {
  plan: PrunePlan;
  /** What was removed: the plan, less what failed. */
  removed: { instances: PrunedInstance[]; images: string[] };
  /** What could not be removed (changed since the plan was made), with why. */
  failed: { what: string; message: string }[];
  /** What to do about the first failure that has advice (a busy machine: --wait). */
  hint?: string;
}

/**
 * Carries out the plan, one deletion at a time. Something that changed
 * since the plan was made (an instance became current, an image came into
 * use) is refused by the deletion's own checks, under its own lock, and
 * reported in failed; the rest goes on.
 */
export async function applyPrune(
  r: Runner,
  plan: PrunePlan,
  opts: { wait?: boolean } = {},
): Promise<PruneResult> {
  const res: PruneResult = { plan, removed: { instances: [], images: [] }, failed: [] };
  for (const i of plan.instances) {
    try {
      await deleteInstance(r, i.machine, i.image, { instance: i.gen, wait: opts.wait });
      res.removed.instances.push(i);
    } catch (e) {
      if (!(e instanceof BoxError)) throw e;
      res.failed.push({ what: `${i.machine} gen ${i.gen} (${i.image})`, message: e.message });
      res.hint ??= e.hint;
    }
  }
  for (const name of plan.images) {
    // Pinned since the plan was made: pinning takes no lock prune holds.
    if (loadImage(name)?.pinned === true) {
      res.failed.push({ what: `image ${name}`, message: `image '${name}' is pinned` });
      continue;
    }
    try {
      await deleteImage(r, name, { wait: opts.wait });
      res.removed.images.push(name);
    } catch (e) {
      if (!(e instanceof BoxError)) throw e;
      res.failed.push({ what: `image ${name}`, message: e.message });
      res.hint ??= e.hint;
    }
  }
  return res;
}
