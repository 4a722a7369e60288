// Finds an operation that a crash or a kill interrupted (intent.json left
// behind) and completes it or rolls it back, saying which it did. It runs
// under the machine's lock, first thing in every mutating verb (guard.ts).
// It never deletes or changes an instance's upper dir, except to finish a
// reset or a delete-instance the user asked for.
import { existsSync } from "node:fs";
import { paths } from "../base/paths.ts";
import { releaseCarryView } from "../carry/carry.ts";
import { bootAndVerify } from "../host/boot.ts";
import { journal } from "../host/journal.ts";
import type { Runner } from "../host/runner.ts";
import { isEnabled, queueStart, queueStop, stopMachine } from "../host/systemd.ts";
import { mountedUpper, remountTo, removeInstance, unmountIfMounted } from "../overlay/root.ts";
import { viewUnitName } from "../overlay/views.ts";
import {
  machineUnits,
  rootUnitsMatch,
  upperAtNextBoot,
  writeRootUnits,
} from "../overlay/wiring.ts";
import { clearIntent, type Intent, readIntent } from "../plan/intent.ts";
import { COMMIT_FROM, CUTOVER_STEPS, FALLBACK_STEPS, RESET_STEPS, reached } from "../plan/steps.ts";
import { discardChanges, purgeDiscarded, removeMachineDir } from "../store/instances.ts";
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
import { deleteMachinePlan, machineGens } from "./delete-machine-plan.ts";

function say(msg: string): void {
  process.stderr.write(`boxctl: ${msg}\n`);
}

/** Whether an interrupted switch got far enough to be completed rather than undone. */
export function switchCommitted(intent: Intent, m: MachineState | null): boolean {
  if (m?.current === intent.target) return true;
  const steps = intent.verb === "cutover-instance" ? CUTOVER_STEPS : FALLBACK_STEPS;
  return reached(steps, intent.step, COMMIT_FROM);
}

/** How an interrupted switch is settled: completed onto target, or rolled back to old. */
export interface SwitchDecision {
  m: MachineState;
  complete: boolean;
  /** The instance the machine ends on: the target, or the old current (none for a first cutover). */
  on: Instance | undefined;
  what: string;
}

/** Reads the record and decides; the one decision both recoveries (now and at boot) take. */
export function decideSwitch(r: Runner, name: string, intent: Intent): SwitchDecision {
  const m = loadMachine(name) ?? emptyMachine(name);
  const what = `the interrupted ${intent.verb} (pid ${intent.pid}, after step '${intent.step}')`;
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
  if (target && switchCommitted(intent, m)) return { m, complete: true, on: target, what };
  return { m, complete: false, on: instanceOf(m, intent.oldCurrent), what };
}

/** Writes the decision into machine.json and removes intent.json; the machine's units are the caller's. */
export async function recordDecision(
  r: Runner,
  name: string,
  intent: Intent,
  d: SwitchDecision,
  atBoot: boolean,
): Promise<void> {
  const { m, on } = d;
  if (d.complete && on && m.current !== on.gen)
    commitSwitch(r, m, on.gen, intent.oldCurrent, {
      verb: intent.verb,
      result: "recovered",
      started: intent.started,
      message: `completed after an interruption${atBoot ? ", at boot" : ""}`,
    });
  // A first cutover rolled back: the machine never existed, so no state is left either.
  if (!d.complete && m.instances.length > 0)
    restoreState(
      r,
      m,
      { current: intent.oldCurrent, fallback: intent.oldFallback },
      {
        verb: intent.verb,
        result: "recovered",
        started: intent.started,
        message: `rolled back after an interruption${atBoot ? ", at boot" : ""}`,
      },
    );
  clearIntent(r, name);
  await journal(r, {
    machine: name,
    operation: "recover",
    instance: on?.gen ?? null,
    image: on?.image ?? null,
    result: d.complete ? "completed" : "rolled-back",
    message: `${d.complete ? "completed" : "rolled back"} ${d.what}${atBoot ? " at boot" : ""}; ${on ? `${describe(on)} is current` : "no current instance"}`,
    extra: { INTERRUPTED: intent.verb, STEP: intent.step, AT_BOOT: atBoot ? "yes" : "no" },
    priority: 4,
  });
}

/**
 * At boot, before the machine's mount (boxctl-recover.service): nothing of
 * it is mounted or running, and starting or stopping its units would wait
 * on, or cancel, the boot's own jobs. So recovery only puts the files
 * right (the /etc mount unit, the record) and systemd then mounts and
 * starts the machine as it does every boot, if it is enabled. A daemon-
 * reload is needed only when the /etc unit changes: a switch completed
 * after its check but before its commit step.
 */
const filesOnly = (r: Runner, name: string, atBoot: boolean) =>
  atBoot && mountedUpper(r, name) === null;

async function recoverSwitch(
  r: Runner,
  name: string,
  intent: Intent,
  timeoutMs: number,
  atBoot: boolean,
) {
  // A carry cut short leaves its read-only view of the old instance mounted;
  // what it wrote is in the new instance only, which a roll-back leaves unused.
  await releaseCarryView(r, name);
  const d = decideSwitch(r, name, intent);
  const root = paths.machineRoot(name);
  say(
    `${name}: ${d.complete ? "completing" : "rolling back"} ${d.what}${atBoot ? " at boot" : ""}`,
  );
  const onlyFiles = filesOnly(r, name, atBoot);
  if (!onlyFiles) await remountTo(r, name, d.on);
  else if (!rootUnitsMatch(name, d.on)) {
    const planned = upperAtNextBoot(name);
    await writeRootUnits(r, name, d.on);
    // The boot's jobs were planned with the unit as it was: a completed
    // switch's mount now needs the new instance's idmapped view, which no
    // job starts. Queued, the mount's job (ordered after it) waits for it.
    if (d.on?.uidBase && planned !== paths.upper(name, d.on.gen))
      await queueStart(r, viewUnitName(name, d.on.gen));
  }
  await recordDecision(r, name, intent, d, atBoot);
  if (d.on && !onlyFiles) await bootAndVerify(r, name, root, timeoutMs);
  say(
    `${name}: ${d.complete ? "completed" : "rolled back"}; ${d.on ? `running on ${describe(d.on)}` : d.m.instances.length ? "no current instance" : "nothing had been created"}`,
  );
}

/** A reset the user confirmed is finished, never undone. */
async function finishReset(
  r: Runner,
  name: string,
  intent: Intent,
  timeoutMs: number,
  atBoot: boolean,
) {
  const m = requireMachine(name);
  const inst = instanceOf(m, intent.target);
  say(`${name}: completing the interrupted reset of instance ${intent.target}`);
  const isCurrent = inst !== undefined && m.current === inst.gen;
  // At boot nothing is mounted yet and systemd mounts and starts it after us (see filesOnly).
  const onlyFiles = filesOnly(r, name, atBoot);
  if (inst) {
    if (!reached(RESET_STEPS, intent.step, "discard")) {
      if (isCurrent && !onlyFiles) {
        await stopMachine(r, name);
        await unmountIfMounted(r, name);
      }
      await discardChanges(r, name, inst);
    } else await purgeDiscarded(r, name, inst);
    if (isCurrent && !onlyFiles) await remountTo(r, name, inst);
  }
  clearIntent(r, name);
  await logFinished(r, name, intent, atBoot);
  if (isCurrent && intent.wasRunning && !onlyFiles)
    await bootAndVerify(r, name, paths.machineRoot(name), timeoutMs);
}

/** A delete the user asked for is finished, never undone. */
async function finishDelete(r: Runner, name: string, intent: Intent, atBoot: boolean) {
  say(`${name}: completing the interrupted delete-instance of instance ${intent.target}`);
  const m = requireMachine(name);
  if (m.current !== intent.target) {
    if (instanceOf(m, intent.target)) forgetInstance(r, m, intent.target);
    await removeInstance(r, name, intent.target);
  }
  clearIntent(r, name);
  await logFinished(r, name, intent, atBoot);
}

/**
 * A machine the user asked to delete is deleted: every step again, each
 * idempotent, the machine stopped first if something started it since.
 * At boot nothing of it is mounted yet, and nothing is waited for (see
 * filesOnly): its units' start jobs, if the boot queued them, are only
 * replaced by stop jobs.
 */
async function finishDeleteMachine(r: Runner, name: string, intent: Intent, atBoot: boolean) {
  say(`${name}: completing the interrupted delete-machine`);
  const facts = { gens: machineGens(name, loadMachine(name)), enabled: await isEnabled(r, name) };
  if (!filesOnly(r, name, atBoot)) await stopMachine(r, name);
  // The boot has queued an enabled machine's start already: replaced by a
  // stop, it does not fail once its units are gone.
  else await queueStop(r, machineUnits(name, facts.gens));
  for (const step of deleteMachinePlan(name, intent, facts).steps) await step.run(r);
  clearIntent(r, name);
  removeMachineDir(r, name);
  await journal(r, {
    machine: name,
    operation: "recover",
    result: "completed",
    message: `completed the interrupted delete-machine${atBoot ? " at boot" : ""}`,
    extra: { INTERRUPTED: intent.verb, STEP: intent.step, AT_BOOT: atBoot ? "yes" : "no" },
    priority: 4,
  });
}

/** atBoot: run by boxctl-recover.service before the machine is mounted (recover --boot). */
export async function recoverInterrupted(
  r: Runner,
  name: string,
  timeoutMs: number,
  atBoot = false,
) {
  const intent = readIntent(name);
  if (!intent) return;
  if (r.dryRun) {
    r.note(
      `${name}: would first complete or roll back the interrupted ${intent.verb} (pid ${intent.pid})`,
    );
    return;
  }
  if (intent.verb === "cutover-instance" || intent.verb === "fallback-instance")
    return recoverSwitch(r, name, intent, timeoutMs, atBoot);
  if (intent.verb === "reset") return finishReset(r, name, intent, timeoutMs, atBoot);
  if (intent.verb === "delete-machine") return finishDeleteMachine(r, name, intent, atBoot);
  return finishDelete(r, name, intent, atBoot);
}

/** A one-line warning for read verbs, which never recover themselves. */
export function pendingWarning(name: string): string | null {
  const intent = readIntent(name);
  return intent
    ? `${name}: an interrupted ${intent.verb} (pid ${intent.pid}) is pending; the next mutating command, e.g. boxctl recover ${name}, completes or rolls it back`
    : null;
}

/** The journal entry of a reset or delete-instance that recovery finished. */
function logFinished(r: Runner, name: string, intent: Intent, atBoot: boolean): Promise<void> {
  return journal(r, {
    machine: name,
    operation: "recover",
    instance: intent.target,
    image: intent.image ?? null,
    result: "completed",
    message: `completed the interrupted ${intent.verb} of instance ${intent.target}${atBoot ? " at boot" : ""}`,
    extra: { INTERRUPTED: intent.verb, STEP: intent.step, AT_BOOT: atBoot ? "yes" : "no" },
    priority: 4,
  });
}
