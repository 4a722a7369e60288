// cutover-instance and fallback-instance: stop the container, switch its
// root to another instance, boot it and verify it; on any failure go back
// to the instance that was current before, on our own.
import { BoxError, EXIT, printError } from "../errors.ts";
import { requireImage } from "../images/store.ts";
import { withImageStoreLock } from "../lock.ts";
import {
  emptyMachine,
  type Instance,
  instanceOf,
  loadMachine,
  type MachineState,
  requireMachine,
} from "../machines/state.ts";
import { checkName } from "../names.ts";
import { paths } from "../paths.ts";
import { runnerConfig } from "../runner.ts";
import { isRunning, nspawnUnit, resetStartLimits, startMachine } from "../systemd.ts";
import { guarded } from "./guard.ts";
import { clearIntent, type Intent, newIntent, writeIntent } from "./journal.ts";
import { apply, type Step } from "./plan.ts";
import {
  checkMountPointFree,
  createInstanceDirs,
  ensureMachineDir,
  ensureMountPoint,
  nextGen,
  registerInstance,
  writeMountUnit,
  writeSettings,
} from "./store.ts";
import {
  bootAndVerify,
  commitSwitch,
  describe,
  remountLive,
  remountTo,
  restoreState,
  verifyBooted,
} from "./switch.ts";

export interface SwitchOptions {
  wait?: boolean;
  timeoutMs: number;
  check?: string;
}

type Verb = "cutover-instance" | "fallback-instance";

/** The steps that take the machine from its current instance to target. */
function switchSteps(
  name: string,
  m: MachineState,
  target: Instance,
  isNew: boolean,
  opts: SwitchOptions,
): Step[] {
  const root = paths.machineRoot(name);
  // Everything that does not need the container stopped is done first,
  // the new root's mount included, so that the downtime is a plain restart.
  const steps: Step[] = [
    { name: "intent", what: "record what this operation will do", run: async () => {} },
  ];
  if (isNew)
    steps.push({
      name: "create-instance",
      what: `create instance ${target.gen} of ${target.image}`,
      run: async () => {
        createInstanceDirs(name, target);
        // Recorded before the mount point exists, so that no crash leaves
        // a /var/lib/machines/NAME that boxctl would not recognise.
        registerInstance(m, target);
        ensureMountPoint(name);
      },
    });
  steps.push(
    {
      name: "switch-unit",
      what: `point the mount unit at instance ${target.gen} (it takes effect at the next mount)`,
      run: async () => {
        await writeSettings(name);
        await writeMountUnit(name, target);
        await resetStartLimits(name);
      },
    },
    {
      name: "remount",
      what: `mount instance ${target.gen} at ${root} on the host, in place of the old one (a running ${name} keeps its own copy of the old root until the restart)`,
      run: () => remountLive(name, target),
      durable: false,
    },
    {
      name: "restart",
      what: `restart ${name} onto instance ${target.gen} (systemctl restart ${nspawnUnit(name)})`,
      // Exactly what a sysadmin would type; it also starts a container that
      // was not running. waitBooted then follows the boot.
      run: () => startMachine(name, "restart"),
      durable: false,
    },
    {
      name: "wait-booted",
      what: `wait until ${name} has booted${opts.check ? " and --check succeeds" : ""} (timeout ${opts.timeoutMs / 1000} s)`,
      run: () => verifyBooted(name, opts.timeoutMs, opts.check),
    },
  );
  return steps;
}

async function switchTo(
  name: string,
  verb: Verb,
  m: MachineState,
  target: Instance,
  isNew: boolean,
  opts: SwitchOptions,
): Promise<number> {
  const old = instanceOf(m, m.current);
  const intent: Intent = newIntent(
    verb,
    m,
    target,
    runnerConfig.dryRun ? false : await isRunning(name),
  );
  ensureMachineDir(name);
  writeIntent(name, intent);
  const steps = switchSteps(name, m, target, isNew, opts);
  steps.push({
    name: "commit",
    what: `make instance ${target.gen} current${old ? `, instance ${old.gen} the fallback` : ""}`,
    run: async () => commitSwitch(m, target.gen, old?.gen ?? null, verb, "ok", intent.started),
  });
  try {
    await apply(name, intent, steps);
  } catch (e) {
    if (runnerConfig.dryRun) throw e;
    const why = e instanceof BoxError ? e.message : String(e);
    printError(new BoxError(`${verb} ${name}: ${why}`, e instanceof BoxError ? e.hint : undefined));
    process.stderr.write(`boxctl: falling back to ${describe(old)}\n`);
    try {
      await rollBack(name, m, intent, old, verb, `failed after step '${intent.step}': ${why}`);
    } catch (e2) {
      // intent.json stays, so the next boxctl command on NAME tries again.
      throw new BoxError(
        `${verb} ${name} failed (${why}), and going back to ${describe(old)} failed too: ${e2 instanceof BoxError ? e2.message : String(e2)}`,
        `fix the cause, then run: boxctl recover ${name}`,
      );
    }
    const interrupted = e instanceof BoxError && e.exitCode === EXIT.interrupted;
    throw new BoxError(
      `${verb} ${name} ${interrupted ? "was interrupted" : "failed"}; ${old ? `${name} is running on ${describe(old)} again` : `${name} is left stopped with no current instance`}`,
      `instance ${target.gen} is kept for inspection: boxctl diff ${name} --instance ${target.gen}; journalctl -u systemd-nspawn@${name}`,
      interrupted ? EXIT.interrupted : EXIT.failed,
    );
  }
  clearIntent(name);
  if (!runnerConfig.dryRun)
    process.stdout.write(
      `${name} is running on ${describe(target)}${old ? `; fallback: ${describe(old)}` : ""}\n`,
    );
  return 0;
}

/** The automatic fallback: back to the instance that was current before, started. */
async function rollBack(
  name: string,
  m: MachineState,
  intent: Intent,
  old: Instance | undefined,
  verb: Verb,
  message: string,
): Promise<void> {
  await remountTo(name, old);
  restoreState(
    m,
    intent.oldCurrent,
    intent.oldFallback,
    verb,
    "rolled-back",
    intent.started,
    message,
  );
  clearIntent(name);
  if (old) await bootAndVerify(name, 90_000);
}

export async function cutover(name: string, image: string, opts: SwitchOptions): Promise<number> {
  checkName("machine", name);
  checkName("image", image);
  return guarded(name, "cutover-instance", opts, () =>
    withImageStoreLock("cutover-instance", { shared: true, wait: true }, () =>
      cutoverLocked(name, image, opts),
    ),
  );
}

async function cutoverLocked(name: string, image: string, opts: SwitchOptions): Promise<number> {
  requireImage(image);
  const existing = loadMachine(name);
  if (!existing) checkMountPointFree(name);
  const m = existing ?? emptyMachine(name);
  const gen = nextGen(existing, name);
  const inst: Instance = { gen, image, created: new Date().toISOString(), lastActive: null };
  return switchTo(name, "cutover-instance", m, inst, true, opts);
}

export async function fallback(name: string, opts: SwitchOptions): Promise<number> {
  checkName("machine", name);
  return guarded(name, "fallback-instance", opts, async () => {
    const m = requireMachine(name);
    const target = instanceOf(m, m.fallback);
    if (!target) {
      throw new BoxError(
        `${name} has no fallback instance`,
        `a fallback exists after a cutover; see boxctl history ${name}`,
      );
    }
    return switchTo(name, "fallback-instance", m, target, false, opts);
  });
}
