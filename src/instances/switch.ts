// Switching a machine's root between instances: the shared core of
// cutover-instance, fallback-instance and of recovery. Every function here
// is idempotent, so that recovery can run it again after a crash.

import { setTimeout as sleep } from "node:timers/promises";
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
  unitInfo,
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
export async function remountLive(name: string, target: Instance): Promise<void> {
  const root = paths.machineRoot(name);
  const have = await mountedUpper(name);
  if (have === paths.upper(name, target.gen)) return;
  if (have !== null) {
    await unmountRoot(name);
    await waitMountUnitDown(root);
  }
  await ensureMounted(root);
  await checkMounted(name, target);
}

/**
 * Unmounts the host's copy of the root. A busy root is usually brief: a
 * container that has just stopped keeps it busy until the kernel has
 * freed its mount namespace, asynchronously. A root that a host process
 * really uses stays busy, and that error names the fix.
 */
async function unmountRoot(name: string): Promise<void> {
  const root = paths.machineRoot(name);
  for (let i = 0; ; i++) {
    const r = await run(["umount", root], { mutates: true, check: false });
    if (runnerConfig.dryRun || (await mountedUpper(name)) === null) return;
    if (i >= 10) {
      const why = /busy/i.test(r.stderr)
        ? "it is busy (a process on the host uses it)"
        : r.stderr.trim() || `umount exited ${r.code}`;
      throw new BoxError(
        `${root} could not be unmounted; ${why}`,
        `find what keeps it busy with: fuser -vm ${root}`,
      );
    }
    // A busy root gets time; a umount that succeeded with a mount still
    // there uncovered an earlier one stacked under it, which goes at once.
    if (r.code !== 0) await sleep(300);
  }
}

/**
 * systemd learns of an unmount from the mount table, not from us; asking
 * it to start the mount unit before it has noticed would be a no-op.
 */
async function waitMountUnitDown(root: string): Promise<void> {
  if (runnerConfig.dryRun) return;
  const unit = mountUnitName(root);
  for (let i = 0; i < 500; i++) {
    if (!["active", "deactivating"].includes((await unitInfo(unit)).activeState)) return;
    await sleep(10);
  }
  throw new BoxError(
    `systemd still reports ${unit} active after ${root} was unmounted`,
    `see: systemctl status ${unit}`,
  );
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
