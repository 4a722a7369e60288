// Finds an operation that a crash or a kill interrupted (intent.json left
// behind) and completes it or rolls it back, saying which it did. It runs
// under the machine's lock, first thing in every mutating verb. It never
// deletes or changes an instance's upper dir, except to finish a reset or
// a delete-instance the user asked for.
import { existsSync } from "node:fs";
import {
  emptyMachine,
  type Instance,
  instanceOf,
  loadMachine,
  type MachineState,
} from "../machines/state.ts";
import { paths } from "../paths.ts";
import { runnerConfig } from "../runner.ts";
import { finishDelete } from "./delete.ts";
import { clearIntent, type Intent, readIntent } from "./journal.ts";
import { COMMIT_FROM, CUTOVER_STEPS, FALLBACK_STEPS } from "./plan.ts";
import { finishReset } from "./reset.ts";
import { registerInstance } from "./store.ts";
import { bootAndVerify, commitSwitch, describe, remountTo, restoreState } from "./switch.ts";

function say(msg: string): void {
  process.stderr.write(`boxctl: ${msg}\n`);
}

/** Whether an interrupted switch got far enough to be completed rather than undone. */
export function switchCommitted(intent: Intent, m: MachineState | null): boolean {
  if (m?.current === intent.target) return true;
  const steps: readonly string[] =
    intent.verb === "cutover-instance" ? CUTOVER_STEPS : FALLBACK_STEPS;
  return steps.indexOf(intent.step) >= steps.indexOf(COMMIT_FROM);
}

async function recoverSwitch(name: string, intent: Intent): Promise<void> {
  const m = loadMachine(name) ?? emptyMachine(name);
  const what = `the interrupted ${intent.verb} (pid ${intent.pid}, after step '${intent.step}')`;
  // A crash between creating the new instance's directories and recording
  // them must not leave them unlisted: history shows them, delete-instance removes them.
  if (intent.verb === "cutover-instance" && !instanceOf(m, intent.target) && intent.image) {
    if (existsSync(paths.upper(name, intent.target)))
      registerInstance(m, {
        gen: intent.target,
        image: intent.image,
        created: intent.started,
        lastActive: null,
      });
  }
  const target = instanceOf(m, intent.target);
  if (target && switchCommitted(intent, m)) {
    say(`${name}: completing ${what}`);
    await remountTo(name, target);
    if (m.current !== intent.target)
      commitSwitch(
        m,
        target.gen,
        intent.oldCurrent,
        intent.verb,
        "recovered",
        intent.started,
        `completed after an interruption`,
      );
    clearIntent(name);
    await bootAndVerify(name, 90_000);
    say(`${name}: completed; running on ${describe(target)}`);
    return;
  }
  const old: Instance | undefined = instanceOf(m, intent.oldCurrent);
  say(`${name}: rolling back ${what}`);
  await remountTo(name, old);
  if (m.instances.length === 0) {
    // Nothing was created: the machine never existed, so no state is left either.
    clearIntent(name);
    say(`${name}: rolled back; nothing had been created`);
    return;
  }
  restoreState(
    m,
    intent.oldCurrent,
    intent.oldFallback,
    intent.verb,
    "recovered",
    intent.started,
    "rolled back after an interruption",
  );
  clearIntent(name);
  if (old) await bootAndVerify(name, 90_000);
  say(`${name}: rolled back; ${old ? `running on ${describe(old)}` : "no current instance"}`);
}

export async function recoverInterrupted(name: string): Promise<void> {
  const intent = readIntent(name);
  if (!intent) return;
  if (runnerConfig.dryRun) {
    process.stdout.write(
      `# ${name}: would first complete or roll back the interrupted ${intent.verb} (pid ${intent.pid})\n`,
    );
    return;
  }
  if (intent.verb === "cutover-instance" || intent.verb === "fallback-instance")
    return recoverSwitch(name, intent);
  if (intent.verb === "reset") return finishReset(name, intent);
  return finishDelete(name, intent);
}

/** A one-line warning for read verbs, which never recover themselves. */
export function pendingWarning(name: string): string | null {
  const intent = readIntent(name);
  return intent
    ? `${name}: an interrupted ${intent.verb} (pid ${intent.pid}) is pending; the next mutating command, e.g. boxctl recover ${name}, completes or rolls it back`
    : null;
}
