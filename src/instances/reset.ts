// reset NAME IMAGE: discard every change of NAME's instance of IMAGE, so
// that it is the image as staged again. The instance keeps its generation.
import { chownSync, existsSync, mkdirSync, renameSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { BoxError } from "../errors.ts";
import { type Instance, type MachineState, requireMachine } from "../machines/state.ts";
import { checkName } from "../names.ts";
import { humanBytes } from "../output.ts";
import { paths } from "../paths.ts";
import { run, runnerConfig } from "../runner.ts";
import { fsyncDir } from "../state.ts";
import { isRunning, stopMachine } from "../systemd.ts";
import { guarded } from "./guard.ts";
import { clearIntent, type Intent, newIntent, writeIntent } from "./journal.ts";
import { apply, type Step } from "./plan.ts";
import { changesSize, mountedUpper, stopMount } from "./store.ts";
import { bootAndVerify, describe, remountTo } from "./switch.ts";

export const RESET_STEPS = ["intent", "stop", "unmount", "discard", "mount", "start"] as const;

/** The newest instance of image; what "NAME's instance of IMAGE" means. */
export function instanceOfImage(m: MachineState, image: string, gen?: number): Instance {
  const all = m.instances.filter((i) => i.image === image);
  const inst = gen === undefined ? all[all.length - 1] : all.find((i) => i.gen === gen);
  if (!inst) {
    throw new BoxError(
      gen === undefined
        ? `${m.name} has no instance of image '${image}'`
        : `${m.name} has no instance ${gen} of image '${image}'`,
      `see its instances with: boxctl history ${m.name}`,
    );
  }
  return inst;
}

async function rmrf(path: string): Promise<void> {
  if (runnerConfig.dryRun || existsSync(path))
    await run(["rm", "-rf", "--one-file-system", "--", path], { mutates: true });
}

/**
 * Replaces the upper and work dirs with empty ones by renames, so that a
 * crash leaves either the old dir or the new one in place, never a half-
 * emptied one. Safe to run again after a crash part-way through.
 */
export async function discardChanges(name: string, inst: Instance): Promise<void> {
  if (runnerConfig.dryRun) {
    process.stdout.write(
      `# replace ${paths.upper(name, inst.gen)} and its work dir by empty ones\n`,
    );
    return;
  }
  const root = statSync(paths.imageRoot(inst.image));
  for (const [dir, mode, uid, gid] of [
    [paths.upper(name, inst.gen), root.mode & 0o7777, root.uid, root.gid],
    [paths.work(name, inst.gen), 0o700, 0, 0],
  ] as const) {
    const fresh = `${dir}.new`;
    const old = `${dir}.discarded`;
    if (!existsSync(dir) && existsSync(fresh)) renameSync(fresh, dir);
    else {
      await rmrf(fresh);
      mkdirSync(fresh, { mode });
      chownSync(fresh, uid, gid);
      await rmrf(old);
      renameSync(dir, old);
      renameSync(fresh, dir);
    }
    fsyncDir(dirname(dir));
  }
  await purgeDiscarded(name, inst);
}

async function purgeDiscarded(name: string, inst: Instance): Promise<void> {
  for (const dir of [paths.upper(name, inst.gen), paths.work(name, inst.gen)]) {
    await rmrf(`${dir}.discarded`);
    await rmrf(`${dir}.new`);
  }
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((r) => rl.question(question, r));
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}

export interface ResetOptions {
  yes?: boolean;
  wait?: boolean;
  instance?: number;
}

export async function reset(name: string, image: string, opts: ResetOptions): Promise<number> {
  checkName("machine", name);
  checkName("image", image);
  return guarded(name, "reset", opts, async () => {
    const m = requireMachine(name);
    const inst = instanceOfImage(m, image, opts.instance);
    const isCurrent = m.current === inst.gen;
    if (!opts.yes && !runnerConfig.dryRun) {
      const size = await changesSize(name, inst.gen);
      const q = `Discard all changes (${size === null ? "?" : humanBytes(size)}) of ${name}'s ${describe(inst)}${isCurrent ? ", restarting it" : ""}? [y/N] `;
      if (!process.stdin.isTTY) {
        throw new BoxError(
          `reset discards every change of ${name}'s ${describe(inst)} and needs confirmation`,
          `run it on a terminal to be asked, or add --yes: boxctl reset ${name} ${image} --yes`,
        );
      }
      if (!(await confirm(q))) {
        process.stderr.write("boxctl: nothing reset\n");
        return 1;
      }
    }
    const wasRunning = isCurrent && !runnerConfig.dryRun && (await isRunning(name));
    const intent: Intent = newIntent("reset", m, { gen: inst.gen, image }, wasRunning);
    writeIntent(name, intent);
    const steps: Step[] = [
      { name: "intent", what: "record what this operation will do", run: async () => {} },
    ];
    if (isCurrent)
      steps.push(
        { name: "stop", what: `power ${name} off`, run: () => stopMachine(name) },
        {
          name: "unmount",
          what: `unmount ${paths.machineRoot(name)}`,
          run: () => unmountIfMounted(name),
        },
      );
    steps.push({
      name: "discard",
      what: `discard the changes of ${describe(inst)}`,
      run: () => discardChanges(name, inst),
    });
    if (isCurrent)
      steps.push({ name: "mount", what: "mount it again", run: () => remountTo(name, inst) });
    if (wasRunning)
      steps.push({
        name: "start",
        what: `start ${name} and wait until it has booted`,
        run: () => bootAndVerify(name, 90_000),
      });
    await apply(name, intent, steps, "finish");
    clearIntent(name);
    if (!runnerConfig.dryRun)
      process.stdout.write(`${name}: ${describe(inst)} is reset to its image\n`);
    return 0;
  });
}

async function unmountIfMounted(name: string): Promise<void> {
  if (runnerConfig.dryRun || (await mountedUpper(name)) !== null) await stopMount(name);
}

/** Recovery: a reset the user confirmed is finished, never undone. */
export async function finishReset(name: string, intent: Intent): Promise<void> {
  const m = requireMachine(name);
  const inst = m.instances.find((i) => i.gen === intent.target);
  process.stderr.write(
    `boxctl: ${name}: completing the interrupted reset of instance ${intent.target}\n`,
  );
  if (inst) {
    const done =
      RESET_STEPS.indexOf(intent.step as (typeof RESET_STEPS)[number]) >=
      RESET_STEPS.indexOf("discard");
    if (!done) {
      if (m.current === inst.gen) {
        await stopMachine(name);
        await unmountIfMounted(name);
      }
      await discardChanges(name, inst);
    } else await purgeDiscarded(name, inst);
    if (m.current === inst.gen) await remountTo(name, inst);
  }
  clearIntent(name);
  if (inst && m.current === inst.gen && intent.wasRunning) await bootAndVerify(name, 90_000);
}
