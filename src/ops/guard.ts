// The frame of every mutating verb on a machine: take the machine's lock,
// then finish or undo whatever an earlier, interrupted command left; and
// `boxctl recover NAME`, which is that frame and nothing else, and
// `boxctl recover --boot`, which boxctl-recover.service runs at boot.
import { BoxError, EXIT, printError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import { bootAndVerify, DEFAULT_BOOT_TIMEOUT_MS } from "../host/boot.ts";
import { keepReserve } from "../host/files.ts";
import { journal } from "../host/journal.ts";
import { withMachineLock } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning } from "../host/systemd.ts";
import { remountTo } from "../overlay/root.ts";
import { type Intent, pendingMachines, readIntent } from "../plan/intent.ts";
import {
  describe,
  type InstanceRef,
  instanceOf,
  instanceRef,
  loadMachine,
  requireMachine,
} from "../store/machine.ts";
import { attention } from "./drift.ts";
import { recoverInterrupted } from "./recover.ts";

export interface GuardOptions {
  wait?: boolean;
  /** How long recovery may wait for a boot: the verb's own --timeout. */
  timeoutMs?: number;
}

/**
 * fn gets the interrupted operation that recovery settled first (read
 * under the lock, where nothing else can settle it), or null.
 */
export function guarded<T>(
  r: Runner,
  name: string,
  verb: string,
  opts: GuardOptions,
  fn: (settled: Intent | null) => Promise<T>,
): Promise<T> {
  return withMachineLock(r, name, verb, opts, async () => {
    keepReserve(r);
    const intent = readIntent(name);
    await recoverInterrupted(r, name, opts.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS);
    return fn(intent);
  });
}

/** What recover NAME did: finished an interrupted operation, put back a drift, or nothing. */
export interface RecoverResult {
  /** The interrupted operation it completed or rolled back, and that operation's target instance. */
  interrupted: { verb: string; target: InstanceRef } | null;
  /** Why the machine differed from its record (ops/drift.ts), when it put that back. */
  settled: string | null;
  /** Where the machine stands afterwards. */
  current: InstanceRef | null;
  fallback: InstanceRef | null;
  running: boolean;
}

export function recoverCommand(
  r: Runner,
  name: string,
  opts: GuardOptions,
): Promise<RecoverResult> {
  checkName("machine", name);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  return guarded(r, name, "recover", opts, async (intent) => {
    const settled = intent ? null : await settleDrift(r, name, timeoutMs);
    // A first cutover rolled back leaves no record.
    const m = loadMachine(name);
    return {
      interrupted: intent
        ? { verb: intent.verb, target: { gen: intent.target, image: intent.image ?? "" } }
        : null,
      settled,
      current: m ? instanceRef(instanceOf(m, m.current)) : null,
      fallback: m ? instanceRef(instanceOf(m, m.fallback)) : null,
      running: await isRunning(r, name),
    };
  });
}

/**
 * With no interrupted operation, recover puts back what status calls
 * different from the record: the current instance mounted (restarting the
 * container if another one was mounted under it) and the mount unit
 * rewritten. A machine that matches its record is left alone (null).
 * start and restart settle first too: nspawn would otherwise run the
 * container with settings boxctl did not write (without PrivateUsers=, the
 * stock unit's -U picks another uid range and chowns the whole image into
 * the instance), or on another instance than the current one.
 */
export async function settleDrift(
  r: Runner,
  name: string,
  timeoutMs: number,
): Promise<string | null> {
  const m = requireMachine(name);
  const a = attention(r, m);
  // Lost files are not a drift: putting the current instance back would not bring them back.
  if (!a || a.reason === "root-emptied" || a.reason === "image-missing") return null;
  const cur = instanceOf(m, m.current);
  process.stderr.write(`boxctl: ${name}: ${a.message}; putting back ${describe(cur)}\n`);
  const wasRunning = await isRunning(r, name);
  await remountTo(r, name, cur);
  await journal(r, {
    machine: name,
    operation: "recover",
    instance: cur?.gen ?? null,
    image: cur?.image ?? null,
    result: "settled",
    message: `${a.message}; put back ${describe(cur)}`,
    extra: { REASON: a.reason },
    priority: 4,
  });
  if (wasRunning && cur) await bootAndVerify(r, name, paths.machineRoot(name), timeoutMs);
  return a.reason;
}

/**
 * recover --boot: every machine with a leftover intent.json, settled the
 * way that suits early boot (recover.ts, filesOnly). One machine's failure
 * does not stop the others; it is in the journal, and the machine starts
 * (if enabled) on the instance its /etc mount unit names, the current one.
 */
export async function recoverAtBoot(r: Runner): Promise<number> {
  let failed = 0;
  const names = pendingMachines();
  for (const name of names) {
    try {
      await withMachineLock(r, name, "recover --boot", { wait: true }, () =>
        recoverInterrupted(r, name, DEFAULT_BOOT_TIMEOUT_MS, true),
      );
    } catch (e) {
      failed++;
      const err = e instanceof BoxError ? e : new BoxError(String(e));
      printError(new BoxError(`${name}: recovery at boot failed: ${err.message}`, err.hint));
      await journal(r, {
        machine: name,
        operation: "recover",
        result: "failed",
        message: `recovery at boot failed: ${err.message}`,
        extra: { AT_BOOT: "yes" },
        priority: 3,
      });
    }
  }
  if (names.length === 0) process.stdout.write("no interrupted operation\n");
  return failed ? EXIT.failed : 0;
}
