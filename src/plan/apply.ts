// A mutating operation is a Plan: data computed from the machine's state
// before anything changes (its steps, each with a name from steps.ts, a
// description and what it runs), then applied here one step at a time.
// A real run records each finished step in intent.json, so that recovery
// knows how far an interrupted operation got; a dry run prints each step
// and the commands it would run, through the printing runner.
import { BoxError, EXIT } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { makeDir } from "../host/files.ts";
import type { Runner } from "../host/runner.ts";
import { type Intent, writeIntent } from "./intent.ts";

export interface Step<N extends string = string> {
  name: N;
  /** What the step does, for --dry-run and progress lines. */
  what: string;
  run: (r: Runner) => Promise<void>;
  /**
   * Whether recovery's decision depends on this step being on disk after a
   * power cut. Steps in the downtime window that recovery handles by
   * looking at the mount itself skip the fsyncs.
   */
  durable?: boolean;
}

/**
 * How a plan answers a signal. "roll-back": the step in progress ends,
 * then the operation fails like any failed step, so a cutover goes back to
 * the previous instance. "finish": the operation cannot be undone half-way
 * (a confirmed reset, a delete), so it runs to its end.
 */
export type OnStop = "roll-back" | "finish";

export interface Plan<N extends string = string> {
  machine: string;
  intent: Intent;
  steps: Step<N>[];
  onStop: OnStop;
}

/** The first step of every plan: the intent on disk, before any change. */
export const intentStep = <N extends string>(name: N): Step<N> => ({
  name,
  what: "record what this operation will do",
  run: async () => {},
});

/**
 * A documented test hook: BOXCTL_CRASH_AFTER=STEP makes boxctl kill itself
 * with SIGKILL right after STEP, as a power cut or kill -9 would.
 */
function crashHook(step: string): void {
  if (process.env.BOXCTL_CRASH_AFTER === step) process.kill(process.pid, "SIGKILL");
}

/**
 * Runs the plan's steps in order. Ctrl-C and SIGTERM never kill boxctl
 * half-way through a step (see OnStop); a second one exits at once, and
 * the next boxctl command on the machine recovers. A hang-up (an SSH
 * session that dropped) changes nothing: the operation, with its checks and
 * automatic fallback, runs to its end, as a sysadmin who lost the
 * connection needs; only its output has nowhere to go.
 */
export async function apply(r: Runner, plan: Plan): Promise<void> {
  const { machine: name, intent, onStop } = plan;
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
    if (!r.dryRun) {
      makeDir(r, paths.machine(name), 0o700);
      writeIntent(r, name, intent);
    }
    for (const step of plan.steps) {
      if (stopped && onStop === "roll-back") {
        throw new BoxError(
          `interrupted by ${stopped === "SIGINT" ? "the user" : stopped} before step '${step.name}'`,
          undefined,
          EXIT.interrupted,
        );
      }
      r.note(`${name}: ${step.name}: ${step.what}`);
      await step.run(r);
      if (r.dryRun) continue;
      intent.step = step.name;
      writeIntent(r, name, intent, step.durable ?? true);
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
