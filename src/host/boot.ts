// Following a container's boot from the host, and the user's --check.
import { BoxError } from "../base/errors.ts";
import type { Runner } from "./runner.ts";
import {
  isRunning,
  isUpOrQueued,
  nspawnUnit,
  runInMachine,
  startMachine,
  unitInfo,
} from "./systemd.ts";

/** How long cutover, fallback, start and recovery wait for a boot unless told (--timeout). */
export const DEFAULT_BOOT_TIMEOUT_MS = 90_000;

/** How long to trust the unit's status text before asking the container itself regardless. */
const READY_STATUS_WAIT_MS = 10_000;

/**
 * nspawn relays the container's sd_notify status to its unit: "Container
 * running: Ready." once the container's systemd has finished starting up
 * (systemd 252 and 257 alike). Watching that from the host keeps boxctl out
 * of the container while it boots: each systemd-run into a booting
 * container costs its systemd a transient unit, and that showed in cutover
 * downtime on 2 cores. Returns once the unit is down too, and after
 * READY_STATUS_WAIT_MS for an init that reports otherwise.
 */
async function waitForReadyStatus(
  r: Runner,
  name: string,
  deadline: number,
  pollMs: number,
): Promise<void> {
  const until = Math.min(deadline, Date.now() + READY_STATUS_WAIT_MS);
  // Sleeps first: right after a start, nspawn is setting the container up,
  // and asking systemd then slowed that set-up measurably (systemd 257).
  while (Date.now() < until) {
    await r.sleep(pollMs);
    const u = await unitInfo(r, nspawnUnit(name));
    if (!isUpOrQueued(u) || u.statusText.endsWith("Ready.")) return;
  }
}

/**
 * Waits until the container's own systemd reports running or degraded.
 * Gives up early, with the unit's state, if the container stops meanwhile.
 * Polls every 250 ms by default: each poll spawns systemctl on the same
 * CPUs the boot needs. Measured on 2 cores, polling every 40 ms lengthened
 * a 310 ms boot by about 30 ms, 150 ms polling by about 10 ms; how soon
 * boxctl notices does not change the container's downtime.
 */
export async function waitBooted(
  r: Runner,
  name: string,
  timeoutMs: number,
  pollMs = 250,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  await waitForReadyStatus(r, name, deadline, pollMs);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const res = await runInMachine(r, name, ["systemctl", "is-system-running", "--wait"], left);
    last = res.stdout.trim() || res.stderr.trim().split("\n").pop() || "";
    if (last === "running" || last === "degraded") return last;
    const s = await unitInfo(r, nspawnUnit(name));
    if (!isUpOrQueued(s)) {
      throw new BoxError(
        `container ${name} stopped while booting (unit ${s.activeState}, result ${s.result})`,
        `see: journalctl -u ${nspawnUnit(name)}`,
      );
    }
    await r.sleep(pollMs);
  }
  throw new BoxError(
    `container ${name} did not finish booting within ${Math.round(timeoutMs / 1000)} s (last state: ${last || "unknown"})`,
    `see: journalctl -M ${name} -b, or raise --timeout`,
  );
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
