// Finds an operation that a crash or a kill interrupted (intent.json left
// behind) and completes it or rolls it back, saying which it did. It runs
// under the machine's lock, first thing in every mutating verb (guard.ts).
// It never deletes or changes an instance's upper dir, except to finish a
// reset or a delete-instance the user asked for.
import { existsSync } from "node:fs";
import { paths } from "../base/paths.ts";
import { releaseCarryView } from "../carry/carry.ts";
import { bootAndVerify } from "../host/boot.ts";
import type { Runner } from "../host/runner.ts";
import { stopMachine } from "../host/systemd.ts";
import { remountTo, removeInstance, unmountIfMounted } from "../overlay/root.ts";
import { clearIntent, type Intent, readIntent } from "../plan/intent.ts";
import { COMMIT_FROM, CUTOVER_STEPS, FALLBACK_STEPS, RESET_STEPS, reached } from "../plan/steps.ts";
import { discardChanges, purgeDiscarded } from "../store/instances.ts";
import {
  commitSwitch,
  describe,
  emptyMachine,
  forgetInstance,
  type Instance,
  instanceOf,
  loadMachine,
  type MachineState,
  registerInstance,
  requireMachine,
  restoreState,
} from "../store/machine.ts";

function say(msg: string): void {
  process.stderr.write(`boxctl: ${msg}\n`);
}

/** Whether an interrupted switch got far enough to be completed rather than undone. */
export function switchCommitted(intent: Intent, m: MachineState | null): boolean {
  if (m?.current === intent.target) return true;
  const steps = intent.verb === "cutover-instance" ? CUTOVER_STEPS : FALLBACK_STEPS;
  return reached(steps, intent.step, COMMIT_FROM);
}

async function recoverSwitch(r: Runner, name: string, intent: Intent, timeoutMs: number) {
  const m = loadMachine(name) ?? emptyMachine(name);
  const root = paths.machineRoot(name);
  const what = `the interrupted ${intent.verb} (pid ${intent.pid}, after step '${intent.step}')`;
  // A carry cut short leaves its read-only view of the old instance mounted;
  // what it wrote is in the new instance only, which a roll-back leaves unused.
  await releaseCarryView(r, name);
  // A crash between creating the new instance's directories and recording
  // them must not leave them unlisted: history shows them, delete-instance removes them.
  if (intent.verb === "cutover-instance" && !instanceOf(m, intent.target) && intent.image) {
    if (existsSync(paths.upper(name, intent.target)))
      registerInstance(r, m, {
        gen: intent.target,
        image: intent.image,
        created: intent.started,
        lastActive: null,
      });
  }
  const target = instanceOf(m, intent.target);
  if (target && switchCommitted(intent, m)) {
    say(`${name}: completing ${what}`);
    await remountTo(r, name, target);
    if (m.current !== intent.target)
      commitSwitch(r, m, target.gen, intent.oldCurrent, {
        verb: intent.verb,
        result: "recovered",
        started: intent.started,
        message: "completed after an interruption",
      });
    clearIntent(r, name);
    await bootAndVerify(r, name, root, timeoutMs);
    say(`${name}: completed; running on ${describe(target)}`);
    return;
  }
  const old: Instance | undefined = instanceOf(m, intent.oldCurrent);
  say(`${name}: rolling back ${what}`);
  await remountTo(r, name, old);
  if (m.instances.length === 0) {
    // Nothing was created: the machine never existed, so no state is left either.
    clearIntent(r, name);
    say(`${name}: rolled back; nothing had been created`);
    return;
  }
  restoreState(
    r,
    m,
    { current: intent.oldCurrent, fallback: intent.oldFallback },
    {
      verb: intent.verb,
      result: "recovered",
      started: intent.started,
      message: "rolled back after an interruption",
    },
  );
  clearIntent(r, name);
  if (old) await bootAndVerify(r, name, root, timeoutMs);
  say(`${name}: rolled back; ${old ? `running on ${describe(old)}` : "no current instance"}`);
}

/** A reset the user confirmed is finished, never undone. */
async function finishReset(r: Runner, name: string, intent: Intent, timeoutMs: number) {
  const m = requireMachine(name);
  const inst = instanceOf(m, intent.target);
  say(`${name}: completing the interrupted reset of instance ${intent.target}`);
  const isCurrent = inst !== undefined && m.current === inst.gen;
  if (inst) {
    if (!reached(RESET_STEPS, intent.step, "discard")) {
      if (isCurrent) {
        await stopMachine(r, name);
        await unmountIfMounted(r, name);
      }
      await discardChanges(r, name, inst);
    } else await purgeDiscarded(r, name, inst);
    if (isCurrent) await remountTo(r, name, inst);
  }
  clearIntent(r, name);
  if (isCurrent && intent.wasRunning)
    await bootAndVerify(r, name, paths.machineRoot(name), timeoutMs);
}

/** A delete the user asked for is finished, never undone. */
async function finishDelete(r: Runner, name: string, intent: Intent) {
  say(`${name}: completing the interrupted delete-instance of instance ${intent.target}`);
  const m = requireMachine(name);
  if (m.current !== intent.target) {
    if (instanceOf(m, intent.target)) forgetInstance(r, m, intent.target);
    await removeInstance(r, name, intent.target);
  }
  clearIntent(r, name);
}

export async function recoverInterrupted(r: Runner, name: string, timeoutMs: number) {
  const intent = readIntent(name);
  if (!intent) return;
  if (r.dryRun) {
    r.note(
      `${name}: would first complete or roll back the interrupted ${intent.verb} (pid ${intent.pid})`,
    );
    return;
  }
  if (intent.verb === "cutover-instance" || intent.verb === "fallback-instance")
    return recoverSwitch(r, name, intent, timeoutMs);
  if (intent.verb === "reset") return finishReset(r, name, intent, timeoutMs);
  return finishDelete(r, name, intent);
}

/** A one-line warning for read verbs, which never recover themselves. */
export function pendingWarning(name: string): string | null {
  const intent = readIntent(name);
  return intent
    ? `${name}: an interrupted ${intent.verb} (pid ${intent.pid}) is pending; the next mutating command, e.g. boxctl recover ${name}, completes or rolls it back`
    : null;
}
