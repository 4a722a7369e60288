// The systemd of a fake host (fake-host.ts), for unit tests of the
// operations: units and their states, the mount units boxctl writes (read
// from their files, as systemd reads them), the mount table systemd follows,
// enablement, what journalctl prints of a unit, and a container's own
// systemd as systemctl -M sees it. FakeHost adds the commands a Runner answers.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { paths } from "../../src/base/paths.ts";
import type { RunResult } from "../../src/host/runner.ts";

interface Unit {
  active: "active" | "inactive" | "failed";
  statusText: string;
}

/**
 * Mount point -> upper dir. A machine's root shows an OS while an overlay
 * is mounted there (its os-release, which status looks for), and its bare
 * mount point again once it is unmounted.
 */
export class MountTable extends Map<string, string> {
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

/** A unit's InvocationID here: one run per unit, named after it. */
export const invocationId = (unit: string) => createHash("md5").update(unit).digest("hex");

export class FakeSystemd {
  /** Mount point -> the upper dir of the overlay mounted there. */
  readonly mounts = new MountTable();
  readonly units = new Map<string, Unit>();
  /** Upper dirs whose container does not boot (a broken image). */
  readonly failsToBoot = new Set<string>();
  /**
   * How many looks (systemctl show) systemd takes to notice an umount(8)
   * by hand, as the real one, which follows the mount table, lags; until
   * then the mount unit reads active and starting it mounts nothing.
   */
  unmountLag = 0;
  protected lagging = new Map<string, number>();
  /** Mount units whose systemctl stop fails (systemd could not spawn umount). */
  readonly failsToStop = new Set<string>();
  /** Mount units whose start fails, as one whose required view failed (its log: unitLog). */
  readonly failsToMount = new Set<string>();
  /** Units whose start and restart fail, whatever is mounted (a Bind= source gone). */
  readonly failsToStart = new Set<string>();
  /** What a unit's processes and systemd logged of it, in order (journalctl -u UNIT). */
  readonly unitLog = new Map<string, string[]>();
  /**
   * Lines of systemd-nspawn's that journald stored without a unit (the
   * sender exited first), each after the given line of unitLog's.
   */
  readonly orphanLog: { after: string; message: string }[] = [];
  /** Machines that machinectl enable has made start with the host. */
  readonly enabled = new Set<string>();
  /** Whether daemon-reload has run since the last look (reloads()). */
  reloadCount = 0;
  /** What machined knows of a name besides boxctl (machinectl show, show-image). */
  readonly machined = new Map<string, { unit?: string; image?: string; leader?: number }>();
  /** Units a container's systemd does not have (systemctl -M NAME show says not-found). */
  readonly missingInMachine = new Set<string>();

  protected unit(id: string): Unit {
    let u = this.units.get(id);
    if (!u) {
      u = { active: "inactive", statusText: "" };
      this.units.set(id, u);
    }
    return u;
  }

  protected ok(stdout = ""): RunResult {
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

  protected systemctl(args: string[]): RunResult {
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
        if (units.some((u) => this.failsToStart.has(u)))
          return {
            code: 1,
            stdout: "",
            stderr: `Job for ${units[0]} failed because the control process exited with error code.`,
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
