// Following a container's boot from the host, and the user's --check.
import { BoxError } from "../base/errors.ts";
import { runInMachine } from "./in-machine.ts";
import { INOTIFY_COUNT_BELOW, inotifyHint, inotifyWarning } from "./limits.ts";
import type { Runner } from "./runner.ts";
import { isRunning, nspawnUnit, startMachine } from "./systemd.ts";
import { withJournal } from "./unit-log.ts";
import { isUpOrQueued, isUpState, unitInfo } from "./unit-state.ts";
import { watchUnit } from "./unit-watch.ts";

/** How long cutover, fallback, start and recovery wait for a boot unless told (--timeout). */
export const DEFAULT_BOOT_TIMEOUT_MS = 90_000;

/** How long to trust the unit's status text before asking the container itself regardless. */
const READY_STATUS_WAIT_MS = 10_000;

/** Between two reads of the unit while watching it: only a safety net for a lost signal. */
const RECHECK_MS = 2000;

/** Polling, where busctl cannot watch: each poll is a systemctl on the CPUs the boot needs. */
const POLL_MS = 250;

const isReady = (statusText: string) => statusText.endsWith("Ready.");

/**
 * nspawn relays the container's sd_notify status to its unit: "Container
 * running: Ready." once the container's systemd has finished starting up
 * (systemd 252 and 257 alike; measured 8 ms after the container's
 * FinishTimestamp). Following that from the host keeps boxctl out of the
 * container while it boots: each systemd-run into a booting container
 * costs its systemd a transient unit, and that showed in cutover downtime
 * on 2 cores. It is followed by events (unit-watch.ts): boxctl learns of
 * the boot when systemd announces it, where a 250 ms poll lost 125 ms on
 * average, and no process runs beside the boot meanwhile. "ready" once
 * the status says so; "down" if the unit stopped; "unsure" after
 * READY_STATUS_WAIT_MS, for an init that reports otherwise.
 */
async function waitForReadyStatus(
  r: Runner,
  name: string,
  deadline: number,
): Promise<"ready" | "down" | "unsure"> {
  const until = Math.min(deadline, Date.now() + READY_STATUS_WAIT_MS);
  const unit = nspawnUnit(name);
  let watch = await watchUnit(r, unit);
  try {
    for (;;) {
      // Read after the watch is attached: nothing can change unseen in between.
      const u = await unitInfo(r, unit);
      if (!isUpOrQueued(u)) return "down";
      if (isReady(u.statusText)) return "ready";
      for (;;) {
        const left = until - Date.now();
        if (left <= 0) return "unsure";
        if (!watch) {
          await r.sleep(Math.min(POLL_MS, left));
          break;
        }
        const changes = await watch.next(Math.min(RECHECK_MS, left));
        if (changes === null) {
          // busctl ended under us: poll from here on.
          watch = null;
          break;
        }
        // No change for a while, or a sign that the unit went down: read it.
        if (changes.length === 0) break;
        if (changes.some((c) => c.statusText !== undefined && isReady(c.statusText)))
          return "ready";
        if (changes.some((c) => c.activeState !== undefined && !isUpState(c.activeState))) break;
      }
    }
  } finally {
    watch?.close();
  }
}

/**
 * Waits until the container's own systemd reports running or degraded.
 * Gives up early, with the unit's state, if the container stops meanwhile.
 * After the status said Ready, the container is not asked again: that
 * status is its systemd's own report of a finished start-up.
 */
export async function waitBooted(
  r: Runner,
  name: string,
  timeoutMs: number,
  pollMs = POLL_MS,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  const status = await waitForReadyStatus(r, name, deadline);
  if (status === "ready") return "booted";
  if (status === "down") await throwIfDown(r, name);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const res = await runInMachine(r, name, ["systemctl", "is-system-running", "--wait"], left);
    last = res.stdout.trim() || res.stderr.trim().split("\n").pop() || "";
    if (last === "running" || last === "degraded") return last;
    await throwIfDown(r, name);
    await r.sleep(pollMs);
  }
  throw new BoxError(
    `container ${name} did not finish booting within ${Math.round(timeoutMs / 1000)} s (last state: ${last || "unknown"})`,
    withLimits(r, `see: journalctl -M ${name} -b, or raise --timeout`),
  );
}

/** A boot failure's hint, led by the cause when the host is out of inotify instances. */
function withLimits(r: Runner, hint: string): string {
  const why = inotifyHint(r.inotifyUse());
  return why ? `${why}; then ${hint}` : hint;
}

/** A container that stopped while booting, with what it said on its console as it went. */
async function throwIfDown(r: Runner, name: string): Promise<void> {
  const unit = nspawnUnit(name);
  const s = await unitInfo(r, unit);
  if (!isUpOrQueued(s)) {
    const e = new BoxError(
      `container ${name} stopped while booting (unit ${s.activeState}, result ${s.result})`,
      withLimits(r, `see: journalctl -u ${unit}`),
    );
    // The look above named the run that failed: its lines, not an older run's.
    throw s.invocation ? await withJournal(r, e, { invocation: s.invocation, unit }) : e;
  }
}

/** Waits for the boot, then runs the user's --check inside the container. */
export async function verifyBooted(
  r: Runner,
  name: string,
  timeoutMs: number,
  check?: string,
): Promise<void> {
  await r.whenReal(async () => {
    await waitBooted(r, name, timeoutMs);
    const low = inotifyWarning(r.inotifyUse(INOTIFY_COUNT_BELOW));
    if (low) process.stderr.write(`boxctl: warning: ${low}\n`);
    if (check === undefined) return;
    // The user's own command, run by the container's /bin/sh, as they would type it in it.
    const res = await runInMachine(r, name, ["/bin/sh", "-c", check], timeoutMs);
    if (res.code !== 0) {
      const out = `${res.stdout}${res.stderr}`.trim().split("\n").slice(-5).join("\n  ");
      throw new BoxError(
        `--check '${check}' failed inside ${name} (exit ${res.code})${out ? `:\n  ${out}` : ""}`,
        `try it by hand: boxctl login ${name}`,
      );
    }
  });
}

/** Boots the container (if it is not running) and waits for it; then runs --check. */
export async function bootAndVerify(
  r: Runner,
  name: string,
  root: string,
  timeoutMs: number,
  check?: string,
): Promise<void> {
  if (!(await isRunning(r, name))) await startMachine(r, name, root);
  await verifyBooted(r, name, timeoutMs, check);
}
