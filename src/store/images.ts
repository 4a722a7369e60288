// The image store: images/NAME/{rootfs,image.json}, each renamed into place
// whole from staging/. Anything in staging/ belongs to a boxctl process,
// named in the directory's name; once that process is gone it is debris.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { readJson, rootOnly } from "../host/files.ts";

export const IMAGE_VERSION = 1;

export const ImageSchema = v.object({
  version: v.literal(IMAGE_VERSION),
  name: v.string(),
  /** PRETTY_NAME from the image's os-release; null for a --force image without one. */
  os: v.nullable(v.string()),
  /** Bytes of file data in the tree (the sum of the archive's file sizes). */
  size: v.pipe(v.number(), v.integer(), v.minValue(0)),
  staged: v.pipe(v.string(), v.isoTimestamp()),
  /** Of the file as given, compressed or not. */
  sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  /** The file's base name, or "-" for standard input. */
  source: v.string(),
  /** Machine IDs the image carries, which boxctl keeps out of every instance (machine-id.ts). */
  sharedMachineIds: v.optional(v.array(v.string())),
  /** Pinned (boxctl pin IMAGE): prune never deletes it. Absent: not pinned. */
  pinned: v.optional(v.boolean()),
});

export type ImageMeta = v.InferOutput<typeof ImageSchema>;

/** When a process started (clock ticks since boot), or null if it is gone. */
function startTime(pid: number | "self"): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null;
  } catch {
    return null;
  }
}

/**
 * A staging entry is NAME.PID-START.RANDOM: the owner's pid and start
 * time, which together name one process even after the pid is reused.
 */
export function stagingEntry(name: string): string {
  return `${name}.${process.pid}-${startTime("self") ?? 0}.`;
}

function ownerAlive(pid: number, start: string): boolean {
  return startTime(pid) === start;
}

/**
 * Removes what an interrupted stage-image or delete-image left in
 * staging/. Silent when there is nothing to do or no permission.
 */
export function sweepStaging(): string[] {
  let entries: string[];
  try {
    entries = readdirSync(paths.staging());
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const e of entries) {
    const m = /\.(\d+)-(\d+)\.[^.]+$/.exec(e);
    if (m && ownerAlive(Number(m[1]), m[2] as string)) continue;
    try {
      rmSync(join(paths.staging(), e), { recursive: true, force: true });
      removed.push(e);
    } catch {
      // Not root, or busy: the next run tries again.
    }
  }
  return removed;
}

export function imageExists(name: string): boolean {
  return existsSync(paths.image(name));
}

export function listImageNames(): string[] {
  try {
    return readdirSync(paths.images())
      .filter((n) => !n.startsWith("."))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw rootOnly(e, paths.images());
  }
}

export function loadImage(name: string): ImageMeta | null {
  return readJson(paths.imageMeta(name), ImageSchema);
}

export function requireImage(name: string): ImageMeta {
  const meta = imageExists(name) ? loadImage(name) : null;
  if (!meta) {
    const names = listImageNames();
    throw new BoxError(
      `image '${name}' is not staged`,
      names.length
        ? `staged images: ${names.join(", ")} (see boxctl list-images)`
        : "stage one with: boxctl stage-image FILE.tar",
    );
  }
  return meta;
}
