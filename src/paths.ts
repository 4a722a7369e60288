// Where boxctl keeps things. It writes nowhere else: its store, the
// machines' mount points, systemd's configuration directories and /run.
import { join } from "node:path";

export const STORE = process.env.BOXCTL_STORE ?? "/var/lib/boxctl";
export const MACHINES_DIR = "/var/lib/machines";
export const UNIT_DIR = "/etc/systemd/system";
export const NSPAWN_DIR = "/etc/systemd/nspawn";
export const RUN_DIR = "/run/boxctl";

export const paths = {
  images: () => join(STORE, "images"),
  image: (image: string) => join(STORE, "images", image),
  /** The read-only tree that instances use as their overlay lower layer. */
  imageRoot: (image: string) => join(STORE, "images", image, "rootfs"),
  imageMeta: (image: string) => join(STORE, "images", image, "image.json"),
  /** Unpacking happens here, on the same file system, then is renamed into images/. */
  staging: () => join(STORE, "staging"),

  machines: () => join(STORE, "machines"),
  machine: (name: string) => join(STORE, "machines", name),
  machineState: (name: string) => join(STORE, "machines", name, "machine.json"),
  /** The journal of an operation in progress; present only while one runs or after a crash. */
  intent: (name: string) => join(STORE, "machines", name, "intent.json"),
  instance: (name: string, gen: number) => join(STORE, "machines", name, "instances", String(gen)),
  upper: (name: string, gen: number) =>
    join(STORE, "machines", name, "instances", String(gen), "upper"),
  work: (name: string, gen: number) =>
    join(STORE, "machines", name, "instances", String(gen), "work"),

  /** Kernel (flock) locks, one per machine; tmpfs, so a reboot clears them. */
  lock: (name: string) => join(RUN_DIR, "lock", `${name}.lock`),
  /** Shared by cutovers, exclusive for delete-image; outside lock/ so no machine name can clash. */
  storeLock: () => join(RUN_DIR, "images.lock"),

  /** The container's root as systemd-nspawn@.service and machinectl expect it. */
  machineRoot: (name: string) => join(MACHINES_DIR, name),
  nspawnFile: (name: string) => join(NSPAWN_DIR, `${name}.nspawn`),
};
