// Mutating operations are a list of named steps, computed first and then
// run one by one. --dry-run prints each step and the commands it would
// run; a real run records each finished step in intent.json, so that
// recovery knows how far an interrupted operation got.
import { BoxError, EXIT } from "../errors.ts";
import { runnerConfig } from "../runner.ts";
import { type Intent, writeIntent } from "./journal.ts";

export interface Step {
  name: string;
  /** What the step does, for --dry-run and progress lines. */
  what: string;
  run: () => Promise<void>;
  /**
   * Whether recovery's decision depends on this step being on disk after a
   * power cut. Steps in the downtime window that recovery handles by
   * looking at the mount itself skip the fsyncs.
   */
  durable?: boolean;
}

/** Step names of each operation, in order; the crash tests iterate over these. */
export const CUTOVER_STEPS = [
  "intent",
  "create-instance",
  "switch-unit",
  "remount",
  "restart",
  "wait-booted",
  "commit",
] as const;
/** A fallback is a cutover to an instance that already exists. */
export const FALLBACK_STEPS = CUTOVER_STEPS.filter(
  (s): s is Exclude<(typeof CUTOVER_STEPS)[number], "create-instance"> => s !== "create-instance",
);
/** From this step on an interrupted switch is completed; before it, rolled back. */
export const COMMIT_FROM = "wait-booted";

/**
 * A documented test hook: BOXCTL_CRASH_AFTER=STEP makes boxctl kill itself
 * with SIGKILL right after STEP, as a power cut or kill -9 would.
 */
export function crashHook(step: string): void {
  if (process.env.BOXCTL_CRASH_AFTER === step && !runnerConfig.dryRun) {
    process.kill(process.pid, "SIGKILL");
  }
}

export function progress(msg: string): void {
  if (runnerConfig.dryRun) process.stdout.write(`# ${msg}\n`);
  else if (runnerConfig.verbose || process.stderr.isTTY) process.stderr.write(`boxctl: ${msg}\n`);
}

/**
 * How a step list answers a signal. "roll-back": the step in progress
 * ends, then the operation fails like any failed step, so a cutover goes
 * back to the previous instance. "finish": the operation cannot be undone
 * half-way (a confirmed reset, a delete), so it runs to its end.
 */
export type OnStop = "roll-back" | "finish";

/**
 * Runs the steps in order. Ctrl-C and SIGTERM never kill boxctl half-way
 * through a step (see OnStop); a second one exits at once, and the next
 * boxctl command on the machine recovers. A hang-up (an SSH session that
 * dropped) changes nothing: the operation, with its checks and automatic
 * fallback, runs to its end, as a sysadmin who lost the connection needs;
 * only its output has nowhere to go.
 */
export async function apply(
  name: string,
  intent: Intent,
  steps: Step[],
  onStop: OnStop = "roll-back",
): Promise<void> {
  let stopped: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopped) process.exit(EXIT.interrupted);
    stopped = sig;
    const then =
      onStop === "roll-back" ? "stopping after this step" : `finishing the ${intent.verb} first`;
    process.stderr.write(
      `\nboxctl: ${sig === "SIGINT" ? "interrupted" : sig}; ${then} (${sig === "SIGINT" ? "Ctrl-C" : "signal"} again to exit at once; then run: boxctl recover ${name})\n`,
    );
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  if (!process.listeners("SIGHUP").includes(ignoreHangup)) process.on("SIGHUP", ignoreHangup);
  try {
    for (const step of steps) {
      if (stopped && onStop === "roll-back") {
        throw new BoxError(
          `interrupted by ${stopped === "SIGINT" ? "the user" : stopped} before step '${step.name}'`,
          undefined,
          EXIT.interrupted,
        );
      }
      progress(`${name}: ${step.name}: ${step.what}`);
      await step.run();
      intent.step = step.name;
      writeIntent(name, intent, step.durable ?? true);
      crashHook(step.name);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** Stays for the rest of the process, so that a rollback is not cut short either. */
function ignoreHangup(): void {
  for (const out of [process.stdout, process.stderr])
    if (out.listenerCount("error") === 0) out.on("error", () => {});
}
