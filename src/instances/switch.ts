// Switching a machine's root between instances: the shared core of
// cutover-instance, fallback-instance and of recovery. Every function here
// is idempotent, so that recovery can run it again after a crash.
import { BoxError } from "../errors.ts";
import { type Instance, type MachineState, saveMachine } from "../machines/state.ts";
import { paths } from "../paths.ts";
import { runnerConfig } from "../runner.ts";
import {
  ensureMounted,
  isRunning,
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
  await waitBooted(name, timeoutMs, 40);
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
