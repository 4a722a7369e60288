// One mutating operation per machine at a time. The lock is flock(2) on a
// file in /run, taken through util-linux flock(1) on a descriptor boxctl
// keeps open: the kernel releases it when boxctl exits or is killed, so a
// crash never leaves a machine locked.
import {
  closeSync,
  constants,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import type { Runner } from "./runner.ts";

export interface LockOptions {
  /** Wait for the holder to finish instead of failing at once. */
  wait?: boolean;
}

/** One mutating operation per machine: "system1 is busy: cutover-instance by pid N". */
export function withMachineLock<T>(
  r: Runner,
  name: string,
  verb: string,
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  return withLock(r, paths.lock(name), name, verb, opts, fn);
}

/**
 * Cutovers hold the image store shared while they add an instance on an
 * image; delete-image holds it exclusively, so it can never delete an image
 * that a cutover running at the same moment is about to use.
 */
export function withImageStoreLock<T>(
  r: Runner,
  verb: string,
  opts: LockOptions & { shared: boolean },
  fn: () => Promise<T>,
) {
  return withLock(r, paths.storeLock(), "the image store", verb, opts, fn);
}

async function withLock<T>(
  r: Runner,
  path: string,
  what: string,
  verb: string,
  opts: LockOptions & { shared?: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  // A dry run changes nothing, so it needs no lock and waits for nobody.
  if (r.dryRun) return fn();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const args = [...(opts.shared ? ["-s"] : []), ...(opts.wait ? [] : ["-n"]), "3"];
    const res = await r.run(["flock", ...args], { check: false, fds: [fd] });
    if (res.code !== 0 && !opts.wait) {
      const [pid, by] = readFileSync(path, "utf8").trim().split(" ");
      throw new BoxError(
        `${what} is busy: ${by ?? "another command"} by pid ${pid ?? "?"}`,
        "wait for it to finish, or add --wait to queue behind it",
      );
    }
    if (res.code !== 0) throw new BoxError(`could not lock ${what}: ${res.stderr.trim()}`);
    // With a shared lock this names the latest holder, which is enough to point at.
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid} ${verb}\n`, 0);
    return await fn();
  } finally {
    // Closing the last descriptor is what releases the lock.
    closeSync(fd);
  }
}
