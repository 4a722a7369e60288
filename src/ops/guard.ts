// The frame of every mutating verb on a machine: take the machine's lock,
// then finish or undo whatever an earlier, interrupted command left; and
// `boxctl recover NAME`, which is that frame and nothing else.
import { checkName } from "../base/names.ts";
import { DEFAULT_BOOT_TIMEOUT_MS } from "../host/boot.ts";
import { withMachineLock } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { readIntent } from "../plan/intent.ts";
import { requireMachine } from "../store/machine.ts";
import { recoverInterrupted } from "./recover.ts";

export interface GuardOptions {
  wait?: boolean;
  /** How long recovery may wait for a boot: the verb's own --timeout. */
  timeoutMs?: number;
}

export function guarded<T>(
  r: Runner,
  name: string,
  verb: string,
  opts: GuardOptions,
  fn: () => Promise<T>,
): Promise<T> {
  return withMachineLock(r, name, verb, opts, async () => {
    await recoverInterrupted(r, name, opts.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS);
    return fn();
  });
}

export async function recoverCommand(r: Runner, name: string, opts: GuardOptions): Promise<number> {
  checkName("machine", name);
  const pending = readIntent(name) !== null;
  return guarded(r, name, "recover", opts, async () => {
    if (!pending) {
      requireMachine(name);
      process.stdout.write(`${name}: no interrupted operation\n`);
    }
    return 0;
  });
}
