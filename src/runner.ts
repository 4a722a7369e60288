// Every external command boxctl runs goes through here, so that it can be
// logged (--verbose), shown instead of run (--dry-run), recorded for tests
// (BOXCTL_RECORD) and explained when it fails. Commands are argv arrays;
// nothing is ever handed to a shell.
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import { BoxError } from "./errors.ts";

export interface RunOptions {
  /** false: a non-zero exit is returned, not thrown. */
  check?: boolean;
  /** Changes the system: --dry-run prints it instead of running it. */
  mutates?: boolean;
  input?: string;
  /** Hand the terminal to the command (login, configure). */
  interactive?: boolean;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export const runnerConfig = {
  dryRun: false,
  verbose: process.env.BOXCTL_DEBUG === "1",
  record: process.env.BOXCTL_RECORD,
};

/** How a command looks when printed; quoting is for display only. */
export function showCommand(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))
    .join(" ");
}

function announce(argv: readonly string[], mutates: boolean): boolean {
  if (runnerConfig.record) appendFileSync(runnerConfig.record, `${JSON.stringify(argv)}\n`);
  if (mutates && runnerConfig.dryRun) {
    process.stdout.write(`${showCommand(argv)}\n`);
    return false;
  }
  if (runnerConfig.verbose) process.stderr.write(`+ ${showCommand(argv)}\n`);
  return true;
}

export function failure(argv: readonly string[], code: number, stderr: string): BoxError {
  const tail = stderr.trim().split("\n").slice(-5).join("\n  ");
  return new BoxError(
    `'${showCommand(argv)}' failed (exit ${code})${tail ? `:\n  ${tail}` : ""}`,
    "run with --verbose to see every command boxctl runs",
  );
}

function notFound(cmd: string): BoxError {
  return new BoxError(
    `required program '${cmd}' is not installed`,
    cmd === "machinectl" || cmd === "systemd-nspawn"
      ? "install it: apt-get install systemd-container"
      : `install the package that provides '${cmd}'`,
  );
}

/** Runs argv to completion and collects its output. */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("run: empty argv");
  if (!announce(argv, opts.mutates ?? false))
    return Promise.resolve({ code: 0, stdout: "", stderr: "" });
  const spawnOpts: SpawnOptions = {
    stdio: opts.interactive
      ? "inherit"
      : [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    env: opts.env ?? process.env,
    // Its own process group: Ctrl-C on the terminal reaches boxctl alone,
    // which then ends the step in progress as planned (see apply) instead of
    // finding systemctl or rm killed half-way under it.
    detached: !opts.interactive,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, spawnOpts);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs)
      : undefined;
    child.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === "ENOENT" ? notFound(cmd) : e);
    });
    const t0 = runnerConfig.verbose ? performance.now() : 0;
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const rc = code ?? 128 + (signal ? 9 : 0);
      if (runnerConfig.verbose)
        process.stderr.write(`  (${cmd}: exit ${rc}, ${Math.round(performance.now() - t0)} ms)\n`);
      if (rc !== 0 && (opts.check ?? true)) reject(failure(argv, rc, stderr));
      else resolve({ code: rc, stdout, stderr });
    });
  });
}

/**
 * Starts argv with a writable stdin for data that boxctl streams itself
 * (stage-image hashes and meters the archive while tar unpacks it).
 * Returns null under --dry-run.
 */
export function startStreaming(argv: readonly string[]): ChildProcess | null {
  const [cmd, ...args] = argv;
  if (!cmd) throw new Error("startStreaming: empty argv");
  if (!announce(argv, true)) return null;
  return spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"] });
}
