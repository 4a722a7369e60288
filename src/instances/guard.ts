import { withMachineLock } from "../lock.ts";
import { recoverInterrupted } from "./recover.ts";

/**
 * The frame of every mutating verb on a machine: take the machine's lock,
 * then finish or undo whatever an earlier, interrupted command left.
 */
export function guarded<T>(
  name: string,
  verb: string,
  opts: { wait?: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  return withMachineLock(name, verb, opts, async () => {
    await recoverInterrupted(name);
    return fn();
  });
}
