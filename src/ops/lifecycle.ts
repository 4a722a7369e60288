// start, poweroff, restart, terminate, enable, disable: the stock
// systemd-nspawn@NAME.service does the work, so machinectl and systemctl
// see exactly what boxctl did. boxctl adds the waiting a person means.
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { waitBooted } from "../host/boot.ts";
import type { LockOptions } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import {
  isEnabled,
  isRunning,
  nspawnUnit,
  requestPoweroff,
  resetFailed,
  setEnabled as setUnitEnabled,
  startMachine,
  startMount,
  stopMachine,
  terminateMachine,
} from "../host/systemd.ts";
import { requireInstance } from "../store/machine.ts";
import { imageGone } from "./drift.ts";
import { guarded, settleDrift } from "./guard.ts";

export interface StartOptions {
  noBlock?: boolean;
  timeoutMs: number;
  /** --wait: queue behind another command that holds the machine. */
  wait?: boolean;
}

/** What a verb here did, for --json: whether it changed the container's state (or setting). */
export interface Changed {
  changed: boolean;
}

/** start and restart: also what they put back first (a drift reason, drift.ts), or null. */
export interface Started extends Changed {
  settled: string | null;
}

/**
 * Mounts the root, starts the container and waits for its boot. A start
 * that fails has still changed the container (changed: whether it was
 * stopped before): the error carries that, and whether it runs now, for --json.
 */
async function bootUp(r: Runner, name: string, o: StartOptions, changed: boolean): Promise<void> {
  const root = paths.machineRoot(name);
  try {
    await startMount(r, root);
    await startMachine(r, name, root);
    if (!o.noBlock) await r.whenReal(() => waitBooted(r, name, o.timeoutMs));
  } catch (e) {
    if (!(e instanceof BoxError) || e.data) throw e;
    const running = await isRunning(r, name).catch(() => false);
    throw new BoxError(e.message, e.hint, e.exitCode, { machine: name, changed, running });
  }
}

/**
 * The current instance, whose image must still be in the store: a start
 * without it would boot an empty tree ("Unit default.target not found"),
 * and a restart would first stop what still runs on the files it holds.
 * Staging it again is not enough for a start: the root stays mounted over
 * the deleted tree. Nor is a switch without it: every mount of the root
 * still requires the current instance's idmapped view of that image.
 */
function requireImageOf(name: string): void {
  const { instance } = requireInstance(name);
  const gone = imageGone(name, instance);
  if (!gone) return;
  throw new BoxError(
    gone,
    `stage it again under its name (boxctl stage-image FILE --name ${instance.image}), then go back to the fallback instance (boxctl fallback-instance ${name}) or cut over: boxctl cutover-instance ${name} IMAGE`,
  );
}

/** changed: the container was not running before (a start of a running one is a no-op). */
export function start(r: Runner, name: string, o: StartOptions): Promise<Started> {
  requireImageOf(name);
  return guarded(r, name, "start", o, async () => {
    const was = await isRunning(r, name);
    const settled = was ? null : await settleDrift(r, name, o.timeoutMs);
    await bootUp(r, name, o, !was);
    return { changed: !was, settled };
  });
}

/** changed: the container was running (with noBlock: it was asked to stop). */
export function poweroff(
  r: Runner,
  name: string,
  o: { noBlock?: boolean; wait?: boolean },
): Promise<Changed> {
  requireInstance(name);
  return guarded(r, name, "poweroff", { wait: o.wait }, async () => {
    const was = await isRunning(r, name);
    if (o.noBlock) {
      // machinectl poweroff fails on a machine that is not running; stopped is what was asked.
      if (was) await requestPoweroff(r, name);
    } else await stopMachine(r, name);
    return { changed: was };
  });
}

export function restart(r: Runner, name: string, o: StartOptions): Promise<Started> {
  requireImageOf(name);
  return guarded(r, name, "restart", o, async () => {
    // Before the stop, so that a drift boxctl cannot put back (settings it
    // will not rewrite) leaves the container running.
    const settled = await settleDrift(r, name, o.timeoutMs);
    await stopMachine(r, name);
    await bootUp(r, name, o, true);
    return { changed: true, settled };
  });
}

export function terminate(r: Runner, name: string, o: LockOptions = {}): Promise<Changed> {
  requireInstance(name);
  return guarded(r, name, "terminate", o, async () => {
    if (await r.whenReal(async () => !(await isRunning(r, name)))) {
      process.stderr.write(`boxctl: container ${name} is not running; nothing to terminate\n`);
      // A failed unit would keep "failed" in status forever; terminate means "make it stopped".
      await resetFailed(r, nspawnUnit(name));
      return { changed: false };
    }
    await terminateMachine(r, name);
    // machinectl terminate only sends the kill; stop waits for the unit to be gone,
    // so that a start right after works, and reset-failed keeps "failed" out of status.
    await stopMachine(r, name);
    await resetFailed(r, nspawnUnit(name));
    return { changed: true };
  });
}

/**
 * Through machinectl, so that `machinectl enable` and `boxctl enable` are
 * the same switch. machinectl is run either way (it is idempotent); changed
 * says whether the setting was different before.
 */
export function setEnabled(
  r: Runner,
  name: string,
  enabled: boolean,
  o: LockOptions = {},
): Promise<Changed> {
  requireInstance(name);
  return guarded(r, name, enabled ? "enable" : "disable", o, async () => {
    const was = await isEnabled(r, name);
    await setUnitEnabled(r, name, enabled);
    return { changed: was !== enabled };
  });
}
