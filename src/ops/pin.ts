// pin and unpin: an image or an instance that prune never deletes. The
// mark is an optional field in image.json or in the instance's entry in
// machine.json, written atomically under the lock its deletion takes.
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { writeJsonAtomic } from "../host/files.ts";
import { withImageStoreLock } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { type ImageMeta, imageExists, requireImage } from "../store/images.ts";
import {
  describe,
  type Instance,
  loadMachine,
  requireMachine,
  saveMachine,
} from "../store/machine.ts";
import { guarded } from "./guard.ts";

/** Sets or clears an image's pin; whether it changed anything. */
export function pinImage(r: Runner, name: string, on: boolean): Promise<boolean> {
  checkName("image", name);
  return withImageStoreLock(r, on ? "pin" : "unpin", { shared: false, wait: true }, async () => {
    const machine = loadMachine(name);
    if (machine && !imageExists(name)) {
      // pin NAME without --instance: a machine's name, where an image's was expected.
      const gens = machine.instances.map((i) => i.gen);
      throw new BoxError(
        `${name} is a machine, not an image; to ${on ? "pin" : "unpin"} one of its instances, add --instance GEN`,
        `for example: boxctl ${on ? "pin" : "unpin"} ${name} --instance ${gens[gens.length - 1] ?? "GEN"} (its instances: ${gens.join(", ") || "none"}; see boxctl history ${name})`,
      );
    }
    const meta = requireImage(name);
    if ((meta.pinned === true) === on) return false;
    const { pinned: _, ...rest } = meta;
    const next: ImageMeta = on ? { ...rest, pinned: true } : rest;
    writeJsonAtomic(r, paths.imageMeta(name), next);
    return true;
  });
}

/** Sets or clears the pin of NAME's instance GEN; the instance and whether it changed. */
export function pinInstance(
  r: Runner,
  name: string,
  gen: number,
  on: boolean,
): Promise<{ instance: Instance; changed: boolean }> {
  checkName("machine", name);
  return guarded(r, name, on ? "pin" : "unpin", { wait: true }, async () => {
    const m = requireMachine(name);
    const inst = m.instances.find((i) => i.gen === gen);
    if (!inst) {
      throw new BoxError(
        `${name} has no instance gen ${gen}`,
        `its instances: ${m.instances.map((i) => describe(i)).join(", ") || "none"}`,
      );
    }
    if ((inst.pinned === true) === on) return { instance: inst, changed: false };
    if (on) inst.pinned = true;
    else delete inst.pinned;
    saveMachine(r, m);
    return { instance: inst, changed: true };
  });
}
