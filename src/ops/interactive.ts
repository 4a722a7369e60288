// login, shell and configure hand the terminal to a systemd tool and pass
// its exit status back.
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { configureArgv, loginToMachine, shellInMachine } from "../host/in-machine.ts";
import type { LockOptions } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning, requireRunning, startMount } from "../host/systemd.ts";
import { requireInstance, requireMachine } from "../store/machine.ts";
import { guarded } from "./guard.ts";

export async function login(
  r: Runner,
  name: string,
  stdinIsTTY = Boolean(process.stdin.isTTY),
): Promise<number> {
  requireMachine(name);
  // Without a terminal machinectl login waits at the login prompt for good,
  // even once its input has ended (a script, a cron job, Ansible).
  if (!stdinIsTTY)
    throw new BoxError(
      `login needs a terminal, and boxctl's standard input is not one`,
      `to run commands without one: boxctl shell ${name} CMD..., or boxctl shell ${name} < script.sh`,
    );
  await requireRunning(r, name);
  return (await loginToMachine(r, name)).code;
}

/** A command in the running container, or a root shell; its exit status. */
export async function shell(
  r: Runner,
  name: string,
  cmd: string[],
  stdinIsTTY = Boolean(process.stdin.isTTY),
): Promise<number> {
  requireMachine(name);
  await r.whenReal(() => requireRunning(r, name));
  // Without a terminal, machinectl shell ran nothing it was fed and exited 0;
  // a shell that reads the script from standard input does what
  // `ssh HOST < script` does, and passes back its exit status.
  const argv = cmd.length === 0 && !stdinIsTTY ? ["/bin/sh"] : cmd;
  return (await shellInMachine(r, name, argv)).code;
}

export async function configure(
  r: Runner,
  name: string,
  cmd: string[],
  o: LockOptions = {},
): Promise<number> {
  const { instance } = requireInstance(name);
  return guarded(r, name, "configure", o, async () => {
    if (await isRunning(r, name)) {
      throw new BoxError(
        `container ${name} is running; configure works only on a stopped container`,
        `power it off first: boxctl poweroff ${name}`,
      );
    }
    await startMount(r, paths.machineRoot(name));
    const tty = Boolean(process.stdin.isTTY);
    const argv = configureArgv(paths.machineRoot(name), name, cmd, tty, instance.uidBase ?? null);
    return (await r.run(argv, { interactive: true, mutates: true, check: false })).code;
  });
}
