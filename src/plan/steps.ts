// The names of every operation's steps, in order, defined once: the plans
// are typed by them, recovery decides by them, --dry-run prints them and
// the crash tests iterate over them (BOXCTL_CRASH_AFTER=STEP).

export const CUTOVER_STEPS = [
  "intent",
  "create-instance",
  // Before the carry: systemd's reload, which this step starts, runs
  // beside the carry, and remount waits for it.
  "switch-unit",
  // Writes only the new instance's upper dir, while the container still runs.
  "carry",
  "remount",
  // Only when the cutover carries: the restart split in two, so that what
  // the container changed after the carry step is carried too.
  "stop",
  "carry-final",
  "restart",
  "wait-booted",
  "commit",
] as const;
export type SwitchStep = (typeof CUTOVER_STEPS)[number];

/** A fallback is a cutover to an instance that already exists, which it never carries into. */
const CARRY_ONLY: readonly SwitchStep[] = ["create-instance", "carry", "stop", "carry-final"];
export const FALLBACK_STEPS = CUTOVER_STEPS.filter(
  (s): s is Exclude<SwitchStep, "create-instance" | "carry" | "stop" | "carry-final"> =>
    !CARRY_ONLY.includes(s),
);

/** From this step on an interrupted switch is completed; before it, rolled back. */
export const COMMIT_FROM: SwitchStep = "wait-booted";

export const RESET_STEPS = ["intent", "stop", "unmount", "discard", "mount", "start"] as const;
export type ResetStep = (typeof RESET_STEPS)[number];

export const DELETE_STEPS = ["intent", "forget", "remove"] as const;
export type DeleteStep = (typeof DELETE_STEPS)[number];

/**
 * delete-machine: each step is idempotent and none is undone, so recovery
 * runs them all again. The record goes only after the host no longer
 * starts, mounts or names the machine, and before its data.
 */
export const DELETE_MACHINE_STEPS = [
  "intent",
  "disable",
  "unmount",
  "unwire",
  "forget",
  "remove",
] as const;
export type DeleteMachineStep = (typeof DELETE_MACHINE_STEPS)[number];

/** Whether step came at or after from in the list of steps; false for a step not in it. */
export function reached(steps: readonly string[], step: string, from: string): boolean {
  const i = steps.indexOf(step);
  return i >= 0 && i >= steps.indexOf(from);
}
