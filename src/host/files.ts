// Files boxctl writes itself. State files are versioned JSON, written
// atomically: temp file, fsync, rename, fsync of the directory, so a reader
// sees the old file or the new one, never a torn one, even across a power
// cut. Trees go with one `rm -rf --one-file-system`, the same command that
// --dry-run prints. Every change goes through the runner.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import * as v from "valibot";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { type Runner, showCommand } from "./runner.ts";

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * durable: false still replaces the file atomically (a killed boxctl
 * leaves the old or the new one) but skips the fsyncs, for files written
 * inside the downtime window whose loss after a power cut is handled.
 */
export function writeFileAtomic(
  r: Runner,
  path: string,
  text: string,
  o: { mode?: number; durable?: boolean; quiet?: boolean } = {},
): void {
  const write = () => {
    const durable = o.durable ?? true;
    const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
    try {
      const fd = openSync(tmp, "w", o.mode ?? 0o644);
      try {
        writeSync(fd, text);
        if (durable) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (e) {
      // The old file stays as it was; no temp file is left beside it.
      rmSync(tmp, { force: true });
      throw noSpace(e, path);
    }
    if (durable) fsyncDir(dirname(path));
  };
  // The operation journal is rewritten after every step; it is not news.
  if (o.quiet) {
    if (!r.dryRun) write();
    return;
  }
  r.effect(`write ${showCommand([path])}`, write);
}

/** A file that could not be written for want of space: what was there stays. */
export class NoSpaceError extends BoxError {}

/** A full file system as one message that names it and what frees space; any other error as it is. */
export function noSpace(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== "ENOSPC" && code !== "EDQUOT") return e;
  const inStore = path.startsWith(`${paths.store()}/`);
  return new NoSpaceError(
    `no space left on the file system of ${dirname(path)}: could not write ${path}`,
    inStore
      ? "free space in boxctl's store (boxctl df shows where it went; boxctl prune deletes old instances and unused images), then retry"
      : `free space on the file system of ${dirname(path)}, then retry`,
  );
}

/**
 * The store's reserve: 256 KiB that boxctl deletes before it deletes
 * anything else (delete-instance, delete-machine, and so prune), so that on
 * a full disk those can still write the few KiB of records that a
 * crash-safe deletion needs first. Every mutating command on a machine
 * makes it again when there is room for it twice over (so that it never
 * takes the last bytes, nor the ones a deletion just freed with it); a
 * failed attempt leaves nothing.
 */
const RESERVE_BYTES = 256 * 1024;

export function keepReserve(r: Runner): void {
  const path = paths.reserve();
  if (r.dryRun || existsSync(path) || !existsSync(paths.store())) return;
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fs = statfsSync(paths.store());
    if (fs.bavail * fs.bsize < 2 * RESERVE_BYTES) return;
    writeFileSync(tmp, Buffer.alloc(RESERVE_BYTES), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true });
  }
}

export function releaseReserve(r: Runner): void {
  if (!r.dryRun) rmSync(paths.reserve(), { force: true });
}

export function writeJsonAtomic(
  r: Runner,
  path: string,
  data: unknown,
  o: { durable?: boolean; quiet?: boolean } = {},
): void {
  writeFileAtomic(r, path, `${JSON.stringify(data, null, 2)}\n`, o);
}

export function removeFileDurably(r: Runner, path: string, o: { quiet?: boolean } = {}): void {
  const remove = () => {
    if (!existsSync(path)) return;
    unlinkSync(path);
    fsyncDir(dirname(path));
  };
  if (o.quiet) {
    if (!r.dryRun) remove();
    return;
  }
  r.effect(`remove ${showCommand([path])}`, remove);
}

/**
 * mkdir -p. Each directory it creates is fsynced into its parent, so that
 * a directory a boot depends on (an instance's, a mount point,
 * /etc/systemd/nspawn) is still there after a power cut when the state
 * that names it is written next.
 */
export function makeDir(r: Runner, path: string, mode: number): void {
  r.effect(`mkdir -m ${mode.toString(8)} ${showCommand([path])}`, () => {
    const first = mkdirSync(path, { recursive: true, mode });
    if (first === undefined) return;
    for (let d = path; ; d = dirname(d)) {
      fsyncDir(dirname(d));
      if (d === first || d === dirname(d)) break;
    }
  });
}

export function renameDurably(r: Runner, from: string, to: string): void {
  r.effect(`mv ${showCommand([from, to])}`, () => {
    renameSync(from, to);
    fsyncDir(dirname(to));
  });
}

/**
 * Removes a tree, never crossing into another file system (a mount left
 * inside an upper dir stays untouched). The one way boxctl deletes trees:
 * reset, delete-instance, delete-image and staging debris.
 */
export async function removeTree(r: Runner, path: string): Promise<void> {
  if (r.dryRun || existsSync(path))
    await r.run(["rm", "-rf", "--one-file-system", "--", path], { mutates: true });
}

/** A text file's contents; null if it does not exist. */
export function readTextOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/**
 * Reads a state file and checks it against its schema. A file that is
 * corrupt or hand-edited into an invalid shape is an error naming the
 * file, never silently ignored. A missing file is null.
 */
export function readJson<S extends v.GenericSchema>(
  path: string,
  schema: S,
): v.InferOutput<S> | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw rootOnly(e, path);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `it is not valid JSON (${(e as Error).message})`);
  }
  const r = v.safeParse(schema, data);
  if (!r.success) {
    const issue = r.issues[0];
    const where = issue ? v.getDotPath(issue) : null;
    throw corrupt(path, `${where ? `field '${where}': ` : ""}${issue?.message ?? "invalid"}`);
  }
  return r.output;
}

/** A permission error on boxctl's own files: the store is root's; say so, not a stack trace. */
export function rootOnly(e: unknown, path: string): unknown {
  if ((e as NodeJS.ErrnoException).code !== "EACCES") return e;
  return new BoxError(
    `cannot read ${path}: boxctl's store is readable by root only`,
    `run it as root: sudo boxctl ${process.argv.slice(2).join(" ")}`,
  );
}

function corrupt(path: string, why: string): BoxError {
  return new BoxError(
    `state file ${path} is corrupt: ${why}`,
    "restore it from a backup, or fix it by hand; boxctl will not guess what it should say",
  );
}

/** tmpfs and ramfs: nothing to write back. */
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);

/**
 * Keeps the disk writing what is being unpacked under dir while it is
 * unpacked: one `sync -f` after another until the returned stop() is
 * called (which waits for the one under way). Staging must sync before
 * its image becomes visible anyway; started only then, the whole tree's
 * writeback came after the unpacking instead of beside it (on this
 * project's build VM: 6.1 s for curl | tar + sync of a 160 MB image, 4.3 s
 * with a sync loop beside tar; BENCHMARKS.md, "stage-image URL"). It
 * changes when data reaches the disk, not what: the final sync stays.
 */
export function writeBehind(r: Runner, dir: string): () => Promise<void> {
  try {
    if (MEMORY_FS.has(Number(statfsSync(dir).type))) return async () => {};
  } catch {
    return async () => {};
  }
  const stop = new AbortController();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      // The stop ends the pause at once; only a sync under way is waited for.
      await sleep(250, undefined, { signal: stop.signal }).catch(() => undefined);
      if (stop.signal.aborted) break;
      await r.run(["sync", "-f", dir], { check: false }).catch(() => undefined);
    }
  })();
  return async () => {
    stop.abort();
    await loop;
  };
}
