// A fake host for unit tests of the operations: a Runner that records
// every command and answers it the way systemd, the kernel and coreutils
// would on a real host, from a little state of its own (its systemd, with
// the units and the mount table, is fake-systemd.ts).
// Files are real, under a temporary root (paths.relocate): the operations
// write their state, units and instance dirs there, and this host reads
// the mount unit files they write to know what `systemctl start X.mount`
// mounts. Time does not pass: sleep() returns at once.
import type { ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { mkdirSync, rmSync } from "node:fs";
import { PassThrough } from "node:stream";
import type { InotifyUse } from "../../src/host/limits.ts";
import { failure, type Runner, type RunOptions, type RunResult } from "../../src/host/runner.ts";
import { FakeSystemd, invocationId } from "./fake-systemd.ts";

export interface Call {
  argv: string[];
  timeoutMs?: number;
}

export class FakeHost extends FakeSystemd implements Runner {
  readonly dryRun: boolean;
  /** Every command, in order, with the timeout it was given. */
  readonly calls: Call[] = [];
  /** Every change made by boxctl itself (effect), in order. */
  readonly effects: string[] = [];
  /** Mount points that a process on the host keeps busy. */
  readonly busy = new Set<string>();
  /** The exit status of --check commands. */
  checkExit = 0;
  /** du's bytes for files or dirs (disjoint); a dir with none under it has 4096. */
  readonly duBytes = new Map<string, number>();
  /** Entries sent to the journal (logger --journald), as field maps. */
  readonly journal: Record<string, string>[] = [];

  constructor(o: { dryRun?: boolean } = {}) {
    super();
    this.dryRun = o.dryRun ?? false;
  }

  /** Commands as one string each, for assertions on order. */
  get commands(): string[] {
    return this.calls.map((c) => c.argv.join(" "));
  }

  private inMachine(argv: string[]): RunResult {
    const name = argv[2] ?? "";
    const cmd = argv.slice(argv.indexOf("--") + 1);
    if (this.unit(`systemd-nspawn@${name}.service`).active !== "active")
      return { code: 1, stdout: "", stderr: "Failed to connect to bus" };
    if (cmd[0] === "systemctl" && cmd[1] === "is-system-running") return this.ok("running\n");
    if (cmd[0] === "/bin/sh") return { code: this.checkExit, stdout: "", stderr: "check said no" };
    throw new Error(`fake host: ${cmd.join(" ")} inside a machine is not simulated`);
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
    const a = [...argv];
    this.calls.push({ argv: a, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
    if (opts.detach) this.detached.push(a.join(" "));
    if (this.dryRun && opts.mutates) return this.ok();
    const res = this.answer(a, opts.input);
    if (res.code !== 0 && (opts.check ?? true))
      // As the real runner says it (host/runner.ts).
      throw failure(a, res.code, res.stderr);
    return res;
  }

  private answer(a: string[], input?: string): RunResult {
    switch (a[0]) {
      case "systemctl":
        return this.systemctl(a.slice(1));
      case "systemd-run":
        return this.inMachine(a);
      case "umount": {
        const where = a[1] ?? "";
        if (this.busy.has(where))
          return { code: 32, stdout: "", stderr: `umount: ${where}: target is busy.` };
        this.mounts.delete(where);
        if (this.unmountLag > 0) this.lagging.set(where, this.unmountLag);
        return this.ok();
      }
      case "mount": {
        // The read-only view a carry mounts (mount -t overlay ... -o ro,lowerdir=A:B WHERE).
        const where = a[a.length - 1] ?? "";
        mkdirSync(where, { recursive: true });
        this.mounts.set(where, "");
        return this.ok();
      }
      case "/usr/bin/perl": {
        // boxctl's idmap-view.pl SOURCE VIEW BASE COUNT: an idmapped view, here an empty one.
        const where = a[3] ?? "";
        mkdirSync(where, { recursive: true });
        this.mounts.set(where, "");
        return this.ok();
      }
      case "rm":
        rmSync(a[a.length - 1] ?? "/nonexistent", { recursive: true, force: true });
        return this.ok();
      case "du":
        return this.du(a);
      case "busctl":
        // The one call boxctl makes: a signal to itself, for its own `busctl monitor` (unit-watch.ts).
        if (a[1] !== "emit") throw new Error(`fake host: ${a.join(" ")} is not simulated`);
        return this.ok();
      case "machinectl":
        if (a[1] === "enable") this.enabled.add(a[2] ?? "");
        if (a[1] === "disable") this.enabled.delete(a[2] ?? "");
        if (a[1] === "show" || a[1] === "show-image") return this.machinedShow(a);
        return this.ok();
      case "flock":
        return this.ok();
      case "journalctl":
        return this.journalctl(a);
      case "getent":
        // No user or group has a uid in boxctl's range.
        return { code: 2, stdout: "", stderr: "" };
      case "logger": {
        const entry: Record<string, string> = {};
        for (const line of (input ?? "").split("\n")) {
          const i = line.indexOf("=");
          if (i > 0) entry[line.slice(0, i)] = line.slice(i + 1);
        }
        this.journal.push(entry);
        return this.ok();
      }
      default:
        throw new Error(`fake host: ${a.join(" ")} is not simulated`);
    }
  }

  /**
   * -u UNIT..., or one run: _SYSTEMD_INVOCATION_ID=ID + INVOCATION_ID=ID, or
   * SYSLOG_IDENTIFIER=systemd-nspawn (the lines stored without a unit); as
   * -o json, each line's time its place in unitLog (orphans half-way after).
   */
  private journalctl(a: string[]): RunResult {
    if (a.includes("--sync")) return this.ok();
    const json = (us: number, MESSAGE: string, unit?: string) =>
      JSON.stringify({
        __REALTIME_TIMESTAMP: String(us),
        MESSAGE,
        ...(unit ? { _SYSTEMD_UNIT: unit } : {}),
      });
    const all = [...this.unitLog].flatMap(([u, lines]) => lines.map((l) => ({ u, l })));
    const timed = all.map((e, i) => ({ ...e, us: 1e6 * (i + 1) }));
    if (a.includes("SYSLOG_IDENTIFIER=systemd-nspawn")) {
      const since = Number(a.find((x) => x.startsWith("--since=@"))?.slice(9)) * 1e6;
      const until = Number(a.find((x) => x.startsWith("--until=@"))?.slice(9)) * 1e6;
      const out = this.orphanLog.flatMap((o) => {
        const us = (timed.find((e) => e.l === o.after)?.us ?? 0) + 5e5;
        return us >= since && us <= until ? [json(us, o.message)] : [];
      });
      return this.ok(out.join("\n"));
    }
    const run = a.find((x) => x.startsWith("_SYSTEMD_INVOCATION_ID="))?.split("=")[1];
    const units = run
      ? [...this.unitLog.keys()].filter((u) => invocationId(u) === run)
      : a.flatMap((x, i) => (a[i - 1] === "-u" ? [x] : []));
    return this.ok(
      timed
        .filter((e) => units.includes(e.u))
        .map((e) => json(e.us, e.l, e.u))
        .join("\n"),
    );
  }

  /** machinectl show NAME -p Unit|Leader --value, show-image NAME -p Path --value: from machined. */
  private machinedShow(a: string[]): RunResult {
    const known = this.machined.get(a[2] ?? "");
    const value =
      a[1] === "show-image" ? known?.image : a.includes("Unit") ? known?.unit : known?.leader;
    return value === undefined
      ? { code: 1, stdout: "", stderr: `No machine '${a[2]}' known` }
      : this.ok(`${value}\n`);
  }

  /** du -s [-c] -B1 -x [--] DIR...: one line per DIR, and a total with -c, as GNU du counts. */
  private du(a: string[]): RunResult {
    const dirs = a.slice(1).filter((x) => !x.startsWith("-"));
    const under = (p: string, d: string) => p === d || p.startsWith(`${d}/`);
    const each = dirs.map((d) => {
      const own = [...this.duBytes].filter(([p]) => under(p, d));
      return own.length ? own.reduce((s, [, b]) => s + b, 0) : 4096;
    });
    const lines = dirs.map((d, k) => `${each[k]}\t${d}`);
    if (a.includes("-c")) lines.push(`${each.reduce((s, n) => s + n, 0)}\ttotal`);
    return this.ok(`${lines.join("\n")}\n`);
  }

  /** Commands started and not waited for (detach), in order. */
  readonly detached: string[] = [];
  /** Whether `busctl monitor` can attach (false: as on a host without a D-Bus broker). */
  busMonitor = true;

  /**
   * A boot that goes on after the watcher has read the unit: called once
   * the monitor has attached, with a function that prints a line as
   * `busctl monitor --json=short` would. Unset: nothing to announce.
   */
  onMonitor?: (print: (line: string) => void) => void;

  /**
   * Only `busctl monitor` streams here. Units change only inside a command
   * of this host, which has returned before a watcher reads the unit, so
   * unless onMonitor says otherwise the watch has nothing to announce: it
   * attaches and waits to be closed.
   */
  spawn(argv: readonly string[]): ChildProcess {
    const a = [...argv];
    this.calls.push({ argv: a });
    if (a[0] !== "busctl" || a[1] !== "monitor")
      throw new Error(`fake host: cannot stream ${a.join(" ")}`);
    const child = Object.assign(new EventEmitter(), {
      stdout: new PassThrough(),
      stderr: new PassThrough(),
      kill: () => {
        queueMicrotask(() => child.emit("close", null, "SIGTERM"));
        return true;
      },
    });
    queueMicrotask(() => {
      if (this.busMonitor) {
        child.stderr.write("Monitoring bus message stream.\n");
        const on = this.onMonitor;
        // Later than the watcher's first read of the unit.
        if (on) setTimeout(() => on((l) => child.stdout.write(`${l}\n`)), 20);
      } else {
        child.stderr.write("Failed to connect to bus: No such file or directory\n");
        child.emit("close", 1, null);
      }
    });
    this.spawned.push(child as unknown as ChildProcess);
    return child as unknown as ChildProcess;
  }

  /** Every process spawn() started, in order. */
  readonly spawned: ChildProcess[] = [];

  effect<T>(what: string, fn: () => T): T | undefined {
    this.effects.push(what);
    return this.dryRun ? undefined : fn();
  }

  whenReal<T>(fn: () => T): T | undefined {
    return this.dryRun ? undefined : fn();
  }

  readonly notes: string[] = [];
  note(msg: string): void {
    this.notes.push(msg);
  }

  async sleep(): Promise<void> {}

  /** What inotifyUse() reports: by default, plenty left. */
  inotify: InotifyUse | null = { used: 20, max: 8192 };
  inotifyUse(countBelow = Number.POSITIVE_INFINITY): InotifyUse | null {
    return this.inotify && this.inotify.max < countBelow ? this.inotify : null;
  }
}
