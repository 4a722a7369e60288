// "Changes made up to the stop are carried." The carry step copies while
// the container runs; once it is stopped, carry-final compares a
// fingerprint of what was carried from (the old upper dir's carried
// subtrees) with the one taken just before the copy began. Equal, the
// usual case, costs one walk of lstat calls in the downtime. Different (a
// file written in the window between the copy and the stop), the new
// instance's upper dir is emptied and carried again in full from the now
// quiet old instance: slower, but never a half-merged /etc.
//
// The fingerprint is the entries' count, total size and newest ctime.
// ctime is set by the kernel on every change to an entry, content,
// metadata or xattrs alike, and a directory's on every entry added,
// removed or renamed in it; a container cannot set it back (that needs
// CAP_SYS_TIME, which systemd-nspawn does not grant).
import { rmSync } from "node:fs";
import { paths } from "../base/paths.ts";
import type { Runner } from "../host/runner.ts";
import type { CarryPolicy, Instance } from "../store/machine.ts";
import { type CarryReport, carry, type IdBases } from "./carry.ts";
import { at, close, listAt, lstatAt, openDirAt, openPath, openTrusted } from "./fsafe.ts";

interface Acc {
  count: number;
  size: number;
  ctime: number;
}

function addEntry(acc: Acc, fd: number, name: string): boolean {
  const st = lstatAt(fd, name);
  if (!st) return false;
  acc.count++;
  acc.size += st.size;
  acc.ctime = Math.max(acc.ctime, st.ctimeMs);
  return st.isDirectory();
}

function addTree(acc: Acc, fd: number, name: string): void {
  if (!addEntry(acc, fd, name)) return;
  const d = openDirAt(fd, name);
  if (typeof d !== "number") return;
  try {
    for (const n of listAt(d)) addTree(acc, d, n);
  } finally {
    close(d);
  }
}

/** The fingerprint of the old instance's upper dir where policy carries from. */
export function carryFingerprint(name: string, old: Instance, policy: CarryPolicy): string {
  const acc: Acc = { count: 0, size: 0, ctime: 0 };
  const upper = openTrusted(paths.upper(name, old.gen));
  try {
    const roots = [...(policy.etc || policy.identity ? ["/etc"] : []), ...policy.paths];
    for (const p of roots) {
      // Each directory above the path too: the path appearing or going changes its parent.
      const parts = p.slice(1).split("/");
      let fd: number | null = openPath(upper, []) as number;
      for (let i = 0; fd !== null && i < parts.length; i++) {
        const part = parts[i] as string;
        if (i === parts.length - 1) {
          addTree(acc, fd, part);
          break;
        }
        addEntry(acc, fd, part);
        const next: number | string = openDirAt(fd, part);
        close(fd);
        fd = typeof next === "number" ? next : null;
      }
      close(fd);
    }
  } finally {
    close(upper);
  }
  return `${acc.count}:${acc.size}:${acc.ctime}`;
}

/** Empties the new instance's upper dir (never mounted in a container yet) and carries again. */
export async function carryAgain(
  r: Runner,
  name: string,
  old: Instance,
  target: Instance,
  policy: CarryPolicy,
  bases?: IdBases,
): Promise<CarryReport> {
  const upper = openTrusted(paths.upper(name, target.gen));
  try {
    for (const n of listAt(upper)) rmSync(at(upper, n), { recursive: true, force: true });
  } finally {
    close(upper);
  }
  return carry(r, name, old, target, policy, bases);
}
