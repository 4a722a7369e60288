// A fake host for unit tests of the operations: a Runner that records
// every command and answers it the way systemd, the kernel and coreutils
// would on a real host, from a little state of its own (mounts, units).
// Files are real, under a temporary root (paths.relocate): the operations
// write their state, units and instance dirs there, and this host reads
// the mount unit files they write to know what `systemctl start X.mount`
// mounts. Time does not pass: sleep() returns at once.
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { paths, relocate } from "../../src/base/paths.ts";
import type { InotifyUse } from "../../src/host/limits.ts";
import { failure, type Runner, type RunOptions, type RunResult } from "../../src/host/runner.ts";
import { loadMachine, type MachineState } from "../../src/store/machine.ts";
import { tempDir } from "./tmp.ts";

interface Unit {
  active: "active" | "inactive" | "failed";
  statusText: string;
}

export interface Call {
  argv: string[];
  timeoutMs?: number;
}

/**
 * Mount point -> upper dir. A machine's root shows an OS while an overlay
 * is mounted there (its os-release, which status looks for), and its bare
 * mount point again once it is unmounted.
 */
class MountTable extends Map<string, string> {
  private static isRoot = (where: string) => dirname(where) === paths.mountPoints();

  override set(where: string, upper: string): this {
    super.set(where, upper);
    if (MountTable.isRoot(where) && upper !== "") {
      mkdirSync(join(where, "etc"), { recursive: true });
      writeFileSync(join(where, "etc/os-release"), "ID=debian\n");
    }
    return this;
  }

  override delete(where: string): boolean {
    if (super.has(where) && MountTable.isRoot(where))
      rmSync(join(where, "etc"), { recursive: true, force: true });
    return super.delete(where);
  }

  override clear(): void {
    for (const where of [...this.keys()]) this.delete(where);
  }
}

export class FakeHost implements Runner {
  readonly dryRun: boolean;
  /** Every command, in order, with the timeout it was given. */
  readonly calls: Call[] = [];
  /** Every change made by boxctl itself (effect), in order. */
  readonly effects: string[] = [];
  /** Mount point -> the upper dir of the overlay mounted there. */
  readonly mounts = new MountTable();
  readonly units = new Map<string, Unit>();
  /** Upper dirs whose container does not boot (a broken image). */
  readonly failsToBoot = new Set<string>();
  /** Mount points that a process on the host keeps busy. */
  readonly busy = new Set<string>();
  /**
   * How many looks (systemctl show) systemd takes to notice an umount(8)
   * by hand, as the real one, which follows the mount table, lags; until
   * then the mount unit reads active and starting it mounts nothing.
   */
  unmountLag = 0;
  private lagging = new Map<string, number>();
  /** Mount units whose systemctl stop fails (systemd could not spawn umount). */
  readonly failsToStop = new Set<string>();
  /** Mount units whose start fails, as one whose required view failed (its log: unitLog). */
  readonly failsToMount = new Set<string>();
  /** What journalctl -u UNIT -o cat prints for a unit. */
  readonly unitLog = new Map<string, string[]>();
  /** Machines that machinectl enable has made start with the host. */
  readonly enabled = new Set<string>();
  /** The exit status of --check commands. */
  checkExit = 0;
  /** du's bytes for files or dirs (disjoint); a dir with none under it has 4096. */
  readonly duBytes = new Map<string, number>();

  constructor(o: { dryRun?: boolean } = {}) {
    this.dryRun = o.dryRun ?? false;
  }

  /** Commands as one string each, for assertions on order. */
  get commands(): string[] {
    return this.calls.map((c) => c.argv.join(" "));
  }

  private unit(id: string): Unit {
    let u = this.units.get(id);
    if (!u) {
      u = { active: "inactive", statusText: "" };
      this.units.set(id, u);
    }
    return u;
  }

  private ok(stdout = ""): RunResult {
    return { code: 0, stdout, stderr: "" };
  }

  /**
   * What systemd would make of a mount unit written by boxctl: its mount
   * point and upper dir. Like systemd: the fragment from /etc, else from
   * /run; then drop-ins (in /run here), whose later settings win.
   */
  private mountUnit(unit: string): { where: string; upper: string; requires: string } {
    const read = (p: string) => {
      try {
        return readFileSync(p, "utf8");
      } catch {
        return null;
      }
    };
    const fragment =
      read(join(paths.unitDir(), unit)) ?? read(join(paths.runtimeUnitDir(), unit)) ?? "";
    const dropIn = fragment
      ? (read(join(paths.runtimeUnitDir(), `${unit}.d`, "50-boxctl-switch.conf")) ?? "")
      : "";
    const last = (re: RegExp) => [...`${fragment}\n${dropIn}`.matchAll(re)].pop()?.[1] ?? "";
    return {
      where: last(/^Where=(.*)$/gm),
      upper: last(/upperdir=([^,\n]*)/g),
      requires: last(/^Requires=(.*)$/gm),
    };
  }

  /** Entries sent to the journal (logger --journald), as field maps. */
  readonly journal: Record<string, string>[] = [];
  /** Whether daemon-reload has run since the last look (reloads()). */
  reloadCount = 0;

  /** Units a container's systemd does not have (systemctl -M NAME show says not-found). */
  readonly missingInMachine = new Set<string>();

  private systemctl(args: string[]): RunResult {
    if (args[0] === "-M") return this.systemctlInMachine(args[1] ?? "", args.slice(2));
    const [verb, ...rest] = args;
    const units = rest.filter((a) => !a.startsWith("-"));
    switch (verb) {
      case "daemon-reload":
        this.reloadCount++;
        return this.ok();
      case "reset-failed":
        return this.ok();
      case "disable":
        for (const u of units)
          this.enabled.delete(/^systemd-nspawn@(.*)\.service$/.exec(u)?.[1] ?? "");
        return this.ok();
      case "show":
        if (rest.includes("--property=Requires"))
          return this.ok(`${units.map((u) => this.mountUnit(u).requires).join(" ")}\n`);
        return this.ok(units.map((u) => this.show(u)).join("\n\n"));
      case "start":
      case "restart":
        if (verb === "start" && units.some((u) => this.failsToMount.has(u)))
          return {
            code: 1,
            stdout: "",
            stderr: `A dependency job for ${units[0]} failed. See 'journalctl -xe' for details.`,
          };
        for (const u of units) this.start(u);
        return this.ok();
      case "stop":
        if (units.some((u) => this.failsToStop.has(u)))
          return { code: 1, stdout: "", stderr: "Job failed. See journalctl -xe for details." };
        for (const u of units) this.stop(u);
        return this.ok();
      default:
        throw new Error(`fake host: systemctl ${verb} is not simulated`);
    }
  }

  /** A container's own systemd: reachable while its nspawn unit is active; only show is simulated. */
  private systemctlInMachine(name: string, args: string[]): RunResult {
    if (this.units.get(`systemd-nspawn@${name}.service`)?.active !== "active")
      return { code: 1, stdout: "", stderr: `Failed to connect to bus: Host is down` };
    if (args[0] !== "show") throw new Error(`fake host: systemctl -M ${args[0]} is not simulated`);
    const units = args.slice(1).filter((a) => !a.startsWith("-"));
    const block = (u: string) =>
      this.missingInMachine.has(u)
        ? `Id=${u}\nLoadState=not-found\nActiveState=inactive\n`
        : `Id=${u}\nLoadState=loaded\nActiveState=active\n`;
    return this.ok(units.map(block).join("\n"));
  }

  private show(id: string): string {
    const u = this.unit(id);
    // systemd follows the mount table: a unit is active while its path is mounted.
    if (id.endsWith(".mount")) {
      const where = this.mountUnit(id).where;
      const lag = this.lagging.get(where) ?? 0;
      if (lag > 0) this.lagging.set(where, lag - 1);
      else this.lagging.delete(where);
      u.active = this.mounts.has(where) || lag > 0 ? "active" : "inactive";
    }
    return [
      `Id=${id}`,
      "LoadState=loaded",
      `ActiveState=${u.active}`,
      `SubState=${u.active === "active" ? "running" : "dead"}`,
      "Result=success",
      `UnitFileState=${this.enabled.has(/^systemd-nspawn@(.*)\.service$/.exec(id)?.[1] ?? "") ? "enabled" : "disabled"}`,
      "ActiveEnterTimestamp=",
      "Job=",
      `StatusText=${u.statusText}`,
      `InvocationID=${invocationId(id)}`,
    ].join("\n");
  }

  private start(id: string): void {
    if (id.endsWith(".mount")) {
      const { where, upper } = this.mountUnit(id);
      // systemd still believes it mounted: a start is a no-op.
      if (this.lagging.has(where)) return;
      if (!this.mounts.has(where)) this.mounts.set(where, upper);
      this.unit(id).active = "active";
      return;
    }
    // systemd-nspawn@NAME.service: a restart boots whatever is mounted now.
    const name = /^systemd-nspawn@(.*)\.service$/.exec(id)?.[1] ?? "";
    const upper = this.mounts.get(paths.machineRoot(name)) ?? "";
    const boots = upper !== "" && !this.failsToBoot.has(upper);
    this.units.set(
      id,
      boots
        ? { active: "active", statusText: "Container running: Ready." }
        : { active: "failed", statusText: "" },
    );
  }

  private stop(id: string): void {
    if (id.endsWith(".mount")) {
      this.mounts.delete(this.mountUnit(id).where);
    }
    this.unit(id).active = "inactive";
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
        return this.ok();
      case "flock":
        return this.ok();
      case "journalctl": {
        // -u UNIT..., or one run: _SYSTEMD_INVOCATION_ID=ID + INVOCATION_ID=ID.
        const run = a.find((x) => x.startsWith("_SYSTEMD_INVOCATION_ID="))?.split("=")[1];
        const units = run
          ? [...this.unitLog.keys()].filter((u) => invocationId(u) === run)
          : a.flatMap((x, i) => (a[i - 1] === "-u" ? [x] : []));
        return this.ok(units.flatMap((u) => this.unitLog.get(u) ?? []).join("\n"));
      }
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

  mountinfo(): string {
    let id = 100;
    return [...this.mounts]
      .map(
        ([where, upper]) =>
          `${id++} 1 0:${id} / ${where} rw,relatime - overlay overlay rw,lowerdir=/x,upperdir=${upper},workdir=/y`,
      )
      .join("\n");
  }
}

/** A unit's InvocationID here: one run per unit, named after it. */
const invocationId = (unit: string) => createHash("md5").update(unit).digest("hex");

/** NAME's machine record, which the test expects the operations to have written. */
export function recordOf(name: string): MachineState {
  const m = loadMachine(name);
  if (!m) throw new Error(`no machine.json for ${name}`);
  return m;
}

/** A fresh temporary root holding the given staged images (empty rootfs, valid image.json). */
export function tempRoot(images: string[]): string {
  // On tmpfs where there is one: the operations fsync every state file.
  const dir = tempDir("boxctl-ops-", existsSync("/dev/shm") ? "/dev/shm" : undefined);
  relocate(dir);
  // Present on every systemd host; boxctl creates only its own directories.
  mkdirSync(paths.unitDir(), { recursive: true });
  for (const image of images) {
    mkdirSync(paths.imageRoot(image), { recursive: true, mode: 0o755 });
    // What a cutover asks of an image (archive/layout.ts: unbootable): an os-release and systemd.
    mkdirSync(join(paths.imageRoot(image), "etc"));
    writeFileSync(join(paths.imageRoot(image), "etc/os-release"), "ID=debian\n");
    mkdirSync(join(paths.imageRoot(image), "usr/lib/systemd"), { recursive: true });
    writeFileSync(join(paths.imageRoot(image), "usr/lib/systemd/systemd"), "", { mode: 0o755 });
    writeFileSync(
      paths.imageMeta(image),
      JSON.stringify({
        version: 1,
        name: image,
        os: "Debian GNU/Linux 12 (bookworm)",
        size: 0,
        staged: new Date().toISOString(),
        sha256: "0".repeat(64),
        source: `${image}.tar`,
      }),
    );
  }
  return dir;
}
