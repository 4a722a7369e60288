// Instances on disk: an upper and a work dir per generation, under
// machines/NAME/instances/GEN. Creating, emptying, measuring and removing
// them; what is mounted where is overlay/'s business.
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statfsSync,
  statSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { fsyncDir, makeDir, removeTree } from "../host/files.ts";
import type { Runner } from "../host/runner.ts";
import type { Instance, MachineState } from "./machine.ts";
import { machineIdFacts, machineIdSeed, sharedMachineIds, writeSeed } from "./machine-id.ts";

/**
 * Creates an instance's empty upper and work dirs. The upper dir's root is
 * the container's /, so it takes the image root's owner and mode; the dirs
 * above it are root-only, since the upper holds the container's setuid files.
 */
export function createInstanceDirs(r: Runner, name: string, inst: Instance): void {
  makeDir(r, paths.instance(name, inst.gen), 0o700);
  makeDir(r, paths.work(name, inst.gen), 0o700);
  const upper = paths.upper(name, inst.gen);
  r.effect(`mkdir ${upper}, owned and moded like the image's root${shiftNote(inst)}`, () => {
    if (existsSync(upper)) return;
    const tmp = `${upper}.new`;
    rmSync(tmp, { recursive: true, force: true });
    freshUpper(tmp, inst);
    fsyncDir(tmp);
    renameSync(tmp, upper);
    // On disk before the record names the instance (registerInstance).
    fsyncDir(paths.instance(name, inst.gen));
  });
}

const shiftNote = (inst: Instance) =>
  inst.uidBase ? `, its uids shifted to ${inst.uidBase} (private users)` : "";

/**
 * An empty upper dir for inst at dir: the container's /, so owned and
 * moded like the image's root (its uids shifted into a private-users
 * instance's range), holding only what gives the machine its own machine
 * ID when the image carries one (machine-id.ts).
 */
function freshUpper(dir: string, inst: Instance): void {
  const image = paths.imageRoot(inst.image);
  const root = statSync(image);
  const shift = inst.uidBase ?? 0;
  mkdirSync(dir, { mode: root.mode & 0o7777 });
  chmodSync(dir, root.mode & 0o7777);
  chownSync(dir, root.uid + shift, root.gid + shift);
  writeSeed(dir, image, machineIdSeed(sharedMachineIds(machineIdFacts(image))), shift);
}

/** Refuses a machine name whose root exists but that boxctl does not manage. */
export function checkMountPointFree(name: string): void {
  const root = paths.machineRoot(name);
  if (existsSync(root)) {
    throw new BoxError(
      `${root} already exists and boxctl does not manage it`,
      `pick another machine name; or move that container to boxctl, keeping it as the way back: stop it, tar its tree, boxctl stage-image the tarball, machinectl rename ${name} ${name}-old, then cut over (README, "An existing container")`,
    );
  }
}

/** statfs(2)'s f_type for overlayfs (OVERLAYFS_SUPER_MAGIC, linux/magic.h). */
export const OVERLAYFS_MAGIC = 0x794c7630;

/**
 * Refuses a store on overlayfs: the kernel does not take an upper dir on
 * it ("not supported as upperdir"), which would show only as a failed
 * mount once a cutover has begun. fsType: statfs of the store, if known.
 */
export function refuseOverlayStore(fsType = storeFsType()): void {
  if (fsType === OVERLAYFS_MAGIC)
    throw new BoxError(
      `the store ${paths.store()} is on overlayfs, which cannot hold an instance's changes (the kernel refuses an overlay upper dir there)`,
      `mount another file system (ext4, xfs or btrfs) at ${paths.store()}, then stage the images again`,
    );
}

function storeFsType(): number | undefined {
  try {
    return statfsSync(paths.store()).type;
  } catch {
    return undefined;
  }
}

export function ensureMountPoint(r: Runner, name: string): void {
  makeDir(r, paths.machineRoot(name), 0o700);
}

/** Bytes the instance's changes take on disk (du of its upper dir); null if unreadable. */
export async function changesSize(r: Runner, name: string, gen: number): Promise<number | null> {
  const res = await r.run(["du", "-s", "-B1", "-x", paths.upper(name, gen)], { check: false });
  const n = Number.parseInt(res.stdout, 10);
  return res.code === 0 && Number.isFinite(n) ? n : null;
}

export function nextGen(m: MachineState | null, name: string): number {
  let gen = Math.max(0, ...(m?.instances.map((i) => i.gen) ?? []));
  // A directory left by a crash before it was recorded still counts as taken.
  while (existsSync(paths.instance(name, gen + 1))) gen++;
  return gen + 1;
}

/**
 * Replaces the upper and work dirs with empty ones by renames, so that a
 * crash leaves either the old dir or the new one in place, never a half-
 * emptied one. Safe to run again after a crash part-way through.
 */
export async function discardChanges(r: Runner, name: string, inst: Instance): Promise<void> {
  const upper = paths.upper(name, inst.gen);
  const work = paths.work(name, inst.gen);
  for (const dir of [upper, work]) {
    const fresh = `${dir}.new`;
    if (!existsSync(dir) && existsSync(fresh)) {
      r.effect(`mv ${fresh} ${dir}`, () => {
        renameSync(fresh, dir);
        fsyncDir(dirname(dir));
      });
      continue;
    }
    await removeTree(r, fresh);
    r.effect(`replace ${dir} by an empty ${fresh}, keeping the old one as ${dir}.discarded`, () => {
      if (dir === upper) freshUpper(fresh, inst);
      else mkdirSync(fresh, { mode: 0o700 });
      fsyncDir(fresh);
    });
    await removeTree(r, `${dir}.discarded`);
    r.effect(`mv ${dir} ${dir}.discarded; mv ${fresh} ${dir}`, () => {
      renameSync(dir, `${dir}.discarded`);
      renameSync(fresh, dir);
      fsyncDir(dirname(dir));
    });
  }
  await purgeDiscarded(r, name, inst);
}

/** Removes what discardChanges set aside. */
export async function purgeDiscarded(r: Runner, name: string, inst: Instance): Promise<void> {
  for (const dir of [paths.upper(name, inst.gen), paths.work(name, inst.gen)]) {
    await removeTree(r, `${dir}.discarded`);
    await removeTree(r, `${dir}.new`);
  }
}

export async function removeInstanceDirs(r: Runner, name: string, gen: number): Promise<void> {
  await removeTree(r, paths.instance(name, gen));
}

/** Every instance directory of the machine, listed or not (a crash can leave one unlisted). */
export function instanceGensOnDisk(name: string): number[] {
  let names: string[];
  try {
    names = readdirSync(join(paths.machine(name), "instances"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return names
    .filter((n) => /^[1-9]\d*$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/**
 * delete-machine's last step: everything in machines/NAME but intent.json
 * (the operation's own record, which goes last) and machine.json (which
 * the step before removed, durably), then the empty mount
 * point. A mount point that holds files (written while nothing was mounted
 * on it) is not boxctl's to delete: it stays, and false says so.
 */
export async function removeMachineFiles(r: Runner, name: string): Promise<boolean> {
  const dir = paths.machine(name);
  const entries = existsSync(dir) ? readdirSync(dir) : [];
  for (const e of entries.filter((n) => n !== "intent.json" && n !== "machine.json").sort())
    await removeTree(r, join(dir, e));
  const root = paths.machineRoot(name);
  let removed = true;
  r.effect(`rmdir ${root}`, () => {
    try {
      rmdirSync(root);
      fsyncDir(dirname(root));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST") removed = false;
      else if (code !== "ENOENT") throw e;
    }
  });
  return removed;
}

/** Once intent.json is gone: the machine's empty directory in the store. */
export function removeMachineDir(r: Runner, name: string): void {
  r.effect(`rmdir ${paths.machine(name)}`, () => {
    try {
      rmdirSync(paths.machine(name));
    } catch (e) {
      // Left non-empty only by something else writing there: not boxctl's to delete.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTEMPTY") throw e;
    }
  });
}
