// login, shell and configure hand the terminal to a systemd tool and pass
// its exit status back.
import { BoxError } from "../errors.ts";
import { guarded } from "../instances/guard.ts";
import { requireMachine } from "../machines/state.ts";
import { paths } from "../paths.ts";
import { run, runnerConfig } from "../runner.ts";
import { ensureMounted, isRunning } from "../systemd.ts";
import { requireInstance, requireRunning } from "./common.ts";

export async function login(name: string): Promise<number> {
  requireMachine(name);
  await requireRunning(name);
  const r = await run(["machinectl", "login", name], { interactive: true, check: false });
  return r.code;
}

/**
 * With a command: systemd-run, because machinectl shell does not return the
 * command's exit status. Without one: machinectl shell, for a login shell.
 */
export async function shell(name: string, cmd: string[]): Promise<number> {
  requireMachine(name);
  if (!runnerConfig.dryRun) await requireRunning(name);
  const argv =
    cmd.length > 0
      ? ["systemd-run", "-M", name, "--wait", "--pipe", "--quiet", "--", ...cmd]
      : ["machinectl", "shell", name];
  const r = await run(argv, { interactive: true, mutates: true, check: false });
  return r.code;
}

/**
 * Runs systemd-nspawn on the mounted instance without booting it. Without
 * private users, so files keep their owners and nothing is copied up that
 * was not changed; --settings=no so that the .nspawn file's boot-time
 * settings (network, binds) do not apply to a maintenance shell.
 */
export function configureArgv(name: string, cmd: string[], stdinIsTTY: boolean): string[] {
  return [
    "systemd-nspawn",
    "--quiet",
    `--directory=${paths.machineRoot(name)}`,
    `--machine=${name}`,
    "--settings=no",
    "--private-users=no",
    // Without a terminal, a pipe console lets a script feed the command its input.
    ...(stdinIsTTY ? [] : ["--console=pipe"]),
    ...(cmd.length > 0 ? ["--", ...cmd] : []),
  ];
}

export async function configure(name: string, cmd: string[]): Promise<number> {
  requireInstance(name);
  return guarded(name, "configure", {}, async () => {
    if (await isRunning(name)) {
      throw new BoxError(
        `container ${name} is running; configure works only on a stopped container`,
        `power it off first: boxctl poweroff ${name}`,
      );
    }
    await ensureMounted(paths.machineRoot(name));
    const r = await run(configureArgv(name, cmd, Boolean(process.stdin.isTTY)), {
      interactive: true,
      mutates: true,
      check: false,
    });
    return r.code;
  });
}
