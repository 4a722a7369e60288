// A machine's root: the overlay of one instance at /var/lib/machines/NAME,
// mounted by its generated mount unit, and the .nspawn settings beside it.
// Switching the root between instances is the shared core of cutover,
// fallback, reset and recovery; every function here is idempotent, so
// that recovery can run it again after a crash.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { makeDir, removeFileDurably, writeFileAtomic } from "../host/files.ts";
import { mountAt, overlayOption } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import {
  daemonReload,
  mountUnitName,
  resetFailed,
  startMount,
  stopMachine,
  stopMountUnit,
  umount,
  unitInfo,
} from "../host/systemd.ts";
import { removeInstanceDirs } from "../store/instances.ts";
import type { Instance } from "../store/machine.ts";
import { ensureRecoveryUnit } from "./recovery-unit.ts";
import { mountUnitText, nspawnSettingsText, type OverlaySpec } from "./units.ts";

export const mountUnitPath = (name: string) =>
  join(paths.unitDir(), mountUnitName(paths.machineRoot(name)));

export function overlaySpec(name: string, inst: Instance): OverlaySpec {
  return {
    machine: name,
    gen: inst.gen,
    image: inst.image,
    where: paths.machineRoot(name),
    lower: paths.imageRoot(inst.image),
    upper: paths.upper(name, inst.gen),
    work: paths.work(name, inst.gen),
  };
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

/** Puts boxctl's setting into NAME.nspawn, keeping every line the user wrote. */
export function writeSettings(r: Runner, name: string): void {
  const old = readOrNull(paths.nspawnFile(name));
  const text = nspawnSettingsText(old);
  if (text === old) return;
  makeDir(r, paths.nspawnDir(), 0o755);
  writeFileAtomic(r, paths.nspawnFile(name), text);
}

// Power cuts (issue 14). The mount unit in /etc is what systemd mounts at
// boot, so it only ever names the instance machine.json calls current.
// A switch in progress points the unit at its target in /run instead
// (stageMountUnit): a drop-in that overrides the /etc unit's Options=, or
// the whole unit when /etc has none yet (a machine's first cutover; a
// drop-in without a fragment does not load). /run is a tmpfs, so a power
// cut at any moment boots the committed instance; the commit step moves
// the unit to /etc (writeMountUnit), which also removes the /run copy.

/** The switch's runtime copy of the mount unit: a whole unit, or a drop-in over /etc's. */
export function runtimeUnitPaths(name: string): { fragment: string; dropIn: string } {
  const unit = join(paths.runtimeUnitDir(), mountUnitName(paths.machineRoot(name)));
  return { fragment: unit, dropIn: join(`${unit}.d`, "50-boxctl-switch.conf") };
}

/**
 * Points the mount unit at inst for this boot only (see above) and
 * reloads systemd. Not fsynced: it is meant not to survive a power cut.
 */
export async function stageMountUnit(r: Runner, name: string, inst: Instance): Promise<void> {
  const text = mountUnitText(overlaySpec(name, inst));
  const { fragment, dropIn } = runtimeUnitPaths(name);
  // Every setting of the text is single-valued (it replaces /etc's) or a
  // list that only adds dependencies, so the whole text serves as the drop-in.
  const path = readOrNull(mountUnitPath(name)) === null ? fragment : dropIn;
  removeRuntimeUnit(r, name);
  makeDir(r, dirname(path), 0o755);
  writeFileAtomic(r, path, text, { durable: false });
  await daemonReload(r);
}

/** Removes the switch's runtime copy; true if there was one. */
function removeRuntimeUnit(r: Runner, name: string): boolean {
  const found = Object.values(runtimeUnitPaths(name)).filter((p) => readOrNull(p) !== null);
  for (const p of found) removeFileDurably(r, p);
  return found.length > 0;
}

/**
 * Points the mount unit in /etc at inst (or removes it for none), drops
 * the runtime copy, installs boxctl's boot-time recovery unit if needed,
 * and reloads systemd.
 */
export async function writeMountUnit(r: Runner, name: string, inst: Instance | undefined) {
  if (inst) writeFileAtomic(r, mountUnitPath(name), mountUnitText(overlaySpec(name, inst)));
  else removeFileDurably(r, mountUnitPath(name));
  removeRuntimeUnit(r, name);
  if (inst) ensureRecoveryUnit(r);
  await daemonReload(r);
}

/** Whether systemd's unit for the root names inst: /etc's file, and nothing in /run over it. */
export function mountUnitMatches(name: string, inst: Instance | undefined): boolean {
  const { fragment, dropIn } = runtimeUnitPaths(name);
  if (readOrNull(fragment) !== null || readOrNull(dropIn) !== null) return false;
  return readOrNull(mountUnitPath(name)) === (inst ? mountUnitText(overlaySpec(name, inst)) : null);
}

/** The upper dir the /etc mount unit names: what the next boot mounts; null without one. */
export function upperAtNextBoot(name: string): string | null {
  const text = readOrNull(mountUnitPath(name));
  return text === null ? null : (/upperdir=([^,\n]*)/.exec(text)?.[1] ?? "");
}

/** The upper dir of the overlay mounted at the machine's root now: null if nothing is mounted, "" if it is not an overlay. */
export function mountedUpper(r: Runner, name: string): string | null {
  const m = mountAt(paths.machineRoot(name), r.mountinfo());
  if (!m) return null;
  if (m.fstype !== "overlay") return "";
  return overlayOption(m.superOptions, "upperdir") ?? "";
}

/** Unmounts the machine's root through its unit (umount(8) if systemd cannot). */
export async function stopMount(r: Runner, name: string): Promise<void> {
  const root = paths.machineRoot(name);
  const res = await stopMountUnit(r, root);
  if (res.code !== 0 && mountedUpper(r, name) !== null) {
    // systemd can fail to spawn umount for a unit whose cgroup vanished
    // (seen on cgroup v1 hosts after the container stopped); umount(8) by
    // hand does the same, and systemd follows the mount table.
    await umount(r, root, true);
    await resetFailed(r, mountUnitName(root));
  }
  const left = r.whenReal(() => mountedUpper(r, name)) ?? null;
  if (left !== null) {
    throw new BoxError(
      `${root} is still mounted after stopping its mount unit`,
      `find what keeps it busy with: fuser -vm ${root}`,
    );
  }
}

/** Unmounts the machine's root if anything is mounted there. */
export async function unmountIfMounted(r: Runner, name: string): Promise<void> {
  if (r.dryRun || mountedUpper(r, name) !== null) await stopMount(r, name);
}

/**
 * Makes inst the overlay mounted at the machine's root (nothing, for
 * undefined), stopping the container first if anything has to change.
 */
export async function remountTo(r: Runner, name: string, inst: Instance | undefined) {
  const want = inst ? paths.upper(name, inst.gen) : null;
  const have = mountedUpper(r, name);
  if (have === want) {
    // The right instance is mounted; only the unit file may need putting back.
    if (!mountUnitMatches(name, inst)) await writeMountUnit(r, name, inst);
    return;
  }
  await stopMachine(r, name);
  if (have !== null) await stopMount(r, name);
  await writeMountUnit(r, name, inst);
  await resetFailed(r, mountUnitName(paths.machineRoot(name)));
  if (inst) await startMount(r, paths.machineRoot(name));
}

/**
 * Puts target's overlay at the machine's root on the host while the
 * container, if it runs, goes on running on the old one. A running
 * container's root is its own mount namespace's copy of the old overlay:
 * unmounting the host's copy neither disturbs it nor is refused by it, and
 * the new mount does not propagate into it (checked on systemd 252 and
 * 257). So the unmount and the mount, two processes, happen before the
 * downtime instead of in it, and the restart that follows is a plain one.
 * Until that restart the host and the container see different roots;
 * recovery handles that by rolling back through remountTo, which stops
 * the container first.
 */
export async function remountLive(r: Runner, name: string, target: Instance): Promise<void> {
  const root = paths.machineRoot(name);
  const have = mountedUpper(r, name);
  if (have === paths.upper(name, target.gen)) return;
  if (have !== null) {
    await unmountRoot(r, name);
    await r.whenReal(() => waitMountUnitDown(r, root));
  }
  await startMount(r, root);
  r.whenReal(() => checkMounted(r, name, target));
}

/**
 * Unmounts the host's copy of the root. A busy root is usually brief: a
 * container that has just stopped keeps it busy until the kernel has
 * freed its mount namespace, asynchronously. A root that a host process
 * really uses stays busy, and that error names the fix.
 */
async function unmountRoot(r: Runner, name: string): Promise<void> {
  const root = paths.machineRoot(name);
  for (let i = 0; ; i++) {
    const res = await umount(r, root);
    if (r.dryRun || mountedUpper(r, name) === null) return;
    if (i >= 10) {
      // The runner runs umount in the C locale, so its message is English.
      const why = /busy/i.test(res.stderr)
        ? "it is busy (a process on the host uses it)"
        : res.stderr.trim() || `umount exited ${res.code}`;
      throw new BoxError(
        `${root} could not be unmounted; ${why}`,
        `find what keeps it busy with: fuser -vm ${root}`,
      );
    }
    // A busy root gets time; a umount that succeeded with a mount still
    // there uncovered an earlier one stacked under it, which goes at once.
    if (res.code !== 0) await r.sleep(300);
  }
}

/**
 * systemd learns of an unmount from the mount table, not from us; asking
 * it to start the mount unit before it has noticed would be a no-op.
 */
async function waitMountUnitDown(r: Runner, root: string): Promise<void> {
  const unit = mountUnitName(root);
  for (let i = 0; i < 500; i++) {
    if (!["active", "deactivating"].includes((await unitInfo(r, unit)).activeState)) return;
    await r.sleep(10);
  }
  throw new BoxError(
    `systemd still reports ${unit} active after ${root} was unmounted`,
    `see: systemctl status ${unit}`,
  );
}

function checkMounted(r: Runner, name: string, target: Instance): void {
  const have = mountedUpper(r, name);
  if (have !== paths.upper(name, target.gen)) {
    throw new BoxError(
      `${paths.machineRoot(name)} has ${have ? `${have} mounted` : "nothing mounted"}, not instance ${target.gen}`,
      `see: systemctl status ${mountUnitName(paths.machineRoot(name))}`,
    );
  }
}

/** Deletes an instance's directories; never one that is mounted as the machine's root. */
export async function removeInstance(r: Runner, name: string, gen: number): Promise<void> {
  // The current instance is never deleted; this guards against a mount the state does not know.
  if (mountedUpper(r, name) === paths.upper(name, gen)) {
    throw new BoxError(
      `instance ${gen} is mounted at ${paths.machineRoot(name)}`,
      `run boxctl recover ${name}, then try again`,
    );
  }
  await removeInstanceDirs(r, name, gen);
}
