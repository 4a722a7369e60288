// The /etc merge applied. The old instance's upper etc/ (exactly what the
// container changed, whiteouts and opaque marks included) is first copied
// whole into the new, still private upper dir, in one tar read of the
// live tree; then every entry of that copy is decided (merge.ts) against
// the old and the new image, and the copy is pruned in place: unchanged
// copy-ups dropped, untouched directories given the new image's metadata,
// conflicts reported with the new image's version beside them. After the
// one read, nothing here touches the container's tree again: the copy,
// and the two images, are boxctl's own and nobody writes them meanwhile.
import { createHash } from "node:crypto";
import { renameSync, rmSync, type Stats } from "node:fs";
import type { Runner } from "../host/runner.ts";
import { copyEntries, type IdShift, shiftId } from "./copy.ts";
import {
  at,
  close,
  isWhiteout,
  listAt,
  lstatAt,
  openDirAt,
  readlinkAt,
  readRegularAt,
  setDirMeta,
} from "./fsafe.ts";
import { CONFLICT_SUFFIX, decide, type LocalKind, type Sig, sig } from "./merge.ts";

export interface EtcResult {
  /** Paths the container changed that the new instance keeps ("/etc/hosts"). */
  kept: string[];
  /** Paths both sides changed: the local version kept, the new image's at PATH.boxctl-new. */
  conflicts: string[];
  /** Entries the kernel had copied up without a change, left to the new image. */
  unchanged: number;
}

function typeOf(st: Stats): Parameters<typeof sig>[0] {
  if (st.isDirectory()) return "d";
  if (st.isSymbolicLink()) return "l";
  if (st.isCharacterDevice()) return "c";
  if (st.isBlockDevice()) return "b";
  if (st.isFIFO()) return "p";
  if (st.isSocket()) return "s";
  return "f";
}

/**
 * The signature of NAME in the directory open as fd; null if absent (or a
 * whiteout). An image's owners are seen through shift, as the new instance has them.
 */
export function sigAt(fd: number | null, name: string, shift?: IdShift): Sig {
  if (fd === null) return null;
  const st = lstatAt(fd, name);
  if (!st || isWhiteout(st)) return null;
  const t = typeOf(st);
  let content = "";
  if (t === "l") content = readlinkAt(fd, name);
  else if (t === "f") {
    const bytes = readRegularAt(fd, name);
    content = bytes ? createHash("sha256").update(bytes).digest("hex") : "?";
  }
  const ids = shift ? { uid: shiftId(st.uid, shift), gid: shiftId(st.gid, shift) } : st;
  return sig(t, { mode: st.mode, rdev: st.rdev, ...ids }, content);
}

const subdir = (fd: number | null, name: string): number | null => {
  if (fd === null) return null;
  const d = openDirAt(fd, name);
  return typeof d === "number" ? d : null;
};

export interface MergeContext {
  r: Runner;
  /** The opaque directories of the copy, as paths "etc/x" (getfattr, read by the caller). */
  opaque: Set<string>;
  /** Paths another part of the policy sets afterwards (identity): never a conflict. */
  skip: (rel: string) => boolean;
  /** Directories of the copy that must hide the new image's directory there. */
  makeOpaque: string[];
  /** A directory boxctl owns, open, on the new upper dir's file system. */
  scratch: { fd: number; path: string };
  /** From the new image's owners to the new instance's (0 to its base). */
  shift: IdShift;
  out: EtcResult;
  /** Decide and report only: dir is then the old upper dir itself, which is never written. */
  preview?: boolean;
}

/**
 * Decides and prunes the entries of dir (the copy in the new upper, at
 * rel) against oldImg and newImg (the same directory in each image, open,
 * or null where the image has none).
 */
export async function mergeDir(
  c: MergeContext,
  dir: number,
  rel: string,
  oldImg: number | null,
  newImg: number | null,
): Promise<void> {
  for (const name of listAt(dir)) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatAt(dir, name);
    if (!st) continue;
    const kind: LocalKind = isWhiteout(st)
      ? "whiteout"
      : st.isDirectory()
        ? c.opaque.has(path)
          ? "opaque-dir"
          : "dir"
        : "other";
    const o = sigAt(oldImg, name, c.shift);
    const n = sigAt(newImg, name, c.shift);
    const l = kind === "whiteout" ? null : sigAt(dir, name);
    const a = decide({ kind, local: l, oldImage: o, newImage: n });
    if (a.do === "drop") {
      if (!c.preview) rmSync(at(dir, name), { force: true });
      c.out.unchanged++;
      continue;
    }
    if (a.do === "adopt-image-meta" && newImg !== null && !c.preview) {
      const d = openDirAt(dir, name);
      const ns = lstatAt(newImg, name);
      if (typeof d === "number" && ns)
        setDirMeta(d, {
          mode: ns.mode,
          uid: shiftId(ns.uid, c.shift),
          gid: shiftId(ns.gid, c.shift),
        });
      close(typeof d === "number" ? d : null);
    } else if (a.do === "keep" || (a.do === "conflict" && c.skip(path))) {
      // A directory is a change of its own only if its metadata changed, or the image had none.
      if (kind !== "dir" || l !== o) c.out.kept.push(`/${path}`);
      if (kind === "dir" && !o?.startsWith("d:") && n?.startsWith("d:")) c.makeOpaque.push(path);
    } else if (a.do === "conflict") {
      c.out.conflicts.push(`/${path}`);
      if (kind === "dir" && !o?.startsWith("d:") && n?.startsWith("d:")) c.makeOpaque.push(path);
      if (a.keepNew && newImg !== null && !c.preview) await keepNewBeside(c, dir, name, newImg);
    }
    if (a.descend && kind === "dir") {
      const [d, od, nd] = [subdir(dir, name), subdir(oldImg, name), subdir(newImg, name)];
      try {
        if (d !== null) await mergeDir(c, d, path, od, nd);
      } finally {
        for (const x of [d, od, nd]) close(x);
      }
    }
  }
}

/** Copies the new image's NAME beside the local one, as NAME.boxctl-new. */
async function keepNewBeside(c: MergeContext, dir: number, name: string, newImg: number) {
  const { fd, path } = c.scratch;
  rmSync(at(fd, name), { recursive: true, force: true });
  await copyEntries(c.r, newImg, [name], fd, path, c.shift);
  rmSync(at(dir, name + CONFLICT_SUFFIX), { recursive: true, force: true });
  renameSync(at(fd, name), at(dir, name + CONFLICT_SUFFIX));
}
