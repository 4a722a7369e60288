// Commands inside a container: a command run in the running container
// (systemd-run -M), a login or a shell handed the terminal, a maintenance
// nspawn on the stopped one (configure), and unit states asked of its
// systemd. Through the runner, like every command.
import type { Runner } from "./runner.ts";

/** Runs argv inside the running container and passes back its exit status. */
export function runInMachineArgv(name: string, argv: readonly string[]): string[] {
  return ["systemd-run", "-M", name, "--wait", "--pipe", "--quiet", "--", ...argv];
}

export function runInMachine(r: Runner, name: string, argv: string[], timeoutMs?: number) {
  return r.run(runInMachineArgv(name, argv), {
    check: false,
    ...(timeoutMs ? { timeoutMs } : {}),
  });
}

/** A TTY login session in the container (machinectl login), handed the terminal. */
export function loginToMachine(r: Runner, name: string) {
  return r.run(["machinectl", "login", name], { interactive: true, check: false });
}

/**
 * With a command: systemd-run, because machinectl shell does not return the
 * command's exit status. Without one: machinectl shell, for a login shell.
 */
export function shellInMachine(r: Runner, name: string, cmd: string[]) {
  const argv = cmd.length > 0 ? runInMachineArgv(name, cmd) : ["machinectl", "shell", name];
  return r.run(argv, { interactive: true, mutates: true, check: false });
}

/**
 * Runs systemd-nspawn on the mounted instance without booting it, in the
 * instance's own user namespace (uidBase: its range, never chowned) or in
 * none for an instance without private users, so that files keep their
 * owners and nothing is copied up that was not changed; --settings=no so
 * that the .nspawn file's boot-time settings (network, binds) do not apply
 * to a maintenance shell.
 */
export function configureArgv(
  root: string,
  name: string,
  cmd: string[],
  stdinIsTTY: boolean,
  uidBase: number | null = null,
): string[] {
  return [
    "systemd-nspawn",
    "--quiet",
    `--directory=${root}`,
    `--machine=${name}`,
    "--settings=no",
    ...(uidBase === null
      ? ["--private-users=no"]
      : [`--private-users=${uidBase}:65536`, "--private-users-ownership=off"]),
    // Without a terminal, a pipe console lets a script feed the command its input.
    ...(stdinIsTTY ? [] : ["--console=pipe"]),
    ...(cmd.length > 0 ? ["--", ...cmd] : []),
  ];
}

/**
 * Asks the container's systemd for every listed unit's load and active
 * state (one systemctl; one block per unit, in the order asked). Not
 * is-active: it calls a unit that does not exist "inactive", so a typo in
 * the list would look like a stopped service.
 */
export function unitStatesInMachine(r: Runner, name: string, units: string[]) {
  return r.run(
    ["systemctl", "-M", name, "show", "--property=Id,LoadState,ActiveState", "--", ...units],
    { check: false },
  );
}
