// Where boxctl keeps things. It writes nowhere else: its store, the
// machines' mount points, systemd's configuration directories and /run.
import { dirname, join } from "node:path";

/**
 * The six roots. BOXCTL_STORE moves the store (benchmarks use it); unit
 * tests move all six into a temporary directory with relocate().
 */
const roots = {
  store: process.env.BOXCTL_STORE ?? "/var/lib/boxctl",
  machines: "/var/lib/machines",
  units: "/etc/systemd/system",
  /** systemd's runtime unit directory: a tmpfs, empty again after any reboot or power cut. */
  runUnits: "/run/systemd/system",
  nspawn: "/etc/systemd/nspawn",
  run: "/run/boxctl",
};

/** For tests: every path boxctl uses, under dir. */
export function relocate(dir: string): void {
  roots.store = join(dir, "var/lib/boxctl");
  roots.machines = join(dir, "var/lib/machines");
  roots.units = join(dir, "etc/systemd/system");
  roots.runUnits = join(dir, "run/systemd/system");
  roots.nspawn = join(dir, "etc/systemd/nspawn");
  roots.run = join(dir, "run/boxctl");
}

export const paths = {
  store: () => roots.store,
  images: () => join(roots.store, "images"),
  image: (image: string) => join(roots.store, "images", image),
  /** The read-only tree that instances use as their overlay lower layer. */
  imageRoot: (image: string) => join(roots.store, "images", image, "rootfs"),
  imageMeta: (image: string) => join(roots.store, "images", image, "image.json"),
  /** Slack that deletions free first, so that they still work on a full disk (host/files.ts). */
  reserve: () => join(roots.store, ".reserve"),
  /** Unpacking happens here, on the same file system, then is renamed into images/. */
  staging: () => join(roots.store, "staging"),

  machines: () => join(roots.store, "machines"),
  machine: (name: string) => join(roots.store, "machines", name),
  machineState: (name: string) => join(roots.store, "machines", name, "machine.json"),
  /** The journal of an operation in progress; present only while one runs or after a crash. */
  intent: (name: string) => join(roots.store, "machines", name, "intent.json"),
  instance: (name: string, gen: number) =>
    join(roots.store, "machines", name, "instances", String(gen)),
  upper: (name: string, gen: number) =>
    join(roots.store, "machines", name, "instances", String(gen), "upper"),
  work: (name: string, gen: number) =>
    join(roots.store, "machines", name, "instances", String(gen), "work"),

  /** The script that mounts a private-users instance's idmapped view of its image. */
  viewScript: () => join(roots.store, "libexec", "idmap-view.pl"),
  /** Where that view is mounted: on /run, so that no backup or du walks an image again per instance. */
  view: (name: string, gen: number) => join(roots.run, "views", name, String(gen)),

  /** Kernel (flock) locks, one per machine; tmpfs, so a reboot clears them. */
  lock: (name: string) => join(roots.run, "lock", `${name}.lock`),
  /** A uid range claimed by the machine the file names, until it is deleted or the next boot (store/machine.ts). */
  baseClaim: (base: number) => join(paths.baseClaims(), String(base)),
  baseClaims: () => join(roots.run, "bases"),
  /** Shared by cutovers, exclusive for delete-image; outside lock/ so no machine name can clash. */
  storeLock: () => join(roots.run, "images.lock"),

  /** /var/lib/machines, where machinectl and systemd-nspawn@.service find containers. */
  mountPoints: () => roots.machines,
  /** The container's root as systemd-nspawn@.service and machinectl expect it. */
  machineRoot: (name: string) => join(roots.machines, name),
  /** A read-only view of the old instance that a cutover carries from, mounted only while it does. */
  carryView: (name: string) => join(roots.run, "carry", name),
  nspawnDir: () => roots.nspawn,
  nspawnFile: (name: string) => join(roots.nspawn, `${name}.nspawn`),
  /**
   * The other places systemd-nspawn looks for NAME.nspawn. It reads only the
   * first it finds, /etc/systemd/nspawn first, so once boxctl writes its file
   * there these are ignored.
   */
  shadowedNspawnFiles: (name: string) =>
    paths
      .nspawnDirs()
      .slice(1)
      .map((d) => join(d, `${name}.nspawn`)),
  /** Where systemd-nspawn looks for NAME.nspawn, in the order it looks. */
  nspawnDirs: () => [roots.nspawn, join(dirname(roots.runUnits), "nspawn"), roots.machines],
  unitDir: () => roots.units,
  runtimeUnitDir: () => roots.runUnits,
};
