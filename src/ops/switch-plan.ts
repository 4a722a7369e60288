// The plan of a switch: the named steps that take a machine from its
// current instance to another, new (cutover) or existing (fallback), each
// with what it runs. switch.ts applies it and goes back on a failure.
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { type CarryReport, carry } from "../carry/carry.ts";
import { carryAgain, carryFingerprint } from "../carry/final.ts";
import { carriesAnything, formatCarry, policyOf } from "../carry/policy.ts";
import { previewCarry, previewLines } from "../carry/preview.ts";
import { verifyBooted } from "../host/boot.ts";
import { journal } from "../host/journal.ts";
import type { Runner } from "../host/runner.ts";
import {
  mountUnitName,
  nspawnUnit,
  resetFailed,
  startMachine,
  stopMachine,
} from "../host/systemd.ts";
import { remountLive, unmountIfMounted } from "../overlay/root.ts";
import { stageRootUnits, writeRootUnits } from "../overlay/wiring.ts";
import { intentStep, type Plan, type Step } from "../plan/apply.ts";
import type { Intent } from "../plan/intent.ts";
import type { SwitchStep } from "../plan/steps.ts";
import { createInstanceDirs, ensureMountPoint } from "../store/instances.ts";
import {
  type CarryPolicy,
  commitSwitch,
  type Instance,
  instanceOf,
  type MachineState,
  registerInstance,
} from "../store/machine.ts";

export interface SwitchOptions {
  wait?: boolean;
  timeoutMs: number;
  check?: string;
  /** cutover-instance --private-users: for this and the machine's next cutovers. */
  privateUsers?: boolean;
  /** cutover-instance --carry: this cutover's policy instead of the machine's. */
  carry?: CarryPolicy;
}

export type Verb = "cutover-instance" | "fallback-instance";

/** What a switch achieved; the CLI says it (or nothing, after a dry run). */
export interface SwitchResult {
  machine: string;
  verb: Verb;
  current: Instance;
  fallback: Instance | undefined;
  /** What the cutover carried (cutover-instance only). */
  carry?: CarryReport;
}

/** The plan that takes machine m from its current instance to target (isNew: create it first). */
export function switchPlan(
  m: MachineState,
  intent: Intent,
  target: Instance,
  isNew: boolean,
  opts: SwitchOptions,
  carried?: (report: CarryReport) => void,
): Plan<SwitchStep> {
  const name = m.name;
  const root = paths.machineRoot(name);
  const old = instanceOf(m, m.current);
  const policy = opts.carry ?? policyOf(m.carry);
  const carrying = isNew && old !== undefined && carriesAnything(policy);
  // Carried files move from the old instance's uid range to the new one's
  // (either 0, for an instance without private users).
  const bases = { old: old?.uidBase ?? 0, new: target.uidBase ?? 0 };
  // Taken just before the carry step copies; carry-final compares.
  let print = "";
  // Everything that does not need the container stopped is done first,
  // the new root's mount included, so that the downtime is a plain restart.
  const steps: Step<SwitchStep>[] = [intentStep("intent")];
  if (isNew)
    steps.push({
      name: "create-instance",
      what: `create instance ${target.gen} of ${target.image}`,
      run: async (r) => {
        createInstanceDirs(r, name, target);
        // Recorded before the mount point exists, so that no crash leaves
        // a /var/lib/machines/NAME that boxctl would not recognise.
        registerInstance(r, m, target);
        ensureMountPoint(r, name);
      },
    });
  // Its reload is waited for by remount, so that it runs beside the carry (140 ms idle, more loaded).
  let reloaded: Promise<void> = Promise.resolve();
  steps.push({
    name: "switch-unit",
    // In /run only (power cuts, issue 14): until the commit step, a boot
    // mounts the instance machine.json calls current, never an unverified one.
    what: `point the mount unit at instance ${target.gen} until the next boot (it takes effect at the next mount; commit makes it permanent)`,
    run: async (r) => {
      reloaded = stageRootUnits(r, name, target);
      // Seen by remount; a step that fails before it must not leave it unhandled.
      reloaded.catch(() => {});
    },
  });
  if (isNew)
    steps.push({
      name: "carry",
      what:
        old && carrying
          ? `carry ${formatCarry(policy)} from instance ${old.gen} into instance ${target.gen} (instance ${old.gen} is only read)`
          : "nothing to carry",
      run: async (r) => {
        if (!old || !carrying) return;
        // Under --dry-run the new instance does not exist to be written: say what would be carried.
        if (r.dryRun) {
          for (const l of previewLines(await previewCarry(r, name, old, target, policy))) r.note(l);
          return;
        }
        print = carryFingerprint(name, old, policy);
        carried?.(await carry(r, name, old, target, policy, bases));
      },
    });
  steps.push(
    {
      name: "remount",
      what: `mount instance ${target.gen} at ${root} on the host, in place of the old one (a running ${name} keeps its own copy of the old root until the restart)`,
      run: async (r) => {
        await reloaded;
        // After the reload: systemd answers nothing while it reloads.
        await resetFailed(r, nspawnUnit(name), mountUnitName(root));
        await remountLive(r, name, target);
      },
      durable: false,
    },
    ...(!carrying || !old
      ? []
      : ([
          {
            name: "stop",
            what: `stop ${name} (systemctl stop ${nspawnUnit(name)})`,
            run: (r) => stopMachine(r, name),
            durable: false,
          },
          {
            name: "carry-final",
            what: `carry again if instance ${old.gen} changed since the carry step (usually it did not)`,
            run: async (r) => {
              if (r.dryRun || carryFingerprint(name, old, policy) === print) return;
              r.note(`${name}: instance ${old.gen} changed after the carry step; carrying again`);
              // The new root is mounted on the host but unused: take it down to write its upper dir.
              await unmountIfMounted(r, name);
              carried?.(await carryAgain(r, name, old, target, policy, bases));
              await remountLive(r, name, target);
            },
            durable: false,
          },
        ] satisfies Step<SwitchStep>[])),
    {
      name: "restart",
      what: `restart ${name} onto instance ${target.gen} (systemctl restart ${nspawnUnit(name)})`,
      // Exactly what a sysadmin would type; it also starts a container that
      // was not running. wait-booted then follows the boot.
      run: (r) => startMachine(r, name, root, "restart"),
      durable: false,
    },
    {
      name: "wait-booted",
      what: `wait until ${name} has booted${opts.check ? " and --check succeeds" : ""} (timeout ${opts.timeoutMs / 1000} s)`,
      run: async (r) => {
        await verifyBooted(r, name, opts.timeoutMs, opts.check).catch(async (e) => {
          const why = e instanceof BoxError ? e.message : String(e);
          await log(
            r,
            name,
            intent,
            target,
            why.startsWith("--check") ? "check-failed" : "boot-failed",
            why,
            4,
          );
          throw e;
        });
        await log(
          r,
          name,
          intent,
          target,
          "booted",
          `instance ${target.gen} booted${opts.check ? " and --check succeeded" : ""}`,
        );
      },
    },
    {
      name: "commit",
      what: `make instance ${target.gen} current${old ? `, instance ${old.gen} the fallback` : ""}, and the mount unit in /etc name it`,
      run: async (r) => {
        // The unit first, then the record: a power cut between the two
        // boots the new instance with intent.json at wait-booted, which
        // recovery completes by writing the record. systemd's reload is
        // not waited for: the loaded unit already mounts target.
        await writeRootUnits(r, name, target, "background");
        commitSwitch(r, m, target.gen, old?.gen ?? null, {
          verb: intent.verb,
          result: "ok",
          started: intent.started,
        });
        await log(
          r,
          name,
          intent,
          target,
          "ok",
          `now on instance ${target.gen} (${target.image})${old ? `; fallback instance ${old.gen}` : ""}`,
        );
      },
    },
  );
  return { machine: name, intent, steps, onStop: "roll-back" };
}

/** The journal entry for a step of a switch (host/journal.ts). */
export function log(
  r: Runner,
  name: string,
  intent: Intent,
  inst: Instance | undefined,
  result: string,
  message: string,
  priority?: 3 | 4,
): Promise<void> {
  return journal(r, {
    machine: name,
    operation: intent.verb,
    instance: inst?.gen ?? null,
    image: inst?.image ?? null,
    result,
    message,
    extra: { STEP: intent.step, STARTED: intent.started },
    ...(priority ? { priority } : {}),
  });
}
