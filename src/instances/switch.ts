// Switching a machine's root between instances: the shared core of
// cutover-instance, fallback-instance and of recovery. Every function here
// is idempotent, so that recovery can run it again after a crash.
import { BoxError } from "../errors.ts";
import { type Instance, type MachineState, saveMachine } from "../machines/state.ts";
import { paths } from "../paths.ts";
import { run, runnerConfig } from "../runner.ts";
import {
  ensureMounted,
  isRunning,
  mountUnitName,
  resetStartLimits,
  runInMachine,
  startMachine,
  stopMachine,
  waitBooted,
} from "../systemd.ts";
import { mountedUpper, mountUnitMatches, stopMount, writeMountUnit } from "./store.ts";

/**
 * Makes inst the overlay mounted at the machine's root (nothing, for
 * undefined), stopping the container first if anything has to change.
 */
export async function remountTo(name: string, inst: Instance | undefined): Promise<void> {
  const want = inst ? paths.upper(name, inst.gen) : null;
  const have = await mountedUpper(name);
  if (have === want) {
    // The right instance is mounted; only the unit file may need putting back.
    if (!mountUnitMatches(name, inst)) await writeMountUnit(name, inst);
    return;
  }
  await stopMachine(name);
  if (have !== null) await stopMount(name);
  await writeMountUnit(name, inst);
  await resetStartLimits(name);
  if (inst) await ensureMounted(paths.machineRoot(name));
}

/**
 * Stops the container, replaces the overlay at its root with target (which
 * the mount unit already names) and starts the container again, in one
 * systemd job: restarting the mount unit try-restarts the container unit,
 * which requires it (RequiresMountsFor). systemd then runs stop, umount,
 * mount and start back to back, in order, with no round trip through
 * boxctl, so the downtime is a plain restart's plus one umount and one
 * mount. A container that was not running is started afterwards.
 */
export async function restartOnto(
  name: string,
  target: Instance,
  wasRunning: boolean,
): Promise<void> {
  const root = paths.machineRoot(name);
  const unit = mountUnitName(root);
  const r = await run(["systemctl", "restart", unit], { mutates: true, check: false });
  if (r.code !== 0) {
    const have = await mountedUpper(name);
    if (have === null || have === paths.upper(name, target.gen)) {
      throw new BoxError(
        `mounting instance ${target.gen} at ${root} failed: ${r.stderr.trim() || `systemctl restart exited ${r.code}`}`,
        `see: systemctl status ${unit}; journalctl -u ${unit}`,
      );
    }
    await unmountSlowly(name);
    await resetStartLimits(name);
    await startMachine(name);
  }
  // A container that was running is on its way up already; waitBooted
  // follows it, and fails the step if it does not come up. Asking systemd
  // now, or `systemctl start` (a second round of the unit's Wants=,
  // modprobe@), would only slow the boot, as measured on 2 cores.
  else if (!wasRunning) await startMachine(name);
  await checkMounted(name, target);
}

/**
 * The slow path, when systemd's umount found the old root busy. That is
 * usually brief: the stopped container's mount namespace is freed
 * asynchronously, and until then its copy of the root keeps the root busy
 * (seen with two test hosts booting at once). systemd has meanwhile started
 * the container again on the old root, so stop it (once booted) and retry the unmount for
 * a few seconds; a root that a host process really uses stays busy, and
 * that error names the fix.
 */
async function unmountSlowly(name: string): Promise<void> {
  // A container stopped half-way through its boot may ignore the request
  // until nspawn's 90 s stop timeout; let it finish booting first.
  if (await isRunning(name)) await waitBooted(name, 30_000).catch(() => {});
  await stopMachine(name);
  for (let i = 0; ; i++) {
    try {
      await stopMount(name);
      return;
    } catch {
      if (i >= 10) {
        throw new BoxError(
          `${paths.machineRoot(name)} could not be unmounted; it is busy (a process on the host uses it)`,
          `find what keeps it busy with: fuser -vm ${paths.machineRoot(name)}`,
        );
      }
      await new Promise((res) => setTimeout(res, 300));
    }
  }
}

async function checkMounted(name: string, target: Instance): Promise<void> {
  if (runnerConfig.dryRun) return;
  const have = await mountedUpper(name);
  if (have !== paths.upper(name, target.gen)) {
    throw new BoxError(
      `${paths.machineRoot(name)} has ${have ? `${have} mounted` : "nothing mounted"}, not instance ${target.gen}`,
      `see: systemctl status ${mountUnitName(paths.machineRoot(name))}`,
    );
  }
}

/** Boots the container (if it is not running) and waits for it; then runs --check. */
export async function bootAndVerify(
  name: string,
  timeoutMs: number,
  check?: string,
): Promise<void> {
  if (!(await isRunning(name))) await startMachine(name);
  await verifyBooted(name, timeoutMs, check);
}

export async function verifyBooted(name: string, timeoutMs: number, check?: string): Promise<void> {
  if (runnerConfig.dryRun) return;
  await waitBooted(name, timeoutMs);
  if (check === undefined) return;
  // The user's own command, run by the container's /bin/sh, as they would type it in it.
  const r = await runInMachine(name, ["/bin/sh", "-c", check], timeoutMs);
  if (r.code !== 0) {
    const out = `${r.stdout}${r.stderr}`.trim().split("\n").slice(-5).join("\n  ");
    throw new BoxError(
      `--check '${check}' failed inside ${name} (exit ${r.code})${out ? `:\n  ${out}` : ""}`,
      `try it by hand: boxctl login ${name}`,
    );
  }
}

/** The state after a switch to target: the instance it left becomes the fallback. */
export function commitSwitch(
  m: MachineState,
  target: number,
  left: number | null,
  verb: string,
  result: "ok" | "recovered",
  started: string,
  message?: string,
): void {
  const now = new Date().toISOString();
  m.current = target;
  m.fallback = left;
  for (const i of m.instances) if (i.gen === target || i.gen === left) i.lastActive = now;
  m.lastOperation = { verb, started, finished: now, result, ...(message ? { message } : {}) };
  if (!runnerConfig.dryRun) saveMachine(m);
}

/** The state after a failed switch: as it was before, with the failure recorded. */
export function restoreState(
  m: MachineState,
  oldCurrent: number | null,
  oldFallback: number | null,
  verb: string,
  result: "rolled-back" | "recovered",
  started: string,
  message: string,
): void {
  m.current = oldCurrent;
  m.fallback = oldFallback;
  m.lastOperation = { verb, started, finished: new Date().toISOString(), result, message };
  if (!runnerConfig.dryRun) saveMachine(m);
}

export function describe(inst: Instance | undefined): string {
  return inst ? `instance ${inst.gen} (${inst.image})` : "no instance";
}
