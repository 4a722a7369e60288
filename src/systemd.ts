// The systemd adapter: everything boxctl asks of systemctl, machinectl and
// systemd-run. Containers run under the stock systemd-nspawn@.service, so
// plain machinectl keeps working on them.
import { setTimeout as sleep } from "node:timers/promises";
import { BoxError } from "./errors.ts";
import { paths } from "./paths.ts";
import { run, runnerConfig } from "./runner.ts";

export const nspawnUnit = (name: string) => `systemd-nspawn@${name}.service`;

/** systemd-escape --path, for the unit that mounts a path. */
export function escapePath(path: string): string {
  const trimmed = path.replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
  if (trimmed === "") return "-";
  let out = "";
  for (const [i, ch] of [...Buffer.from(trimmed, "utf8")].entries()) {
    const c = String.fromCharCode(ch);
    if (c === "/") out += "-";
    else if (/[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0)) out += c;
    else out += `\\x${ch.toString(16).padStart(2, "0")}`;
  }
  return out;
}

export const mountUnitName = (path: string) => `${escapePath(path)}.mount`;

export const UNIT_PROPS = [
  "Id",
  "LoadState",
  "ActiveState",
  "SubState",
  "Result",
  "UnitFileState",
  "ActiveEnterTimestamp",
  "Job",
  "StatusText",
] as const;

export interface UnitInfo {
  id: string;
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  unitFileState: string;
  /** ISO time the unit last became active, or null. */
  since: string | null;
  /** The id of the job queued or running for the unit, "" if none. */
  job: string;
  /** What the unit's process last reported with sd_notify STATUS=. */
  statusText: string;
}

/** Parses `systemctl show --timestamp=unix` output: blocks separated by blank lines, keyed by Id. */
export function parseShow(text: string): Map<string, UnitInfo> {
  const out = new Map<string, UnitInfo>();
  for (const block of text.split(/\n\s*\n/)) {
    const p: Record<string, string> = {};
    for (const line of block.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) p[line.slice(0, i)] = line.slice(i + 1);
    }
    if (!p.Id) continue;
    const ts = /^@(\d+)/.exec(p.ActiveEnterTimestamp ?? "");
    out.set(p.Id, {
      id: p.Id,
      loadState: p.LoadState ?? "unknown",
      activeState: p.ActiveState ?? "unknown",
      subState: p.SubState ?? "unknown",
      result: p.Result ?? "unknown",
      unitFileState: p.UnitFileState ?? "",
      since: ts && Number(ts[1]) > 0 ? new Date(Number(ts[1]) * 1000).toISOString() : null,
      job: p.Job ?? "",
      statusText: p.StatusText ?? "",
    });
  }
  return out;
}

export function unknownUnit(id: string): UnitInfo {
  return {
    id,
    loadState: "unknown",
    activeState: "unknown",
    subState: "unknown",
    result: "unknown",
    unitFileState: "",
    since: null,
    job: "",
    statusText: "",
  };
}

export async function showUnits(units: string[]): Promise<Map<string, UnitInfo>> {
  if (units.length === 0) return new Map();
  const r = await run(
    ["systemctl", "show", "--timestamp=unix", "-p", UNIT_PROPS.join(","), "--", ...units],
    { check: false },
  );
  return parseShow(r.stdout);
}

/** One unit's state; unknown fields if systemctl could not tell. */
export async function unitInfo(unit: string): Promise<UnitInfo> {
  return (await showUnits([unit])).get(unit) ?? unknownUnit(unit);
}

const isUp = (u: UnitInfo) => ["active", "activating", "reloading"].includes(u.activeState);

/** Up, or about to be: a job for it is queued (systemd starts it once its mount is done). */
export const isUpOrQueued = (u: UnitInfo) => isUp(u) || u.job !== "";

export async function isRunning(name: string): Promise<boolean> {
  return isUp(await unitInfo(nspawnUnit(name)));
}

export function daemonReload(): Promise<unknown> {
  return run(["systemctl", "daemon-reload"], { mutates: true });
}

/**
 * Clears systemd's start rate limit (5 starts in 10 s by default) of the
 * container and mount units: an operator's explicit start, cutover or
 * fallback must not be refused because the container restarted often lately.
 */
export async function resetStartLimits(name: string): Promise<void> {
  await run(
    ["systemctl", "reset-failed", nspawnUnit(name), mountUnitName(paths.machineRoot(name))],
    {
      mutates: true,
      check: false,
    },
  );
}

/**
 * Starts (or restarts) the container; returns when nspawn has started it,
 * not when it has booted. A failure is retried once after a second: the
 * kernel frees a stopped container's network namespace, and with it its
 * ve-NAME link, asynchronously, and nspawn fails with "File exists" if it
 * is quick.
 */
export async function startMachine(
  name: string,
  verb: "start" | "restart" = "start",
): Promise<void> {
  try {
    await run(["systemctl", verb, nspawnUnit(name)], { mutates: true });
  } catch (e) {
    if (runnerConfig.dryRun) throw e;
    await sleep(1000);
    await resetStartLimits(name);
    await run(["systemctl", "start", nspawnUnit(name)], { mutates: true });
  }
}

/**
 * A clean shutdown that returns only once the unit is inactive. `systemctl
 * stop` waits for the job, unlike `machinectl poweroff`, which only signals.
 */
export async function stopMachine(name: string): Promise<void> {
  await run(["systemctl", "stop", nspawnUnit(name)], { mutates: true });
}

/** Asks for a clean shutdown and returns at once. */
export function requestPoweroff(name: string): Promise<unknown> {
  return run(["machinectl", "poweroff", name], { mutates: true });
}

export async function terminateMachine(name: string): Promise<void> {
  await run(["machinectl", "terminate", name], { mutates: true });
  await run(["systemctl", "reset-failed", nspawnUnit(name)], { mutates: true, check: false });
}

/** Runs argv inside the running container and passes back its exit status. */
export function runInMachine(name: string, argv: string[], timeoutMs?: number) {
  return run(["systemd-run", "-M", name, "--wait", "--pipe", "--quiet", "--", ...argv], {
    check: false,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}

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
async function waitForReadyStatus(name: string, deadline: number, pollMs: number): Promise<void> {
  const until = Math.min(deadline, Date.now() + READY_STATUS_WAIT_MS);
  // Sleeps first: right after a start, nspawn is setting the container up,
  // and asking systemd then slowed that set-up measurably (systemd 257).
  while (Date.now() < until) {
    await sleep(pollMs);
    const u = await unitInfo(nspawnUnit(name));
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
export async function waitBooted(name: string, timeoutMs: number, pollMs = 250): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  await waitForReadyStatus(name, deadline, pollMs);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const r = await runInMachine(name, ["systemctl", "is-system-running", "--wait"], left);
    last = r.stdout.trim() || r.stderr.trim().split("\n").pop() || "";
    if (last === "running" || last === "degraded") return last;
    const s = await unitInfo(nspawnUnit(name));
    if (!isUpOrQueued(s)) {
      throw new BoxError(
        `container ${name} stopped while booting (unit ${s.activeState}, result ${s.result})`,
        `see: journalctl -u ${nspawnUnit(name)}`,
      );
    }
    await sleep(pollMs);
  }
  throw new BoxError(
    `container ${name} did not finish booting within ${Math.round(timeoutMs / 1000)} s (last state: ${last || "unknown"})`,
    `see: journalctl -M ${name} -b, or raise --timeout`,
  );
}

/** Mounts the machine's current instance at its root, through its generated mount unit. */
export function ensureMounted(root: string): Promise<unknown> {
  return run(["systemctl", "start", mountUnitName(root)], { mutates: true });
}
