// The files that wire an instance in as a machine's root, all generated
// from the instance alone: the overlay's mount unit at /var/lib/machines/NAME,
// NAME.nspawn's user namespace setting, and for a private-users instance the
// unit that mounts its idmapped view of the image, with the script it runs.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { paths } from "../base/paths.ts";
import { makeDir, removeFileDurably, writeFileAtomic } from "../host/files.ts";
import type { Runner } from "../host/runner.ts";
import { daemonReload, mountUnitName } from "../host/systemd.ts";
import type { Instance } from "../store/machine.ts";
import { mountUnitText, nspawnSettingsText, type OverlaySpec } from "./units.ts";
import { VIEW_SCRIPT, type ViewSpec, viewUnitName, viewUnitText } from "./views.ts";

export const mountUnitPath = (name: string) =>
  join(paths.unitDir(), mountUnitName(paths.machineRoot(name)));

const viewUnitPath = (name: string, gen: number) => join(paths.unitDir(), viewUnitName(name, gen));

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

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
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
    [paths.nspawnFile(name), nspawnSettingsText(readOrNull(paths.nspawnFile(name)), base)],
  );
  return files;
}

/**
 * Points the machine's root at inst (or at nothing: the mount unit goes)
 * and reloads systemd. The new mount unit takes effect at the next mount;
 * NAME.nspawn at the next start of the container.
 */
export async function writeRootUnits(r: Runner, name: string, inst: Instance | undefined) {
  if (inst) {
    for (const [path, text] of rootFiles(name, inst)) {
      if (readOrNull(path) === text) continue;
      const dir = join(path, "..");
      if (!existsSync(dir)) makeDir(r, dir, 0o755);
      writeFileAtomic(r, path, text);
    }
  } else removeFileDurably(r, mountUnitPath(name));
  await daemonReload(r);
}

/** Whether the files on disk wire inst in (none, for undefined). */
export function rootUnitsMatch(name: string, inst: Instance | undefined): boolean {
  if (!inst) return readOrNull(mountUnitPath(name)) === null;
  return rootFiles(name, inst).every(([path, text]) => readOrNull(path) === text);
}

/** A deleted instance's view unit goes with it. */
export function removeViewUnit(r: Runner, name: string, gen: number): void {
  removeFileDurably(r, viewUnitPath(name, gen), { quiet: true });
}
