// list-images and delete-image: what is staged, who uses it, and removing
// an image nobody uses.

import { join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { makeDir, removeTree, renameDurably } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import { withImageStoreLock } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import {
  type ImageMeta,
  imageExists,
  listImageNames,
  loadImage,
  stagingEntry,
  sweepStaging,
} from "../store/images.ts";
import {
  type Instance,
  instanceOf,
  listMachineNames,
  loadMachine,
  type MachineState,
} from "../store/machine.ts";
import { imageGone } from "./drift.ts";

export interface Use {
  machine: string;
  gen: number;
  /** current, fallback, or other (kept, but neither). */
  role: "current" | "fallback" | "other";
}

export interface ImageRow extends ImageMeta {
  usedBy: Use[];
}

export interface InstanceRef {
  gen: number;
  image: string;
  /** The image was deleted from the store by hand: the instance cannot start until it is staged again. */
  imageMissing: boolean;
}

export interface MachineRow {
  name: string;
  current: InstanceRef | null;
  fallback: InstanceRef | null;
}

function ref(name: string, i: Instance | undefined): InstanceRef | null {
  return i ? { gen: i.gen, image: i.image, imageMissing: imageGone(name, i) !== null } : null;
}

function machines(): MachineState[] {
  return listMachineNames()
    .map((n) => loadMachine(n))
    .filter((m): m is MachineState => m !== null);
}

export function usesOf(image: string, ms: MachineState[] = machines()): Use[] {
  const out: Use[] = [];
  for (const m of ms) {
    for (const i of m.instances) {
      if (i.image !== image) continue;
      const role = i.gen === m.current ? "current" : i.gen === m.fallback ? "fallback" : "other";
      out.push({ machine: m.name, gen: i.gen, role });
    }
  }
  return out;
}

/**
 * The commands that free an image, one per instance that uses it: each
 * names its generation, since a machine can have several instances of one
 * image and delete-instance alone picks the newest. A current instance
 * cannot be deleted, only left by a cutover.
 */
export function inUseHint(image: string, uses: Use[]): string {
  const deletable = uses.filter((u) => u.role !== "current");
  const current = [...new Set(uses.filter((u) => u.role === "current").map((u) => u.machine))];
  const parts: string[] = [];
  if (deletable.length) {
    const cmds = deletable
      .slice(0, 3)
      .map((u) => `boxctl delete-instance ${u.machine} ${image} --instance ${u.gen}`);
    if (deletable.length > 3) cmds.push(`${deletable.length - 3} more (see boxctl history NAME)`);
    parts.push(
      `delete ${deletable.length > 1 ? "those instances" : "that instance"}: ${cmds.join(", ")}`,
    );
  }
  if (current.length) {
    const cmd = `boxctl cutover-instance ${current.length === 1 ? current[0] : "NAME"} IMAGE`;
    parts.push(`cut ${current.join(", ")} over to another image first (${cmd})`);
  }
  return parts.join("; ");
}

export function gather(): { images: ImageRow[]; machines: MachineRow[] } {
  const ms = machines();
  const images: ImageRow[] = [];
  for (const name of listImageNames()) {
    const meta = loadImage(name);
    if (meta) images.push({ ...meta, usedBy: usesOf(name, ms) });
  }
  return {
    images,
    machines: ms.map((m) => ({
      name: m.name,
      current: ref(m.name, instanceOf(m, m.current)),
      fallback: ref(m.name, instanceOf(m, m.fallback)),
    })),
  };
}

export function listImages(): ReturnType<typeof gather> {
  sweepStaging();
  return gather();
}

export async function deleteImage(
  r: Runner,
  name: string,
  opts: { wait?: boolean } = {},
): Promise<void> {
  checkName("image", name);
  return withImageStoreLock(r, "delete-image", { shared: false, wait: opts.wait === true }, () =>
    deleteUnlocked(r, name),
  );
}

async function deleteUnlocked(r: Runner, name: string): Promise<void> {
  sweepStaging();
  if (!imageExists(name)) {
    const names = listImageNames();
    throw new BoxError(
      `image '${name}' is not staged`,
      names.length ? `staged images: ${names.join(", ")}` : "there are no staged images",
    );
  }
  const uses = usesOf(name);
  if (uses.length) {
    const who = uses.map((u) => `${u.machine} (gen ${u.gen}, ${u.role})`).join(", ");
    throw new BoxError(`image '${name}' is in use by ${who}`, inUseHint(name, uses));
  }
  const trash = join(paths.staging(), `${stagingEntry(name)}deleted`);
  // One rename makes the image vanish whole; the slow removal happens after,
  // and if it is interrupted the next run finishes it (sweepStaging).
  makeDir(r, paths.staging(), 0o700);
  renameDurably(r, paths.image(name), trash);
  await journal(r, {
    operation: "delete-image",
    image: name,
    result: "ok",
    message: `deleted image ${name}`,
  });
  await removeTree(r, trash);
}
