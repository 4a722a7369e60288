// One mutating operation per machine at a time. The lock is flock(2) on a
// file in /run, taken through util-linux flock(1) on a descriptor boxctl
// keeps open: the kernel releases it when boxctl exits or is killed, so a
// crash never leaves a machine locked.
import { spawnSync } from "node:child_process";
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
import { BoxError } from "./errors.ts";
import { paths } from "./paths.ts";
import { runnerConfig } from "./runner.ts";

export interface LockOptions {
  /** Wait for the holder to finish instead of failing at once. */
  wait?: boolean;
}

export async function withMachineLock<T>(
  name: string,
  verb: string,
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  if (runnerConfig.dryRun) return fn();
  const path = paths.lock(name);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const args = opts.wait ? ["3"] : ["-n", "3"];
    let r = spawnSync("flock", args, { stdio: ["ignore", "ignore", "pipe", fd] });
    if (r.error)
      throw new BoxError("cannot run flock(1) to lock the machine", "install util-linux");
    if (r.status !== 0 && !opts.wait) {
      const holder = readFileSync(path, "utf8").trim();
      const [pid, by] = holder.split(" ");
      throw new BoxError(
        `${name} is busy: ${by ?? "another command"} by pid ${pid ?? "?"}`,
        "wait for it to finish, or add --wait to queue behind it",
      );
    }
    if (r.status !== 0) r = spawnSync("flock", ["3"], { stdio: ["ignore", "ignore", "pipe", fd] });
    if (r.status !== 0)
      throw new BoxError(`could not lock ${name}: ${r.stderr?.toString().trim()}`);
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid} ${verb}\n`, 0);
    return await fn();
  } finally {
    // Closing the last descriptor is what releases the lock.
    closeSync(fd);
  }
}
