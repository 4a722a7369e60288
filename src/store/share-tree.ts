// The staged tree as share.ts sees it: walked without following a link,
// hashed through O_NOFOLLOW descriptors checked against the walk, a file
// replaced by a hard link atomically, and the directories' archive times
// kept across the links made in them.
import { createHash } from "node:crypto";
import {
  type BigIntStats,
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { setImmediate as yieldNow } from "node:timers/promises";
import type { Runner } from "../host/runner.ts";
import { shareableName } from "./share-index.ts";

/** Thrown when stop() says so (Ctrl-C): the stage is abandoned anyway. */
export const STOPPED = new Error("interrupted");

export interface Walked {
  rel: string;
  st: BigIntStats;
  /** Every name of the inode in the tree, rel first: more than one for an archive's hard links. */
  names: string[];
}

/** Regular files under root, never following a link; an archive's hard-link group is one. */
export async function walk(root: string, stop: () => boolean) {
  const files: Walked[] = [];
  const groups = new Map<bigint, Walked>();
  const todo = [""];
  let n = 0;
  while (todo.length) {
    const rel = todo.pop() as string;
    for (const name of readdirSync(rel ? join(root, rel) : root)) {
      const sub = rel ? `${rel}/${name}` : name;
      if (!shareableName(sub)) continue;
      const st = lstatSync(join(root, sub), { bigint: true });
      if (st.isDirectory()) todo.push(sub);
      else if (st.isFile() && st.size > 0n) {
        if (st.nlink === 1n) files.push({ rel: sub, st, names: [sub] });
        else {
          const g = groups.get(st.ino);
          if (g) g.names.push(sub);
          else groups.set(st.ino, { rel: sub, st, names: [sub] });
        }
      }
      if (++n % 4096 === 0) {
        await yieldNow();
        if (stop()) throw STOPPED;
      }
    }
  }
  // A group with a name outside the tree cannot be: skip it all the same.
  for (const g of groups.values())
    if (BigInt(g.names.length) === g.st.nlink) {
      g.names.sort();
      g.rel = g.names[0] as string;
      files.push(g);
    }
  return files;
}

const buf = Buffer.allocUnsafe(1 << 20);

/** sha256 of the file at path, if it still is the inode walked. */
export function hashFile(path: string, st: BigIntStats): string | null {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOATIME);
  try {
    const now = fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev || now.size !== st.size) return null;
    const h = createHash("sha256");
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest("hex");
  } finally {
    closeSync(fd);
  }
}

/** Replaces staged with a hard link to target, atomically (a temporary name, then rename). */
export function replaceWithLink(target: string, staged: string, n: number): void {
  const tmp = join(dirname(staged), `.boxctl-share.${process.pid}.${n}`);
  linkSync(target, tmp);
  try {
    renameSync(tmp, staged);
  } catch (e) {
    unlinkSync(tmp);
    throw e;
  }
}

/**
 * Linking changes the mtime of each directory it links in, which the
 * archive set. Node can only set times to the microsecond, so boxctl
 * keeps those directories' headers first (GNU tar, POSIX format: times to
 * the nanosecond) and has tar put their times back afterwards: two
 * commands however many directories.
 */
export async function keepDirTimes(r: Runner, rootfs: string, file: string, rels: Set<string>) {
  if (rels.size === 0) return async () => {};
  const common = ["--numeric-owner", "--no-recursion", "-f", file, "-C", rootfs];
  await r.run(
    ["tar", "-c", "--format=posix", ...common, "--null", "--verbatim-files-from", "-T", "-"],
    { input: `${[...rels].join("\0")}\0` },
  );
  return async () => {
    // -p: mode and owner as they are, so only the times change.
    await r.run(["tar", "-x", "-p", ...common]);
    unlinkSync(file);
  };
}
