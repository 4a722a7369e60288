// cutover-instance and fallback-instance: switch a machine's root to
// another instance, restart the container on it and verify it; on any
// failure go back to the instance that was current before, on our own.
import { readFileSync } from "node:fs";
import { unbootable } from "../archive/layout.ts";
import { BoxError, EXIT, printError } from "../base/errors.ts";
import { checkName, checkNewMachineName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import type { CarryReport } from "../carry/carry.ts";
import { mountedPath, policyOf } from "../carry/policy.ts";
import { bootAndVerify } from "../host/boot.ts";
import { NoSpaceError } from "../host/files.ts";
import { withImageStoreLock } from "../host/lock.ts";
import { mountPoints } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import { isRunning, machinedKnows, machineLeader } from "../host/systemd.ts";
import { withoutQuote } from "../host/unit-log.ts";
import { remountTo } from "../overlay/root.ts";
import { pickBase } from "../overlay/views.ts";
import { apply } from "../plan/apply.ts";
import { clearIntent, type Intent, newIntent, readIntent } from "../plan/intent.ts";
import { requireImage } from "../store/images.ts";
import { checkMountPointFree, nextGen, refuseOverlayStore } from "../store/instances.ts";
import {
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
import { imageGone } from "./drift.ts";
import { guarded } from "./guard.ts";

import {
  log,
  type SwitchOptions,
  type SwitchResult,
  switchPlan,
  type Verb,
} from "./switch-plan.ts";

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
      }
      const m = existing ?? emptyMachine(name);
      const gen = nextGen(existing, name);
      // A new instance gets the machine's uid range (allocated once, kept:
      // an upper dir is tied to its range) unless private users are off.
      if (opts.privateUsers !== undefined) m.privateUsers = opts.privateUsers;
      const uidBase =
        (m.privateUsers ?? true) ? (m.uidBase ?? (await pickBase(r, takenBases()))) : null;
      if (uidBase !== null) m.uidBase = uidBase;
      const created = new Date().toISOString();
      const inst: Instance = { gen, image, created, lastActive: null, uidBase };
      await refuseMountedCarry(r, m, opts);
      return switchTo(r, "cutover-instance", m, inst, true, opts);
    }),
  );
}

/**
 * A new machine's name must be free in machined too, not only at its mount
 * point: a container of that name that runs from elsewhere (systemd-nspawn
 * -D DIR -M NAME, a .raw image) makes systemd-nspawn@NAME fail ("Machine
 * already exists") once boxctl has mounted and recorded the new machine;
 * an image of that name elsewhere (/etc/machines, NAME.raw) is another
 * container for machinectl under the same name.
 */
async function refuseTakenName(r: Runner, name: string): Promise<void> {
  const { unit, image } = await machinedKnows(r, name);
  if (unit !== null)
    throw new BoxError(
      `a machine named ${name} is already running (${unit}), and boxctl does not manage it`,
      `pick another machine name, or stop that one first (machinectl poweroff ${name}; machinectl terminate ${name} if it does not run systemd)`,
    );
  if (image !== null)
    throw new BoxError(
      `an image named ${name} already exists at ${image} (machinectl list-images), and boxctl does not manage it`,
      `pick another machine name, or rename that image (machinectl rename ${name} ${name}-old)`,
    );
}

/** An image that cannot boot as a boxctl container is refused before its cutover stops anything. */
function refuseUnbootable(image: string): void {
  const no = unbootable(paths.imageRoot(image));
  if (no)
    throw new BoxError(`image '${image}' cannot boot as a boxctl container: ${no.why}`, no.fix);
}

/** A carried path that is a mount point inside the running container is refused before anything changes. */
async function refuseMountedCarry(r: Runner, m: MachineState, opts: SwitchOptions): Promise<void> {
  const policy = opts.carry ?? policyOf(m.carry);
  if (policy.paths.length === 0 || m.current === null) return;
  const leader = await machineLeader(r, m.name);
  if (leader === null) return;
  let mounts: string[] = [];
  try {
    mounts = mountPoints(readFileSync(`/proc/${leader}/mountinfo`, "utf8"));
  } catch {
    return; // The container stopped meanwhile: nothing is mounted in it.
  }
  const hit = mountedPath(policy, mounts);
  if (hit)
    throw new BoxError(
      `cannot carry ${hit.path}: ${hit.mount} is a mount point inside ${m.name}, and boxctl carries the instance's own files, not what is mounted over them`,
      `drop it from the policy (boxctl set-carry ${m.name} SPEC, or --carry) and keep it with Bind= in /etc/systemd/nspawn/${m.name}.nspawn`,
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
    return switchTo(r, "fallback-instance", m, target, false, opts);
  });
}

/**
 * A switch whose target or way back lies on an image deleted from the store
 * (by hand: delete-image refuses an image in use) is refused before anything
 * stops. Without its image an instance boots no OS; the way back could not
 * start; a cutover carries from the current instance's whole tree; and with
 * private users every mount of the root still maps the current instance's
 * image until a switch has completed.
 */
function refuseGoneImages(verb: Verb, m: MachineState, target: Instance | undefined): void {
  const name = m.name;
  const cur = instanceOf(m, m.current);
  const stage = (i: Instance) =>
    `stage it again under its name from the archive it came from (boxctl stage-image FILE --name ${i.image}), then run this again`;
  const targetGone = target ? imageGone(name, target) : null;
  if (target && targetGone) throw new BoxError(`cannot ${verb}: ${targetGone}`, stage(target));
  const curGone = cur ? imageGone(name, cur) : null;
  if (!cur || !curGone) return;
  if (verb === "cutover-instance")
    throw new BoxError(
      `cannot cutover-instance: ${curGone}, and a cutover carries from that instance and goes back to it if the new one fails`,
      stage(cur),
    );
  if (cur.uidBase)
    throw new BoxError(
      `cannot fallback-instance: ${curGone}, and with private users every mount of ${name}'s root maps that image until a switch away from it completes`,
      stage(cur),
    );
}
