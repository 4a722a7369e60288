// A kernel limit that many containers run into: inotify instances. Every
// booted Debian container's systemd, D-Bus and logind hold about five
// (measured in a test host: 12 before one container, 17 with it), and
// the kernel charges all of them to root on the host, containers with
// private users included: their user namespaces belong to root. The
// default of 128 (fs.inotify.max_user_instances) runs short at about
// twenty containers (25 on one host: 14 booted without D-Bus and logind),
// and with none left a container's systemd exits at once ("Failed to
// allocate manager object: Too many open files"), which boxctl sees only
// as a container that stopped while booting, or that never boots.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface InotifyUse {
  /** Instances open, counted over root's processes and those in other user namespaces. */
  used: number;
  /** fs.inotify.max_user_instances. */
  max: number;
}

/** Fewer free than this and a container may not boot: about three containers' worth. */
export const INOTIFY_HEADROOM = 16;

/** What the Debian package sets at boot (debian/sysctl.conf); Docker's value too. */
export const INOTIFY_RAISED = 8192;

/**
 * After a good boot boxctl counts only below this limit: the count reads
 * every process's fds (about 80 µs a process here), and a limit of
 * thousands is far from what containers use.
 */
export const INOTIFY_COUNT_BELOW = 1024;

/**
 * Counts the inotify instances charged to root, reading proc (the real
 * /proc, or a tree shaped like it in a test). A process that is not root
 * counts when it lives in another user namespace than ours, as a private-
 * users container's do. Processes that end meanwhile are skipped. null if
 * the limit cannot be read, or is countBelow or more (then nothing is counted).
 */
export function readInotifyUse(
  proc = "/proc",
  countBelow = Number.POSITIVE_INFINITY,
): InotifyUse | null {
  let max: number;
  try {
    max = Number(readFileSync(join(proc, "sys/fs/inotify/max_user_instances"), "utf8").trim());
  } catch {
    return null;
  }
  if (!Number.isFinite(max) || max >= countBelow) return null;
  const ownNs = linkOf(join(proc, "self/ns/user"));
  let used = 0;
  for (const pid of readdirSync(proc)) {
    if (!/^\d+$/.test(pid)) continue;
    const dir = join(proc, pid);
    if (!chargedToRoot(dir, ownNs)) continue;
    let fds: string[];
    try {
      fds = readdirSync(join(dir, "fd"));
    } catch {
      continue;
    }
    for (const fd of fds) if (linkOf(join(dir, "fd", fd)) === "anon_inode:inotify") used++;
  }
  return { used, max };
}

function chargedToRoot(dir: string, ownNs: string | null): boolean {
  try {
    const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(readFileSync(join(dir, "status"), "utf8"));
    if (uid?.[1] === "0") return true;
  } catch {
    return false;
  }
  const ns = linkOf(join(dir, "ns/user"));
  return ns !== null && ownNs !== null && ns !== ownNs;
}

function linkOf(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

function nearlyOut(use: InotifyUse | null): string | null {
  if (!use || use.max - use.used >= INOTIFY_HEADROOM) return null;
  return `the host is nearly out of inotify instances (${use.used} of fs.inotify.max_user_instances=${use.max} in use)`;
}

const RAISE = `raise the limit: sysctl -w fs.inotify.max_user_instances=${INOTIFY_RAISED}, and keep it in /etc/sysctl.d/`;

/**
 * The likely cause of a container that failed to boot, when the host is
 * nearly out of inotify instances; null otherwise.
 */
export function inotifyHint(use: InotifyUse | null): string | null {
  const out = nearlyOut(use);
  return out && `${out}, and a container's systemd needs several to boot; ${RAISE}`;
}

/**
 * After a good boot: the next containers may not get theirs. A container
 * short of them still reports a finished boot, degraded, with no D-Bus or
 * logind (14 of 25 on a host left at 128), so this is said before then.
 */
export function inotifyWarning(use: InotifyUse | null): string | null {
  const out = nearlyOut(use);
  return (
    out &&
    `${out}: containers started from now on may boot without D-Bus and logind, or not at all; ${RAISE}`
  );
}
