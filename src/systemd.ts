// The systemd adapter: everything boxctl asks of systemctl, machinectl and
// systemd-run. Containers run under the stock systemd-nspawn@.service, so
// plain machinectl keeps working on them.
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

export interface UnitState {
  activeState: string;
  subState: string;
  result: string;
  unitFileState: string;
  /** Microseconds since the epoch; 0 when never. */
  activeEnterTimestamp: number;
}

export async function unitState(unit: string): Promise<UnitState> {
  const r = await run(
    [
      "systemctl",
      "show",
      unit,
      "--timestamp=unix",
      "-p",
      "ActiveState,SubState,Result,UnitFileState,ActiveEnterTimestamp",
    ],
    { check: false },
  );
  const p = Object.fromEntries(
    r.stdout
      .trim()
      .split("\n")
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  const ts = /^@(\d+)/.exec(p.ActiveEnterTimestamp ?? "");
  return {
    activeState: p.ActiveState ?? "unknown",
    subState: p.SubState ?? "unknown",
    result: p.Result ?? "unknown",
    unitFileState: p.UnitFileState ?? "",
    activeEnterTimestamp: ts ? Number(ts[1]) * 1e6 : 0,
  };
}

export async function isRunning(name: string): Promise<boolean> {
  const s = await unitState(nspawnUnit(name));
  return (
    s.activeState === "active" || s.activeState === "activating" || s.activeState === "reloading"
  );
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
 * Starts the container; returns when nspawn has started it, not when it has
 * booted. A failure is retried once after a second: the kernel frees a
 * stopped container's network namespace, and with it its ve-NAME link,
 * asynchronously, and nspawn fails with "File exists" if it is quick.
 */
export async function startMachine(name: string): Promise<void> {
  try {
    await run(["systemctl", "start", nspawnUnit(name)], { mutates: true });
  } catch (e) {
    if (runnerConfig.dryRun) throw e;
    await new Promise((r) => setTimeout(r, 1000));
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

/**
 * Waits until the container's own systemd reports running or degraded.
 * Gives up early, with the unit's state, if the container stops meanwhile.
 */
export async function waitBooted(name: string, timeoutMs: number, pollMs = 250): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    const r = await runInMachine(name, ["systemctl", "is-system-running", "--wait"], left);
    last = r.stdout.trim() || r.stderr.trim().split("\n").pop() || "";
    if (last === "running" || last === "degraded") return last;
    if (!(await isRunning(name))) {
      const s = await unitState(nspawnUnit(name));
      throw new BoxError(
        `container ${name} stopped while booting (unit ${s.activeState}, result ${s.result})`,
        `see: journalctl -u ${nspawnUnit(name)}`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
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
