// diff NAME [--instance GEN]: what an instance changed against its image,
// read from its upper dir. Whiteouts (char device 0:0) and opaque dirs
// (trusted.overlay.opaque=y) are deletions; the other trusted.overlay.*
// attributes are the kernel's bookkeeping and are not reported.
import { lstatSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { opaqueDirs } from "../host/opaque.ts";
import type { Runner } from "../host/runner.ts";
import { imageExists } from "../store/images.ts";
import { instanceOf, requireMachine } from "../store/machine.ts";

export interface DiffResult {
  added: string[];
  modified: string[];
  deleted: string[];
}

function lstatOrNull(p: string): Stats | null {
  try {
    return lstatSync(p);
  } catch {
    return null;
  }
}

const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;

function everythingUnder(lower: string, rel: string, out: string[]): void {
  for (const name of readdirSync(join(lower, rel)).sort()) {
    const p = `${rel}/${name}`;
    out.push(p);
    if (lstatOrNull(join(lower, p))?.isDirectory()) everythingUnder(lower, p, out);
  }
}

/**
 * Compares an upper dir with its lower dir; opaque holds the opaque dirs'
 * paths ("/etc/x"). uidShift: a private-users instance's files are owned
 * BASE+N on disk, where its image says N; a change of owner is one of N.
 */
export function diffTrees(
  upper: string,
  lower: string,
  opaque: Set<string>,
  uidShift = 0,
): DiffResult {
  const r: DiffResult = { added: [], modified: [], deleted: [] };
  const walk = (rel: string) => {
    const names = readdirSync(join(upper, rel)).sort();
    if (opaque.has(rel) && lstatOrNull(join(lower, rel))?.isDirectory()) {
      // An opaque dir hides everything the image has there that the upper does not replace.
      const kept = new Set(names);
      for (const name of readdirSync(join(lower, rel)).sort()) {
        if (kept.has(name)) continue;
        const p = `${rel}/${name}`;
        r.deleted.push(p);
        if (lstatOrNull(join(lower, p))?.isDirectory()) everythingUnder(lower, p, r.deleted);
      }
    }
    for (const name of names) {
      const p = `${rel}/${name}`;
      const st = lstatSync(join(upper, p));
      const below = lstatOrNull(join(lower, p));
      if (isWhiteout(st)) {
        if (!below) continue;
        r.deleted.push(p);
        if (below.isDirectory()) everythingUnder(lower, p, r.deleted);
        continue;
      }
      if (!below) r.added.push(p);
      else if (!st.isDirectory() || !below.isDirectory()) r.modified.push(p);
      else if (
        st.mode !== below.mode ||
        st.uid - uidShift !== below.uid ||
        st.gid - uidShift !== below.gid
      )
        r.modified.push(p);
      if (st.isDirectory()) walk(p);
    }
  };
  walk("");
  for (const k of ["added", "modified", "deleted"] as const) r[k].sort();
  return r;
}

export interface DiffDoc extends DiffResult {
  machine: string;
  gen: number;
  image: string;
}

export async function gatherDiff(
  r: Runner,
  name: string,
  gen: number | undefined,
): Promise<DiffDoc> {
  checkName("machine", name);
  const m = requireMachine(name);
  const inst = instanceOf(m, gen ?? m.current);
  if (!inst) {
    throw new BoxError(
      gen === undefined ? `${name} has no current instance` : `${name} has no instance ${gen}`,
      `see its instances with: boxctl history ${name}`,
    );
  }
  if (process.getuid?.() !== 0)
    throw new BoxError(
      "diff reads the kernel's overlay attributes (trusted.*) and needs root",
      `run it as root: sudo boxctl diff ${name}`,
    );
  if (!imageExists(inst.image))
    throw new BoxError(
      `instance ${inst.gen}'s image '${inst.image}' is missing, so there is nothing to compare with`,
      "stage that image again under the same name",
    );
  const upper = paths.upper(name, inst.gen);
  const opaque = await opaqueDirs(r, upper);
  const d = diffTrees(upper, paths.imageRoot(inst.image), opaque, inst.uidBase ?? 0);
  return { machine: name, gen: inst.gen, image: inst.image, ...d };
}
