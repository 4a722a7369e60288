// The files that wire an instance in as a machine's root, all generated
// from the instance alone: the overlay's mount unit at /var/lib/machines/NAME,
// NAME.nspawn's user namespace setting, the drop-in that keeps nspawn@NAME
// from starting without that setting, and for a private-users instance the
// unit that mounts its idmapped view of the image, with the script it runs.
import { existsSync, rmdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { paths } from "../base/paths.ts";
import { makeDir, readTextOrNull, removeFileDurably, writeFileAtomic } from "../host/files.ts";
import { mountAt } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import {
  daemonReload,
  mountUnitName,
  nspawnUnit,
  resetFailed,
  startDaemonReload,
  stopUnits,
} from "../host/systemd.ts";
import type { Instance } from "../store/machine.ts";
import { refuseLinkedFile, settingsLeft } from "./linked-settings.ts";
import { ensureRecoveryUnit } from "./recovery-unit.ts";
import { mountUnitText, nspawnGuardText, nspawnSettingsText, type OverlaySpec } from "./units.ts";
import { VIEW_SCRIPT, type ViewSpec, viewUnitName, viewUnitText } from "./views.ts";

export const mountUnitPath = (name: string) =>
  join(paths.unitDir(), mountUnitName(paths.machineRoot(name)));

const viewUnitPath = (name: string, gen: number) => join(paths.unitDir(), viewUnitName(name, gen));

/** boxctl's drop-in for systemd-nspawn@NAME.service (units.ts, nspawnGuardText). */
export const nspawnGuardPath = (name: string) =>
  join(paths.unitDir(), `${nspawnUnit(name)}.d`, "50-boxctl.conf");

/** The instance's uid base, or null for one without private users. */
export const baseOf = (inst: Instance | undefined): number | null => inst?.uidBase ?? null;

export function viewSpec(name: string, inst: Instance, base: number): ViewSpec {
  return {
    machine: name,
    gen: inst.gen,
    image: inst.image,
    source: paths.imageRoot(inst.image),
    view: paths.view(name, inst.gen),
    base,
    script: paths.viewScript(),
  };
}

export function overlaySpec(name: string, inst: Instance): OverlaySpec {
  const base = baseOf(inst);
  return {
    machine: name,
    gen: inst.gen,
    image: inst.image,
    where: paths.machineRoot(name),
    lower: paths.imageRoot(inst.image),
    upper: paths.upper(name, inst.gen),
    work: paths.work(name, inst.gen),
    ...(base === null
      ? {}
      : { view: { path: paths.view(name, inst.gen), unit: viewUnitName(name, inst.gen) } }),
  };
}

/** Every file inst needs, with its text; NAME.nspawn keeps every line the user wrote. */
function rootFiles(name: string, inst: Instance): [string, string][] {
  const base = baseOf(inst);
  const files: [string, string][] = [];
  if (base !== null)
    files.push(
      [paths.viewScript(), VIEW_SCRIPT],
      [viewUnitPath(name, inst.gen), viewUnitText(viewSpec(name, inst, base))],
    );
  files.push(
    [mountUnitPath(name), mountUnitText(overlaySpec(name, inst))],
    [paths.nspawnFile(name), nspawnSettingsText(readTextOrNull(paths.nspawnFile(name)), base)],
    [nspawnGuardPath(name), nspawnGuardText(name, paths.nspawnFile(name), base)],
  );
  return files;
}

/**
 * Points the machine's root at inst (or at nothing: the mount unit goes)
 * in /etc, for this boot and the next, drops a switch's /run copy, installs
 * boot-time recovery, and reloads systemd. The new mount unit takes effect at the next mount;
 * NAME.nspawn at the next start of the container.
 *
 * background: the reload is started and not waited for. A switch's commit
 * uses it: there the loaded mount unit (the /run copy) already mounts
 * inst, so the files in /etc change what the next boot does, not what
 * systemd does now, and the command returns 140-470 ms sooner. Every
 * step that mounts reloads and waits itself (stageRootUnits, remountTo).
 */
export async function writeRootUnits(
  r: Runner,
  name: string,
  inst: Instance | undefined,
  reload: "wait" | "background" = "wait",
) {
  if (inst) for (const [path, text] of rootFiles(name, inst)) writeIfChanged(r, path, text);
  else removeFileDurably(r, mountUnitPath(name));
  removeRuntimeUnit(r, name);
  if (inst) ensureRecoveryUnit(r);
  await (reload === "background" ? startDaemonReload(r) : daemonReload(r));
}

/** Whether the files on disk wire inst in (none, for undefined), with no switch's copy over them. */
export function rootUnitsMatch(name: string, inst: Instance | undefined): boolean {
  return rootFilesDiffering(name, inst).length === 0;
}

/** The files that keep the disk from wiring inst in: a switch's /run copy, or a file not as boxctl writes it. */
export function rootFilesDiffering(name: string, inst: Instance | undefined): string[] {
  const { fragment, dropIn } = runtimeUnitPaths(name);
  const left = [fragment, dropIn].filter((p) => readTextOrNull(p) !== null);
  if (!inst)
    return readTextOrNull(mountUnitPath(name)) === null ? left : [...left, mountUnitPath(name)];
  return [
    ...left,
    ...rootFiles(name, inst)
      .filter(([path, text]) => readTextOrNull(path) !== text)
      .map(([path]) => path),
  ];
}

/** The upper dir the /etc mount unit names: what the next boot mounts; null without one. */
export function upperAtNextBoot(name: string): string | null {
  const text = readTextOrNull(mountUnitPath(name));
  return text === null ? null : (/upperdir=([^,\n]*)/.exec(text)?.[1] ?? "");
}

// Power cuts. The mount unit in /etc is what systemd mounts at boot, so it
// only ever names the instance machine.json calls current. A switch in
// progress points the unit at its target in /run instead (stageRootUnits):
// a drop-in that overrides the /etc unit's Options=, or the whole unit
// when /etc has none yet (a machine's first cutover; a drop-in without a
// fragment does not load). /run is a tmpfs, so a power cut at any moment
// boots the committed instance; the commit step writes /etc
// (writeRootUnits), which also removes the /run copy. NAME.nspawn, its
// check's drop-in and a private-users instance's view unit cannot live in
// /run (/etc wins for them): they are written to /etc at the switch, and
// boot-time recovery, which runs before any boxctl mount (After= in the
// mount unit), puts them back if the switch was not committed.

/** The switch's runtime copy of the mount unit: a whole unit, or a drop-in over /etc's. */
export function runtimeUnitPaths(name: string): { fragment: string; dropIn: string } {
  const unit = join(paths.runtimeUnitDir(), mountUnitName(paths.machineRoot(name)));
  return { fragment: unit, dropIn: join(`${unit}.d`, "50-boxctl-switch.conf") };
}

/**
 * Points the machine's root at inst for this boot only (see above) and
 * reloads systemd. Not fsynced: the mount unit in /run is meant not to
 * survive a power cut. The drop-in's Requires= of the new view adds to the
 * /etc unit's (systemd cannot reset a dependency list in a drop-in), so the
 * old instance's view may stay mounted, unused, until the commit.
 */
export async function stageRootUnits(r: Runner, name: string, inst: Instance): Promise<void> {
  for (const [path, text] of rootFiles(name, inst).filter(([p]) => p !== mountUnitPath(name)))
    writeIfChanged(r, path, text);
  const { fragment, dropIn } = runtimeUnitPaths(name);
  const path = readTextOrNull(mountUnitPath(name)) === null ? fragment : dropIn;
  removeRuntimeUnit(r, name);
  makeDir(r, dirname(path), 0o755);
  writeFileAtomic(r, path, mountUnitText(overlaySpec(name, inst)), { durable: false });
  await daemonReload(r);
}

function removeRuntimeUnit(r: Runner, name: string): void {
  const { fragment, dropIn } = runtimeUnitPaths(name);
  for (const p of [fragment, dropIn]) if (readTextOrNull(p) !== null) removeFileDurably(r, p);
  // The drop-in's directory too, unless someone else's drop-in is in it.
  removeEmptyDirs(r, [dirname(dropIn)]);
}

/** Each of dirs that is empty and not a mount point; the others stay, not boxctl's to force. */
function removeEmptyDirs(r: Runner, dirs: string[]): void {
  if (r.dryRun) return;
  for (const dir of dirs) {
    try {
      rmdirSync(dir);
    } catch {
      // ENOENT, EBUSY, ENOTEMPTY: nothing to do, or not ours.
    }
  }
}

function writeIfChanged(r: Runner, path: string, text: string): void {
  if (readTextOrNull(path) === text) return;
  refuseLinkedFile(path, text);
  const dir = dirname(path);
  if (!existsSync(dir)) makeDir(r, dir, 0o755);
  writeFileAtomic(r, path, text);
}

/**
 * delete-machine: takes the machine off the host. Its instances' views
 * (gens) are stopped, the mount unit (with a switch's /run copy) and the
 * view units removed, boxctl's two settings taken out of NAME.nspawn (the
 * file goes when nothing of the user's is left, as machinectl remove
 * deletes it), the units' failed states reset, and systemd reloaded.
 * Idempotent: recovery runs it again.
 */
export async function unwireMachine(r: Runner, name: string, gens: number[]): Promise<void> {
  const views = withViewUnits(name, gens);
  // Only a mounted view is stopped: at boot (recovery) none is, and a stop
  // there would wait on the boot's own jobs.
  const table = r.mountinfo();
  const mounted = views.filter((g) => mountAt(paths.view(name, g), table));
  if (mounted.length)
    await stopUnits(
      r,
      mounted.map((g) => viewUnitName(name, g)),
    );
  if (readTextOrNull(mountUnitPath(name)) !== null) removeFileDurably(r, mountUnitPath(name));
  removeRuntimeUnit(r, name);
  for (const g of views) removeFileDurably(r, viewUnitPath(name, g));
  if (readTextOrNull(nspawnGuardPath(name)) !== null) {
    removeFileDurably(r, nspawnGuardPath(name));
    // The directory too, unless the admin's own drop-ins are in it.
    removeEmptyDirs(r, [dirname(nspawnGuardPath(name))]);
  }
  const settings = readTextOrNull(paths.nspawnFile(name));
  const left = settingsLeft(settings);
  if (left !== settings) refuseLinkedFile(paths.nspawnFile(name), left, true);
  if (settings !== null && left === null) removeFileDurably(r, paths.nspawnFile(name));
  else if (left !== null && left !== settings) writeFileAtomic(r, paths.nspawnFile(name), left);
  await daemonReload(r);
  await resetFailed(r, nspawnUnit(name), mountUnitName(paths.machineRoot(name)));
  removeViewDirs(r, name, gens);
}

/** The generations among gens whose view unit is on disk (private-users instances). */
const withViewUnits = (name: string, gens: number[]) =>
  gens.filter((g) => existsSync(viewUnitPath(name, g)));

/** The machine's units that a boot starts: the container, its root's mount, and its views. */
export function machineUnits(name: string, gens: number[]): string[] {
  return [
    nspawnUnit(name),
    mountUnitName(paths.machineRoot(name)),
    ...withViewUnits(name, gens).map((g) => viewUnitName(name, g)),
  ];
}

/** The views' empty mount points on /run; one still mounted, or not empty, stays. */
function removeViewDirs(r: Runner, name: string, gens: number[]): void {
  removeEmptyDirs(r, [...gens.map((g) => paths.view(name, g)), dirname(paths.view(name, 1))]);
}

/** A deleted instance's view unit goes with it. */
export function removeViewUnit(r: Runner, name: string, gen: number): void {
  removeFileDurably(r, viewUnitPath(name, gen), { quiet: true });
}
