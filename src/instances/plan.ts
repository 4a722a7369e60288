// Mutating operations are a list of named steps, computed first and then
// run one by one. --dry-run prints each step and the commands it would
// run; a real run records each finished step in intent.json, so that
// recovery knows how far an interrupted operation got.
import { BoxError } from "../errors.ts";
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
 * Runs the steps in order. Ctrl-C does not kill boxctl half-way: the step
 * in progress ends, then the operation fails like any failed step (a
 * cutover goes back to the previous instance). A second Ctrl-C exits at
 * once, and the next boxctl command on the machine recovers.
 */
export async function apply(name: string, intent: Intent, steps: Step[]): Promise<void> {
  let interrupted = false;
  const onInt = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write(
      `\nboxctl: interrupted; stopping after this step (Ctrl-C again to exit at once; then run: boxctl recover ${name})\n`,
    );
  };
  process.on("SIGINT", onInt);
  try {
    for (const step of steps) {
      if (interrupted) throw new BoxError(`interrupted by the user before step '${step.name}'`);
      progress(`${name}: ${step.name}: ${step.what}`);
      await step.run();
      intent.step = step.name;
      writeIntent(name, intent, step.durable ?? true);
      crashHook(step.name);
    }
  } finally {
    process.off("SIGINT", onInt);
  }
}
