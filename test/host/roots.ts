// The root file systems of the throw-away test hosts, and their cleanup.
//
// A host's root is an overlay over the cached root, not a copy of it: a copy
// cost 3.6 s of kernel time per host (275 MB), for ten hosts per npm test.
// overlayfs cannot take an upper dir that lives on overlayfs, and boxctl
// makes its instances' upper dirs in its store, so the store, and
// /var/lib/machines beside it, are plain file systems over the overlay:
// directories bound from the disk, as on a real host ("disk"), or a tmpfs
// each ("tmpfs"). On this kind of VM's disk, staging the 160 MB guest cost
// 5.7 s of CPU (4.3 s of it the kernel's) against 1.7 s on tmpfs, and
// removing a host's store seconds more; the groups that do not test the disk
// itself take tmpfs. Both live in this machine's mount namespace, so they
// outlive the host's reboots and power cuts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const HOSTS = process.env.BOXCTL_TEST_HOSTS ?? "/var/tmp/boxctl-hosts";
const PLAIN = ["var/lib/boxctl", "var/lib/machines"];

function run(argv: string[]): void {
  const r = spawnSync(argv[0] as string, argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.trim() || r.error}`);
}

export type StoreKind = "disk" | "tmpfs";

/** Mounts host NAME's root at HOSTS/NAME; its own files go to HOSTS/NAME.d. */
export function mountRoot(name: string, lower: string, store: StoreKind = "disk"): void {
  const root = join(HOSTS, name);
  const own = `${root}.d`;
  const bound = store === "disk" ? PLAIN.map((p) => join(own, p)) : [];
  for (const d of [root, `${own}/upper`, `${own}/work`, ...bound])
    mkdirSync(d, { recursive: true });
  run([
    "mount",
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${lower},upperdir=${own}/upper,workdir=${own}/work`,
    root,
  ]);
  for (const p of PLAIN) {
    mkdirSync(join(root, p), { recursive: true });
    if (store === "tmpfs")
      run(["mount", "-t", "tmpfs", "-o", "size=6g,mode=0755", "tmpfs", join(root, p)]);
    else run(["mount", "--bind", join(own, p), join(root, p)]);
  }
}

/** Lazily: a mount that something still holds must not stop the cleanup. */
export function unmountRoot(name: string): void {
  const root = join(HOSTS, name);
  if (existsSync(root)) spawnSync("umount", ["-R", "-l", root]);
}

/**
 * Each test host runs in a cgroup of its own. On this kind of machine PID 1
 * is not systemd and every process sits in the root cgroup; nspawn puts a
 * host's systemd in "payload" under its own cgroup, so hosts booted from the
 * root would share one payload, and one host's systemd cleaning up its
 * machine.slice removes another's container cgroup under it ("Failed to
 * chown() cgroup .../payload: No such file or directory"): nested containers
 * then fail to start at random when two hosts run side by side.
 */
const HIERARCHIES = existsSync("/sys/fs/cgroup/cgroup.procs")
  ? ["/sys/fs/cgroup"]
  : ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"].filter((h) =>
      existsSync(join(h, "cgroup.procs")),
    );

export function hostCgroups(name: string): string[] {
  return HIERARCHIES.map((h) => join(h, name));
}

/** How many processes are left in the host's cgroups (each hierarchy, every level). */
export function hostProcesses(name: string): number {
  return Math.max(0, ...hostCgroups(name).map((c) => cgroupPids(c).length));
}

/** Every process in a cgroup tree. */
function cgroupPids(dir: string): number[] {
  try {
    const pids = readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean);
    return [
      ...pids.map(Number),
      ...readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .flatMap((e) => cgroupPids(join(dir, e.name))),
    ];
  } catch {
    // A cgroup removed while we looked holds nothing.
    return [];
  }
}

/** Removes a cgroup tree once its processes are gone (children first). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeCgroup(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // A process of the host outlived it; the next sweep tries again.
  }
}

export function removeHost(name: string): void {
  const root = join(HOSTS, name);
  unmountRoot(name);
  for (const c of hostCgroups(name)) removeCgroup(c);
  // .#NAME.lck: nspawn's lock on the image, left when nspawn is killed.
  for (const p of [root, `${root}.d`, `${root}.log`, `${root}.keep`, join(HOSTS, `.#${name}.lck`)])
    rmSync(p, { recursive: true, force: true });
}

/**
 * Removes the hosts of test runs that ended without cleaning up (Ctrl-C,
 * SIGKILL, a crash): an orphaned nspawn keeps a whole systemd running. A
 * host's name carries the pid of the node process that booted it, so a
 * host is stale when that process is gone. Hosts kept with
 * BOXCTL_KEEP_HOSTS have a .keep file and stay.
 */
export async function sweepStaleHosts(): Promise<string[]> {
  const stale = (existsSync(HOSTS) ? readdirSync(HOSTS) : []).filter((name) => {
    const m = /^bx-[a-z]+-(\d+)-[a-z0-9]+$/.exec(name);
    return m && !alive(Number(m[1])) && !existsSync(join(HOSTS, `${name}.keep`));
  });
  for (const name of stale) {
    // SIGTERM makes nspawn halt the container's systemd in order.
    const pids = nspawnPids(name);
    for (const pid of pids) signal(pid, "SIGTERM");
    for (let i = 0; i < 100 && pids.some(alive); i++) await sleep(100);
    for (const pid of pids) signal(pid, "SIGKILL");
    // A SIGKILL to nspawn leaves the host's init, and all under it, running.
    for (const c of hostCgroups(name)) for (const pid of cgroupPids(c)) signal(pid, "SIGKILL");
    for (let i = 0; i < 100 && hostProcesses(name) > 0; i++) await sleep(100);
    removeHost(name);
  }
  return stale;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function nspawnPids(machine: string): number[] {
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0");
        return argv[0]?.endsWith("systemd-nspawn") && argv.includes(`--machine=${machine}`);
      } catch {
        return false;
      }
    })
    .map(Number);
}
