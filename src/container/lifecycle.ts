// start, poweroff, restart, terminate, enable, disable: the stock
// systemd-nspawn@NAME.service does the work, so machinectl and systemctl
// see exactly what boxctl did. boxctl adds the waiting a person means.
import { guarded } from "../instances/guard.ts";
import { paths } from "../paths.ts";
import { run, runnerConfig } from "../runner.ts";
import {
  ensureMounted,
  isRunning,
  nspawnUnit,
  requestPoweroff,
  startMachine,
  stopMachine,
  terminateMachine,
  waitBooted,
} from "../systemd.ts";
import { requireInstance } from "./common.ts";

export interface StartOptions {
  noBlock?: boolean;
  timeoutMs: number;
}

async function bootUp(name: string, o: StartOptions): Promise<void> {
  await ensureMounted(paths.machineRoot(name));
  await startMachine(name);
  if (!o.noBlock && !runnerConfig.dryRun) await waitBooted(name, o.timeoutMs);
}

export function start(name: string, o: StartOptions): Promise<void> {
  requireInstance(name);
  return guarded(name, "start", {}, () => bootUp(name, o));
}

export function poweroff(name: string, o: { noBlock?: boolean }): Promise<void> {
  requireInstance(name);
  return guarded(name, "poweroff", {}, async () => {
    if (o.noBlock) {
      // machinectl poweroff fails on a machine that is not running; stopped is what was asked.
      if (await isRunning(name)) await requestPoweroff(name);
      return;
    }
    await stopMachine(name);
  });
}

export function restart(name: string, o: StartOptions): Promise<void> {
  requireInstance(name);
  return guarded(name, "restart", {}, async () => {
    await stopMachine(name);
    await bootUp(name, o);
  });
}

export function terminate(name: string): Promise<void> {
  requireInstance(name);
  return guarded(name, "terminate", {}, async () => {
    if (!(await isRunning(name)) && !runnerConfig.dryRun) {
      process.stderr.write(`boxctl: container ${name} is not running; nothing to terminate\n`);
      // A failed unit would keep "failed" in status forever; terminate means "make it stopped".
      await run(["systemctl", "reset-failed", nspawnUnit(name)], { mutates: true, check: false });
      return;
    }
    await terminateMachine(name);
    // machinectl terminate only sends the kill; stop waits for the unit to be gone,
    // so that a start right after works, and reset-failed keeps "failed" out of status.
    await stopMachine(name);
    await run(["systemctl", "reset-failed", nspawnUnit(name)], { mutates: true, check: false });
  });
}

/** Through machinectl, so that `machinectl enable` and `boxctl enable` are the same switch. */
export function setEnabled(name: string, enabled: boolean): Promise<void> {
  requireInstance(name);
  const verb = enabled ? "enable" : "disable";
  return guarded(name, verb, {}, async () => {
    await run(["machinectl", verb, name], { mutates: true });
  });
}
