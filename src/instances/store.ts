// Instances on disk and the files that wire the current one into systemd.
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../errors.ts";
import { type Instance, type MachineState, saveMachine } from "../machines/state.ts";
import { mountAt, overlayOption } from "../mounts.ts";
import { paths, UNIT_DIR } from "../paths.ts";
import { run, runnerConfig, showCommand } from "../runner.ts";
import { removeFileDurably, writeFileAtomic } from "../state.ts";
import { daemonReload, mountUnitName } from "../systemd.ts";
import { mountUnitText, nspawnSettingsText, type OverlaySpec } from "./overlay.ts";

export const mountUnitPath = (name: string) =>
  join(UNIT_DIR, mountUnitName(paths.machineRoot(name)));

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

function mkdir(path: string, mode: number): void {
  if (runnerConfig.dryRun) {
    process.stdout.write(`mkdir -m ${mode.toString(8)} ${showCommand([path])}\n`);
    return;
  }
  mkdirSync(path, { recursive: true, mode });
}

/**
 * Creates an instance's empty upper and work dirs. The upper dir's root is
 * the container's /, so it takes the image root's owner and mode; the dirs
 * above it are root-only, since the upper holds the container's setuid files.
 */
export function createInstanceDirs(name: string, inst: Instance): void {
  mkdir(paths.instance(name, inst.gen), 0o700);
  mkdir(paths.work(name, inst.gen), 0o700);
  const upper = paths.upper(name, inst.gen);
  if (runnerConfig.dryRun) {
    mkdir(upper, 0o755);
    return;
  }
  if (existsSync(upper)) return;
  const root = statSync(paths.imageRoot(inst.image));
  const tmp = `${upper}.new`;
  mkdirSync(tmp, { recursive: true, mode: root.mode & 0o7777 });
  chownSync(tmp, root.uid, root.gid);
  renameSync(tmp, upper);
}

/** Refuses a machine name whose root exists but that boxctl does not manage. */
export function checkMountPointFree(name: string): void {
  const root = paths.machineRoot(name);
  if (existsSync(root)) {
    throw new BoxError(
      `${root} already exists and boxctl does not manage it`,
      `pick another machine name, or remove it with: machinectl remove ${name}`,
    );
  }
}

export function ensureMountPoint(name: string): void {
  mkdir(paths.machineRoot(name), 0o700);
}

export function ensureMachineDir(name: string): void {
  mkdir(paths.machine(name), 0o700);
}

export async function writeSettings(name: string): Promise<void> {
  const path = paths.nspawnFile(name);
  let old: string | null = null;
  try {
    old = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  const text = nspawnSettingsText(old);
  if (text === old) return;
  mkdir(paths.nspawnFile(name).replace(/\/[^/]+$/, ""), 0o755);
  writeFileAtomic(path, text);
}

/** Points the mount unit at inst (or removes it for none) and reloads systemd. */
export async function writeMountUnit(name: string, inst: Instance | undefined): Promise<void> {
  if (inst) writeFileAtomic(mountUnitPath(name), mountUnitText(overlaySpec(name, inst)));
  else removeFileDurably(mountUnitPath(name));
  await daemonReload();
}

export function mountUnitMatches(name: string, inst: Instance | undefined): boolean {
  let text: string | null = null;
  try {
    text = readFileSync(mountUnitPath(name), "utf8");
  } catch {}
  return text === (inst ? mountUnitText(overlaySpec(name, inst)) : null);
}

/** The upper dir of the overlay mounted at the machine's root now: null if nothing is mounted, "" if it is not an overlay. */
export async function mountedUpper(name: string): Promise<string | null> {
  const m = mountAt(paths.machineRoot(name));
  if (!m) return null;
  if (m.fstype !== "overlay") return "";
  return overlayOption(m.superOptions, "upperdir") ?? "";
}

export async function stopMount(name: string): Promise<void> {
  const root = paths.machineRoot(name);
  const unit = mountUnitName(root);
  const r = await run(["systemctl", "stop", unit], { mutates: true, check: false });
  if (r.code !== 0 && (await mountedUpper(name)) !== null) {
    // systemd can fail to spawn umount for a unit whose cgroup vanished
    // (seen on cgroup v1 hosts after the container stopped); umount(8) by
    // hand does the same, and systemd follows the mount table.
    await run(["umount", root], { mutates: true });
    await run(["systemctl", "reset-failed", unit], { mutates: true, check: false });
  }
  const left = runnerConfig.dryRun ? null : await mountedUpper(name);
  if (left !== null) {
    throw new BoxError(
      `${paths.machineRoot(name)} is still mounted after stopping its mount unit`,
      `find what keeps it busy with: fuser -vm ${paths.machineRoot(name)}`,
    );
  }
}

/** Bytes the instance's changes take on disk (du of its upper dir); null if unreadable. */
export async function changesSize(name: string, gen: number): Promise<number | null> {
  const r = await run(["du", "-s", "-B1", "-x", paths.upper(name, gen)], { check: false });
  const n = Number.parseInt(r.stdout, 10);
  return r.code === 0 && Number.isFinite(n) ? n : null;
}

export function registerInstance(m: MachineState, inst: Instance): void {
  if (!m.instances.some((i) => i.gen === inst.gen)) m.instances.push(inst);
  m.instances.sort((a, b) => a.gen - b.gen);
  if (!runnerConfig.dryRun) saveMachine(m);
}

export function nextGen(m: MachineState | null, name: string): number {
  let gen = Math.max(0, ...(m?.instances.map((i) => i.gen) ?? []));
  // A directory left by a crash before it was recorded still counts as taken.
  while (existsSync(paths.instance(name, gen + 1))) gen++;
  return gen + 1;
}
