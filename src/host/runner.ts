// The one door to the host. Every external command boxctl runs, every
// change it makes by itself (a file written, a directory renamed), every
// wait and every read of the mount table goes through a Runner, which the
// operations receive instead of reaching for a global. The system runner
// runs commands with a fixed locale, in their own process group, and maps
// a missing program to one message; --dry-run is the same runner printing
// what would change instead of changing it; tests hand in a fake host.
// Commands are argv arrays; nothing is ever handed to a shell.
import { type ChildProcess, type SpawnOptions, type StdioOptions, spawn } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { BoxError } from "../base/errors.ts";
import { type InotifyUse, readInotifyUse } from "./limits.ts";

export interface RunOptions {
  /** false: a non-zero exit is returned, not thrown. */
  check?: boolean;
  /** Changes the system: --dry-run prints it instead of running it. */
  mutates?: boolean;
  input?: string;
  /** Hand the terminal to the command (login, configure), in the user's own locale. */
  interactive?: boolean;
  timeoutMs?: number;
  /** Open descriptors handed to the command as its fd 3, 4, ... (flock). */
  fds?: number[];
  /**
   * Started and not waited for: it runs on after boxctl exits (its own
   * process group, no pdeathsig), and its outcome is not known. Resolves
   * at once with exit 0.
   */
  detach?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  /** True under --dry-run: commands that change something are printed, not run. */
  readonly dryRun: boolean;
  run(argv: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a command whose standard streams boxctl drives itself (stage-image). */
  spawn(argv: readonly string[]): ChildProcess;
  /**
   * A change boxctl makes itself rather than through a command, or a wait
   * that only makes sense after real changes: run it, or under --dry-run
   * print `# what` instead and return undefined.
   */
  effect<T>(what: string, fn: () => T): T | undefined;
  /**
   * A wait or a check that reads back what earlier commands changed: run
   * it, or under --dry-run, where nothing changed, skip it silently.
   */
  whenReal<T>(fn: () => T): T | undefined;
  /** A progress line: to stderr on a terminal or with --verbose, to stdout as `# msg` under --dry-run. */
  note(msg: string): void;
  sleep(ms: number): Promise<void>;
  /** The kernel's mount table as /proc/self/mountinfo shows it. */
  mountinfo(): string;
  /**
   * Root's inotify instances in use and the limit (limits.ts), to explain a
   * failed boot or warn after a good one; null at a limit of countBelow or more.
   */
  inotifyUse(countBelow?: number): InotifyUse | null;
}

/** How a command looks when printed; quoting is for display only. */
export function showCommand(argv: readonly string[]): string {
  return argv
    .map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`))
    .join(" ");
}

export function failure(argv: readonly string[], code: number, stderr: string): BoxError {
  const tail = stderr.trim().split("\n").slice(-5).join("\n  ");
  return new BoxError(
    `'${showCommand(argv)}' failed (exit ${code})${tail ? `:\n  ${tail}` : ""}`,
    "run with --verbose to see every command boxctl runs",
  );
}

export function notInstalled(cmd: string): BoxError {
  return new BoxError(
    `required program '${cmd}' is not installed`,
    cmd === "machinectl" || cmd === "systemd-nspawn" || cmd === "systemd-run"
      ? "install it: apt-get install systemd-container"
      : `install the package that provides '${cmd}'`,
  );
}

/**
 * The environment of every command whose output boxctl reads: the C
 * locale, so that messages such as umount's "target is busy" or tar's "No
 * space left on device" are the ones boxctl matches, whatever LANG the
 * sysadmin has. LANGUAGE would override LC_ALL for gettext's messages.
 */
export function commandEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, LC_ALL: "C" };
  delete env.LANGUAGE;
  return env;
}

export interface SystemRunnerOptions {
  dryRun?: boolean;
  verbose?: boolean;
  /** Appends each command, as a JSON argv, to this file (BOXCTL_RECORD). */
  record?: string;
}

export class SystemRunner implements Runner {
  readonly dryRun: boolean;
  private readonly verbose: boolean;
  private readonly record: string | undefined;

  constructor(o: SystemRunnerOptions = {}) {
    this.dryRun = o.dryRun ?? false;
    this.verbose = o.verbose ?? false;
    this.record = o.record;
  }

  /** Logs and records argv; false if --dry-run prints it instead. */
  private announce(argv: readonly string[], mutates: boolean): boolean {
    if (this.record) appendFileSync(this.record, `${JSON.stringify(argv)}\n`);
    if (mutates && this.dryRun) {
      process.stdout.write(`${showCommand(argv)}\n`);
      return false;
    }
    if (this.verbose) process.stderr.write(`+ ${showCommand(argv)}\n`);
    return true;
  }

  private start(argv: readonly string[], stdio: StdioOptions, interactive: boolean): ChildProcess {
    const [cmd, ...args] = argv;
    if (!cmd) throw new Error("run: empty argv");
    const opts: SpawnOptions = {
      stdio,
      env: interactive ? process.env : commandEnv(),
      // Its own process group: Ctrl-C on the terminal reaches boxctl alone,
      // which then ends the step in progress as planned (see apply) instead
      // of finding systemctl or rm killed half-way under it.
      detached: !interactive,
    };
    return spawn(cmd, args, opts);
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    if (!this.announce(argv, opts.mutates ?? false))
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    if (opts.detach) {
      const child = this.start(argv, "ignore", false);
      child.on("error", () => {});
      child.unref();
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    }
    const stdio: StdioOptions = opts.interactive
      ? "inherit"
      : [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe", ...(opts.fds ?? [])];
    const cmd = argv[0] as string;
    return new Promise((resolve, reject) => {
      const child = this.start(argv, stdio, opts.interactive ?? false);
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
        reject(e.code === "ENOENT" ? notInstalled(cmd) : e);
      });
      const t0 = this.verbose ? performance.now() : 0;
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        const rc = code ?? 128 + (signal ? 9 : 0);
        if (this.verbose)
          process.stderr.write(
            `  (${cmd}: exit ${rc}, ${Math.round(performance.now() - t0)} ms)\n`,
          );
        if (rc !== 0 && (opts.check ?? true)) reject(failure(argv, rc, stderr));
        else resolve({ code: rc, stdout, stderr });
      });
    });
  }

  spawn(argv: readonly string[]): ChildProcess {
    if (!this.announce(argv, true))
      throw new BoxError(`'${argv[0]}' streams data and cannot run under --dry-run`);
    // A streamed command (tar) runs long and, in its own process group, no
    // longer dies with boxctl's terminal: setpriv has the kernel kill it if
    // boxctl itself is killed, so that it never writes on into a staging
    // directory that the next boxctl run sweeps away.
    const child = this.start(
      ["setpriv", "--pdeathsig", "KILL", "--", ...argv],
      ["pipe", "pipe", "pipe"],
      false,
    );
    // A missing program is reported like any other command's.
    const cmd = argv[0] as string;
    child.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") Object.assign(e, { boxError: notInstalled(cmd) });
    });
    return child;
  }

  effect<T>(what: string, fn: () => T): T | undefined {
    if (this.dryRun) {
      process.stdout.write(`# ${what}\n`);
      return undefined;
    }
    if (this.verbose) process.stderr.write(`+ # ${what}\n`);
    return fn();
  }

  whenReal<T>(fn: () => T): T | undefined {
    return this.dryRun ? undefined : fn();
  }

  note(msg: string): void {
    if (this.dryRun) process.stdout.write(`# ${msg}\n`);
    else if (this.verbose || process.stderr.isTTY) process.stderr.write(`boxctl: ${msg}\n`);
  }

  sleep(ms: number): Promise<void> {
    return sleep(ms);
  }

  mountinfo(): string {
    return readFileSync("/proc/self/mountinfo", "utf8");
  }

  inotifyUse(countBelow?: number): InotifyUse | null {
    return readInotifyUse("/proc", countBelow);
  }
}

/** The error a streamed command's spawn failure stands for (see SystemRunner.spawn). */
export function spawnError(e: NodeJS.ErrnoException & { boxError?: BoxError }): Error {
  return e.boxError ?? e;
}
