// The systemd adapter: everything boxctl asks of systemctl, machinectl and
// systemd-run, through the runner it is given. Containers run under the
// stock systemd-nspawn@.service, so plain machinectl keeps working on them.
import { BoxError } from "../base/errors.ts";
import type { Runner } from "./runner.ts";
import { withJournal } from "./unit-log.ts";
import { isUp, unitInfo } from "./unit-state.ts";

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

export async function isRunning(r: Runner, name: string): Promise<boolean> {
  return isUp(await unitInfo(r, nspawnUnit(name)));
}

/** A UnitFileState that makes the unit start with the host (machinectl enable). */
export const isEnabledState = (state: string) => state === "enabled" || state === "enabled-runtime";

/** Whether the container starts with the host. */
export async function isEnabled(r: Runner, name: string): Promise<boolean> {
  return isEnabledState((await unitInfo(r, nspawnUnit(name))).unitFileState);
}

/** The container must be running for what comes next (login, shell). */
export async function requireRunning(r: Runner, name: string): Promise<void> {
  if (!(await isRunning(r, name))) {
    throw new BoxError(`container ${name} is not running`, `start it first: boxctl start ${name}`);
  }
}

export function daemonReload(r: Runner): Promise<unknown> {
  return r.run(["systemctl", "daemon-reload"], { mutates: true });
}

/**
 * Starts `systemctl daemon-reload` and does not wait for it (a reload
 * takes 140 ms on an idle 2-core machine, 470 ms on a loaded one): for
 * unit files whose loaded state already behaves as the files say, so that
 * nothing boxctl does next depends on the reload. It runs on after boxctl
 * has exited. (busctl call --expect-reply=no ... Reload was tried: systemd
 * ignored the call, presumably because it could not check the privilege
 * of a caller that had already gone.)
 */
export async function startDaemonReload(r: Runner): Promise<void> {
  await r.run(["systemctl", "daemon-reload"], { mutates: true, detach: true });
}

/**
 * Clears systemd's start rate limit (5 starts in 10 s by default) and a
 * failed state: an operator's explicit start, cutover or fallback must not
 * be refused because the container restarted often lately.
 */
export async function resetFailed(r: Runner, ...units: string[]): Promise<void> {
  await r.run(["systemctl", "reset-failed", ...units], { mutates: true, check: false });
}

/**
 * Starts (or restarts) the container; returns when nspawn has started it,
 * not when it has booted. A failure is retried once after a second: the
 * kernel frees a stopped container's network namespace, and with it its
 * ve-NAME link, asynchronously, and nspawn fails with "File exists" if it
 * is quick. root is the container's mount point, whose unit is reset too.
 */
export async function startMachine(
  r: Runner,
  name: string,
  root: string,
  verb: "start" | "restart" = "start",
): Promise<void> {
  const unit = nspawnUnit(name);
  try {
    await r.run(["systemctl", verb, unit], { mutates: true });
  } catch {
    await r.sleep(1000);
    await resetFailed(r, unit, mountUnitName(root));
    const since = Date.now();
    try {
      await r.run(["systemctl", "start", unit], { mutates: true });
    } catch (e) {
      // The retry's own lines: a cause that is no race (a Bind= source
      // missing, say) failed both runs, and quoting both said it twice. By
      // time, not by the run's invocation: on systemd 257 and 262 nspawn's
      // own line ("Failed to stat ...") was missing from that run's lines.
      throw await withJournal(r, e, { units: [unit], sinceMs: since });
    }
  }
}

/**
 * A clean shutdown that returns only once the unit is inactive. `systemctl
 * stop` waits for the job, unlike `machinectl poweroff`, which only signals.
 */
export async function stopMachine(r: Runner, name: string): Promise<void> {
  await r.run(["systemctl", "stop", nspawnUnit(name)], { mutates: true });
}

/** Asks for a clean shutdown and returns at once. */
export function requestPoweroff(r: Runner, name: string): Promise<unknown> {
  return r.run(["machinectl", "poweroff", name], { mutates: true });
}

export async function terminateMachine(r: Runner, name: string): Promise<void> {
  await r.run(["machinectl", "terminate", name], { mutates: true });
  await resetFailed(r, nspawnUnit(name));
}

/** Through machinectl, so that `machinectl enable` and `boxctl enable` are the same switch. */
export async function setEnabled(r: Runner, name: string, enabled: boolean): Promise<void> {
  await r.run(["machinectl", enabled ? "enable" : "disable", name], { mutates: true });
}

/**
 * Stops the container starting with the host, for delete-machine. With
 * systemctl, which talks to PID 1 directly: this also runs at boot
 * (recovery), before the D-Bus broker, where machinectl cannot connect
 * ("Failed to connect to bus"). No reload: the step after it reloads.
 */
export function disableMachine(r: Runner, name: string): Promise<unknown> {
  return r.run(["systemctl", "disable", "--no-reload", "--", nspawnUnit(name)], { mutates: true });
}

/**
 * Whether machined knows NAME apart from boxctl's mount point: the unit of
 * a running machine of that name (null: none runs), and the path of an
 * image of that name (null: none).
 */
export async function machinedKnows(
  r: Runner,
  name: string,
): Promise<{ unit: string | null; image: string | null }> {
  return {
    unit: await machinedProperty(r, "show", name, "Unit"),
    image: await machinedProperty(r, "show-image", name, "Path"),
  };
}

/** One property of a machine (show) or an image (show-image) that machined knows; null if it knows none. */
async function machinedProperty(
  r: Runner,
  verb: "show" | "show-image",
  name: string,
  property: string,
): Promise<string | null> {
  const res = await r.run(["machinectl", verb, name, "-p", property, "--value"], { check: false });
  return res.code === 0 && res.stdout.trim() ? res.stdout.trim() : null;
}

/** The pid of the container's init, as machined knows it; null if it does not run. */
export async function machineLeader(r: Runner, name: string): Promise<number | null> {
  const pid = Number.parseInt((await machinedProperty(r, "show", name, "Leader")) ?? "", 10);
  return pid > 0 ? pid : null;
}

/** Queues a unit's start and returns at once (for a unit that the boot's own jobs wait on). */
export function queueStart(r: Runner, unit: string) {
  return r.run(["systemctl", "start", "--no-block", unit], { mutates: true, check: false });
}

/**
 * Queues units' stop and returns at once. At boot this replaces the start
 * jobs the boot queued for them, without waiting on the boot's other jobs.
 */
export function queueStop(r: Runner, units: string[]) {
  return r.run(["systemctl", "stop", "--no-block", "--", ...units], {
    mutates: true,
    check: false,
  });
}

/** Mounts a path through its mount unit (the generated one, for a machine's root). */
export async function startMount(r: Runner, path: string): Promise<void> {
  const unit = mountUnitName(path);
  const since = Date.now();
  try {
    await r.run(["systemctl", "start", unit], { mutates: true });
  } catch (e) {
    // systemctl says only "see journalctl": what mount said, or what a
    // service the mount requires said (an image's idmapped view) is the cause.
    const req = await r.run(["systemctl", "show", "--property=Requires", "--value", unit], {
      check: false,
    });
    const services = req.stdout.split(/\s+/).filter((u) => u.endsWith(".service"));
    throw await withJournal(r, e, { units: [...services, unit], sinceMs: since });
  }
}

/** Stops units and waits; the caller checks the outcome (a unit already gone is no error). */
export function stopUnits(r: Runner, units: string[]) {
  return r.run(["systemctl", "stop", "--", ...units], { mutates: true, check: false });
}

/** Stops a mount unit; the caller checks the mount table for the outcome. */
export function stopMountUnit(r: Runner, path: string) {
  return r.run(["systemctl", "stop", mountUnitName(path)], { mutates: true, check: false });
}

/** umount(8) of one path; with check false the caller reads the outcome from the mount table. */
export function umount(r: Runner, path: string, check = false) {
  return r.run(["umount", path], { mutates: true, check });
}
