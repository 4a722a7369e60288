// cutover-instance and fallback-instance: switch a machine's root to
// another instance, restart the container on it and verify it; on any
// failure go back to the instance that was current before, on our own.
import { BoxError, EXIT, printError } from "../base/errors.ts";
import { checkName, checkNewMachineName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import type { CarryReport } from "../carry/carry.ts";
import { bootAndVerify } from "../host/boot.ts";
import { NoSpaceError } from "../host/files.ts";
import { withImageStoreLock } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning } from "../host/systemd.ts";
import { withoutQuote } from "../host/unit-log.ts";
import { refuseLinkedSettings } from "../overlay/linked-settings.ts";
import { basesInSettings } from "../overlay/ranges.ts";
import { remountTo } from "../overlay/root.ts";
import { pickBase } from "../overlay/views.ts";
import { apply } from "../plan/apply.ts";
import { clearIntent, type Intent, newIntent, readIntent } from "../plan/intent.ts";
import { requireImage } from "../store/images.ts";
import { checkMountPointFree, nextGen, refuseOverlayStore } from "../store/instances.ts";
import {
  claimBase,
  describe,
  emptyMachine,
  type Instance,
  instanceOf,
  instanceRef,
  loadMachine,
  type MachineState,
  requireMachine,
  restoreState,
  takenBases,
} from "../store/machine.ts";
import { guarded } from "./guard.ts";
import {
  log,
  type SwitchOptions,
  type SwitchResult,
  switchPlan,
  type Verb,
} from "./switch-plan.ts";
import {
  refuseGoneImages,
  refuseMountedCarry,
  refuseShadowedSettings,
  refuseTakenName,
  refuseUnbootable,
} from "./switch-refusals.ts";

export type { SwitchOptions, SwitchResult };

async function switchTo(
  r: Runner,
  verb: Verb,
  m: MachineState,
  target: Instance,
  isNew: boolean,
  opts: SwitchOptions,
): Promise<SwitchResult> {
  const name = m.name;
  const old = instanceOf(m, m.current);
  const intent = newIntent(verb, m, target, await isRunning(r, name));
  await log(
    r,
    name,
    intent,
    target,
    "started",
    `${verb} to instance ${target.gen} (${target.image}) started, from ${describe(old)}`,
  );
  let report: CarryReport | undefined;
  try {
    await apply(
      r,
      switchPlan(m, intent, target, isNew, opts, (c) => {
        report = c;
      }),
    );
  } catch (e) {
    // A dry run changed nothing, so there is nothing to go back to.
    if (r.dryRun) throw e;
    const why = e instanceof BoxError ? e.message : String(e);
    // The intent never reached the disk (a full store, say): nothing changed.
    if (readIntent(name) === null) {
      await log(r, name, intent, old, "failed", `${verb} failed before any change: ${why}`, 3);
      throw new BoxError(
        `${verb} ${name} failed before any change: ${why}${old ? `; ${name} is on ${describe(old)} as before` : ""}`,
        e instanceof BoxError ? e.hint : undefined,
        e instanceof BoxError ? e.exitCode : EXIT.failed,
      );
    }
    printError(new BoxError(`${verb} ${name}: ${why}`, e instanceof BoxError ? e.hint : undefined));
    process.stderr.write(`boxctl: falling back to ${describe(old)}\n`);
    // For --json: what failed, and where the machine stands now.
    const where = (result: string, running: boolean) => ({
      machine: name,
      changed: true,
      result,
      step: intent.step,
      // What went wrong first; error is where that left the machine.
      cause: { message: why, hint: e instanceof BoxError ? (e.hint ?? null) : null },
      target: instanceRef(target),
      current: instanceRef(old),
      fallback: instanceRef(instanceOf(m, intent.oldFallback)),
      running,
    });
    try {
      const brief = withoutQuote(why);
      await rollBack(r, m, intent, old, `failed after step '${intent.step}': ${brief}`, opts);
      await log(
        r,
        name,
        intent,
        old,
        "rolled-back",
        `automatic fallback to ${describe(old)} after ${verb} failed after step '${intent.step}': ${brief}`,
        4,
      );
    } catch (e2) {
      await log(
        r,
        name,
        intent,
        old,
        "rollback-failed",
        `going back to ${describe(old)} failed: ${e2 instanceof Error ? e2.message : String(e2)}`,
        3,
      );
      // Either intent.json stays, so the next boxctl command on NAME tries
      // again, or the way back got as far as the boot: the old instance is
      // mounted and current again, and only starting it is left (a cause
      // outside either instance, such as a Bind= source gone, fails both).
      const settled = old !== undefined && readIntent(name) === null;
      throw new BoxError(
        // The first failure's journal lines were printed just above.
        `${verb} ${name} failed (${withoutQuote(why)}), and going back to ${describe(old)} failed too: ${e2 instanceof BoxError ? e2.message : String(e2)}`,
        settled
          ? `${name} is back on ${describe(old)} but did not start; fix the cause, then: boxctl start ${name}`
          : `fix the cause, then run: boxctl recover ${name}`,
        EXIT.failed,
        where("failed", false),
      );
    }
    const interrupted = e instanceof BoxError && e.exitCode === EXIT.interrupted;
    throw new BoxError(
      `${verb} ${name} ${interrupted ? "was interrupted" : "failed"}; ${old ? `${name} is running on ${describe(old)} again` : `${name} is left stopped with no current instance`}`,
      `instance ${target.gen} is kept for inspection: boxctl diff ${name} --instance ${target.gen}; journalctl -u systemd-nspawn@${name}`,
      interrupted ? EXIT.interrupted : EXIT.failed,
      where(interrupted ? "interrupted" : "rolled-back", old !== undefined),
    );
  }
  clearIntent(r, name);
  return {
    machine: name,
    verb,
    current: target,
    fallback: old,
    ...(report ? { carry: report } : {}),
  };
}

/** The automatic fallback: back to the instance that was current before, started. */
async function rollBack(
  r: Runner,
  m: MachineState,
  intent: Intent,
  old: Instance | undefined,
  message: string,
  opts: SwitchOptions,
): Promise<void> {
  await remountTo(r, m.name, old);
  try {
    restoreState(
      r,
      m,
      { current: intent.oldCurrent, fallback: intent.oldFallback },
      { verb: intent.verb, result: "rolled-back", started: intent.started, message },
    );
  } catch (e) {
    // Only the commit step names the new instance in machine.json, and a
    // switch that goes back did not commit: the record on disk names the
    // old instance still. A full store costs only this note of the failure.
    if (!(e instanceof NoSpaceError)) throw e;
    process.stderr.write(`boxctl: ${e.message}; ${m.name}'s record keeps its last operation\n`);
  }
  clearIntent(r, m.name);
  // The way back waits as long as the user allowed the way forward.
  if (old) await bootAndVerify(r, m.name, paths.machineRoot(m.name), opts.timeoutMs);
}

export async function cutover(r: Runner, name: string, image: string, opts: SwitchOptions) {
  checkName("machine", name);
  checkName("image", image);
  // Only for a new machine: one made by an older boxctl keeps its name for delete-machine.
  if (!loadMachine(name)) checkNewMachineName(name);
  return guarded(r, name, "cutover-instance", opts, () =>
    withImageStoreLock(r, "cutover-instance", { shared: true, wait: true }, async () => {
      requireImage(image);
      refuseUnbootable(image);
      refuseOverlayStore();
      const existing = loadMachine(name);
      if (existing) refuseGoneImages("cutover-instance", existing, undefined);
      else {
        checkMountPointFree(name);
        await refuseTakenName(r, name);
        refuseShadowedSettings(name);
      }
      const m = existing ?? emptyMachine(name);
      const gen = nextGen(existing, name);
      // A new instance gets the machine's uid range (allocated once, kept:
      // an upper dir is tied to its range) unless private users are off.
      if (opts.privateUsers !== undefined) m.privateUsers = opts.privateUsers;
      const uidBase =
        (m.privateUsers ?? true)
          ? (m.uidBase ??
            (await pickBase(r, [...takenBases(), ...basesInSettings(name)], (b) =>
              claimBase(r, name, b),
            )))
          : null;
      if (uidBase !== null) m.uidBase = uidBase;
      const created = new Date().toISOString();
      const inst: Instance = { gen, image, created, lastActive: null, uidBase };
      await refuseMountedCarry(r, m, opts);
      refuseLinkedSettings(name, inst);
      return switchTo(r, "cutover-instance", m, inst, true, opts);
    }),
  );
}

export async function fallback(
  r: Runner,
  name: string,
  opts: SwitchOptions,
): Promise<SwitchResult> {
  checkName("machine", name);
  return guarded(r, name, "fallback-instance", opts, async () => {
    const m = requireMachine(name);
    const target = instanceOf(m, m.fallback);
    if (!target) {
      throw new BoxError(
        `${name} has no fallback instance`,
        `a fallback exists after a cutover; see boxctl history ${name}`,
      );
    }
    refuseGoneImages("fallback-instance", m, target);
    refuseLinkedSettings(name, target);
    return switchTo(r, "fallback-instance", m, target, false, opts);
  });
}
