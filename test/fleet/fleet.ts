// A fleet of test hosts for the Ansible collection's system tests, and
// ansible-playbook run on this machine as the controller.
//
// The controller reaches each host with the community.docker.nsenter
// connection (Debian's `ansible` package): it runs every command as
// `nsenter --target=PID --mount --uts --ipc --net --pid -- CMD`, PID being the
// host's systemd as this machine sees it. No SSH server, keys or network
// between the test hosts (which have --private-network) are needed.
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ALL_SUITES, cachePath, type Suite, TestHost } from "../host/host.ts";

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const MACHINE = "system1";
/** The test hosts' Debian: bookworm (default), or BOXCTL_FLEET_SUITE (trixie, sid). */
export const SUITE: Suite = (ALL_SUITES as string[]).includes(process.env.BOXCTL_FLEET_SUITE ?? "")
  ? (process.env.BOXCTL_FLEET_SUITE as Suite)
  : "bookworm";

/**
 * The controller: this machine's ansible, or, with BOXCTL_FLEET_CONTROLLER
 * set to a root filesystem (e.g. `debootstrap --include=ansible trixie DIR`
 * for ansible-core 2.19), the ansible installed there, run with chroot. The
 * repository, /tmp, /proc and /dev are bound into it at the same paths
 * (controllerMounts), so every path means the same inside and out.
 */
const CONTROLLER = process.env.BOXCTL_FLEET_CONTROLLER;

export function controllerArgv(cmd: string, args: string[]): [string, string[]] {
  return CONTROLLER ? ["chroot", [CONTROLLER, cmd, ...args]] : [cmd, args];
}

const BINDS = ["/proc", "/dev", "/tmp", repo];

export function controllerMounts(): void {
  if (!CONTROLLER) return;
  for (const dir of BINDS) {
    const at = join(CONTROLLER, dir);
    mkdirSync(at, { recursive: true });
    const r = spawnSync("mount", ["--rbind", dir, at], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mount --rbind ${dir} ${at}: ${r.stderr}`);
  }
}

export function controllerUnmounts(): void {
  if (!CONTROLLER) return;
  for (const dir of [...BINDS].reverse()) spawnSync("umount", ["-R", "-l", join(CONTROLLER, dir)]);
}

export function controllerVersion(): string | null {
  const [cmd, args] = controllerArgv("ansible-playbook", ["--version"]);
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? (r.stdout.split("\n")[0] ?? "") : null;
}

export interface FleetHost {
  name: string; // inventory name: h1, h2, ...
  host: TestHost;
  pid: number; // the test host's PID 1 (systemd) as seen here
}

/** The leader pid of a booted TestHost (host.ts keeps it private). */
function leaderPid(host: TestHost): number {
  // biome-ignore lint/complexity/useLiteralKeys: reads TestHost's private initPid
  const pid = (host as unknown as Record<string, number>)["initPid"];
  if (!pid) throw new Error(`${host.name}: no leader pid`);
  return pid;
}

export function imageSha256(file: string): string {
  return createHash("sha256")
    .update(readFileSync(join(cachePath("guest-bookworm"), "images", file)))
    .digest("hex");
}

/** Destroys the hosts. */
export async function destroyFleet(fleet: FleetHost[]): Promise<void> {
  await Promise.all(fleet.map((h) => h.host.destroy()));
}

/** Boots n test hosts, each with system1 running on foo-0.1. */
export async function bootFleet(n: number): Promise<FleetHost[]> {
  const fleet: FleetHost[] = [];
  try {
    for (let i = 1; i <= n; i++) {
      // Each host is booted from a cgroup of its own (host.ts): hosts that
      // share one would remove each other's systemd-nspawn@system1 cgroups.
      const host = await TestHost.boot(SUITE, { store: "tmpfs" });
      fleet.push({ name: `h${i}`, host, pid: leaderPid(host) });
    }
    await Promise.all(
      fleet.map(async ({ host }) => {
        await host.sh(["boxctl", "stage-image", "/srv/images/foo-0.1.tar", "--quiet"]);
        await host.sh(["boxctl", "cutover-instance", MACHINE, "foo-0.1"], { timeoutMs: 180_000 });
      }),
    );
  } catch (e) {
    await destroyFleet(fleet);
    throw e;
  }
  return fleet;
}

export function inventory(fleet: FleetHost[], hostVars: Record<string, string> = {}): string {
  return [
    "[fleet]",
    ...fleet.map((h) => `${h.name} ansible_nsenter_pid=${h.pid} ${hostVars[h.name] ?? ""}`.trim()),
    "",
    "[fleet:vars]",
    "ansible_connection=community.docker.nsenter",
    "ansible_python_interpreter=/usr/bin/python3",
    "",
  ].join("\n");
}

/** Builds the collection with ansible-galaxy and installs it in a fresh directory. */
export function installCollection(): string {
  const dir = mkdtempSync(join(tmpdir(), "boxctl-ansible-"));
  const build = spawnSync(
    ...controllerArgv("ansible-galaxy", [
      "collection",
      "build",
      join(repo, "ansible"),
      "--output-path",
      dir,
      "--force",
    ]),
    { encoding: "utf8" },
  );
  if (build.status !== 0) throw new Error(`ansible-galaxy build: ${build.stderr}${build.stdout}`);
  const tarball = join(dir, "boxctl-boxctl-0.1.0.tar.gz");
  const inst = spawnSync(
    ...controllerArgv("ansible-galaxy", [
      "collection",
      "install",
      tarball,
      "-p",
      join(dir, "collections"),
      "--force",
    ]),
    { encoding: "utf8" },
  );
  if (inst.status !== 0) throw new Error(`ansible-galaxy install: ${inst.stderr}${inst.stdout}`);
  rmSync(tarball);
  return join(dir, "collections");
}

export interface PlaybookRun {
  code: number;
  output: string;
  recap: Record<string, Record<string, number>>;
}

/** Runs ansible-playbook from this machine; resolves with its exit code, output and recap. */
export function playbook(
  collections: string,
  inventoryFile: string,
  args: string[],
  timeoutMs = 600_000,
): Promise<PlaybookRun> {
  return new Promise((res, rej) => {
    // The nsenter connection hands the controller's environment to the
    // commands it runs in the host: keep node's settings out of it.
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith("NODE_")),
    );
    const child = spawn(...controllerArgv("ansible-playbook", ["-i", inventoryFile, ...args]), {
      cwd: repo,
      env: {
        ...env,
        ANSIBLE_COLLECTIONS_PATH: collections,
        ANSIBLE_HOST_KEY_CHECKING: "False",
        ANSIBLE_NOCOLOR: "1",
        ANSIBLE_FORCE_COLOR: "0",
        ANSIBLE_RETRY_FILES_ENABLED: "False",
        ANSIBLE_STDOUT_CALLBACK: "default",
        ANSIBLE_LOCAL_TEMP: join(dirname(collections), "tmp"),
        LC_ALL: "C.UTF-8",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      output += d;
      if (process.env.BOXCTL_FLEET_VERBOSE) process.stderr.write(d);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      output += d;
      if (process.env.BOXCTL_FLEET_VERBOSE) process.stderr.write(d);
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", rej);
    child.on("close", (code) => {
      clearTimeout(timer);
      res({ code: code ?? 137, output, recap: parseRecap(output) });
    });
  });
}

/** PLAY RECAP lines: `h1 : ok=5 changed=2 unreachable=0 failed=0 skipped=1 rescued=0 ignored=0`. */
export function parseRecap(output: string): Record<string, Record<string, number>> {
  const recap: Record<string, Record<string, number>> = {};
  const at = output.lastIndexOf("PLAY RECAP");
  if (at < 0) return recap;
  for (const line of output.slice(at).split("\n").slice(1)) {
    const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const counts: Record<string, number> = {};
    for (const kv of (m[2] as string).trim().split(/\s+/)) {
      const [k, v] = kv.split("=");
      if (k && v !== undefined) counts[k] = Number(v);
    }
    recap[m[1] as string] = counts;
  }
  return recap;
}

export interface MachineSnapshot {
  machineJson: string;
  instances: string;
  upperInode: string;
  activeSince: string;
}

/** What "never touched" means for a machine: its record, its instance dirs, its upper dir, its boot. */
export async function snapshot(host: TestHost): Promise<MachineSnapshot> {
  const base = `/var/lib/boxctl/machines/${MACHINE}`;
  const status = JSON.parse(await host.sh(["boxctl", "status", MACHINE, "--json"]));
  return {
    machineJson: await host.sh(["cat", `${base}/machine.json`]),
    instances: await host.sh(["ls", "-1", `${base}/instances`]),
    upperInode: await host.sh(["stat", "-c", "%d:%i", status.changes.path]),
    activeSince: String(status.unit.since),
  };
}

export async function machineStatus(host: TestHost) {
  return JSON.parse(await host.sh(["boxctl", "status", MACHINE, "--json"])) as {
    state: string;
    current: { gen: number; image: string } | null;
    fallback: { gen: number; image: string } | null;
  };
}
