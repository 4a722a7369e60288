// Reading and writing a container's tree without ever following a link
// the container planted. Node has no openat(2), so a directory is held as
// an open descriptor and its entries are reached as /proc/self/fd/N/NAME:
// the kernel resolves /proc/self/fd/N to that very directory (a magic
// link, not a path it walks), and NAME is one component, opened with
// O_NOFOLLOW. A symlink swapped in for a directory between two calls
// makes the open fail (ELOOP, ENOTDIR); it is never followed. The same
// descriptor is handed to tar as its fd 3 (tar -C /proc/self/fd/3), and
// GNU tar walks below it with openat and O_NOFOLLOW in turn.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  type Stats,
} from "node:fs";
import { BoxError } from "../base/errors.ts";

const DIR = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const FILE = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function checkComponent(name: string): string {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0"))
    throw new BoxError(`internal error: '${name}' is not one path component`);
  return name;
}

/** The path through which the kernel reaches NAME in the directory open as fd, and nothing else. */
export const at = (fd: number, name: string) => `/proc/self/fd/${fd}/${checkComponent(name)}`;
export const self = (fd: number) => `/proc/self/fd/${fd}`;

/** Opens a directory boxctl owns (an upper dir, an image root, its scratch dir). */
export function openTrusted(path: string): number {
  return openSync(path, DIR);
}

/** openTrusted that records each descriptor in fds, which the caller closes when done. */
export function trustedOpener(fds: number[]): (path: string) => number {
  return (path) => {
    const fd = openTrusted(path);
    fds.push(fd);
    return fd;
  };
}

export function close(fd: number | null | undefined): void {
  if (typeof fd === "number") closeSync(fd);
}

export function lstatAt(fd: number, name: string): Stats | null {
  try {
    return lstatSync(at(fd, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

export type Opened = number | "missing" | "not-a-directory";

/** The subdirectory NAME, opened; a symlink (or anything else) is "not-a-directory". */
export function openDirAt(fd: number, name: string): Opened {
  try {
    return openSync(at(fd, name), DIR);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "missing";
    if (code === "ELOOP" || code === "ENOTDIR") return "not-a-directory";
    throw e;
  }
}

/**
 * The directory at parts below root, opened component by component; the
 * caller closes it. Which component was missing or not a real directory
 * (a symlink above all) is the error's subject; nothing is resolved past it.
 */
export function openPath(
  root: number,
  parts: readonly string[],
): Opened | { at: string; why: Opened } {
  let fd = root;
  for (let i = 0; i < parts.length; i++) {
    const next = openDirAt(fd, parts[i] as string);
    if (fd !== root) closeSync(fd);
    if (typeof next !== "number") return { at: parts.slice(0, i + 1).join("/"), why: next };
    fd = next;
  }
  // A second descriptor of root itself: /proc/self/fd/N is the magic link
  // that O_NOFOLLOW would refuse, and it can only lead to root.
  return fd === root ? openSync(self(root), constants.O_RDONLY | constants.O_DIRECTORY) : fd;
}

export function listAt(fd: number): string[] {
  return readdirSync(self(fd)).sort();
}

/** A regular file's bytes, read through a descriptor opened without following links. */
export function readRegularAt(fd: number, name: string): Buffer | null {
  let f: number;
  try {
    f = openSync(at(fd, name), FILE);
  } catch {
    return null;
  }
  try {
    return fstatSync(f).isFile() ? readFileSync(f) : null;
  } finally {
    closeSync(f);
  }
}

export function readlinkAt(fd: number, name: string): string {
  return readlinkSync(at(fd, name));
}

/**
 * Makes directory NAME in fd (if missing) with the given owner and mode,
 * and returns it open. An existing entry that is not a real directory is
 * refused, never followed.
 */
export function ensureDirAt(
  fd: number,
  name: string,
  meta: { uid: number; gid: number; mode: number },
): Opened {
  const made = lstatAt(fd, name) === null;
  if (made) mkdirSync(at(fd, name), { mode: 0o700 });
  const d = openDirAt(fd, name);
  if (typeof d === "number" && made) {
    fchownSync(d, meta.uid, meta.gid);
    fchmodSync(d, meta.mode & 0o7777);
  }
  return d;
}

export function setDirMeta(d: number, meta: { uid: number; gid: number; mode: number }): void {
  fchownSync(d, meta.uid, meta.gid);
  fchmodSync(d, meta.mode & 0o7777);
}

export const isWhiteout = (st: Stats) => st.isCharacterDevice() && st.rdev === 0;
