// delete-instance NAME IMAGE: remove an instance that is not current.
import { existsSync } from "node:fs";
import { BoxError } from "../errors.ts";
import { type MachineState, requireMachine, saveMachine } from "../machines/state.ts";
import { checkName } from "../names.ts";
import { paths } from "../paths.ts";
import { run, runnerConfig } from "../runner.ts";
import { guarded } from "./guard.ts";
import { clearIntent, type Intent, newIntent, writeIntent } from "./journal.ts";
import { apply } from "./plan.ts";
import { instanceOfImage } from "./reset.ts";
import { mountedUpper } from "./store.ts";
import { describe } from "./switch.ts";

function forget(m: MachineState, gen: number): boolean {
  const wasFallback = m.fallback === gen;
  m.instances = m.instances.filter((i) => i.gen !== gen);
  if (wasFallback) m.fallback = null;
  if (!runnerConfig.dryRun) saveMachine(m);
  return wasFallback;
}

async function removeDirs(name: string, gen: number): Promise<void> {
  // The current instance is never deleted; this guards against a mount the state does not know.
  if (!runnerConfig.dryRun && (await mountedUpper(name)) === paths.upper(name, gen)) {
    throw new BoxError(
      `instance ${gen} is mounted at ${paths.machineRoot(name)}`,
      `run boxctl recover ${name}, then try again`,
    );
  }
  if (runnerConfig.dryRun || existsSync(paths.instance(name, gen)))
    await run(["rm", "-rf", "--one-file-system", "--", paths.instance(name, gen)], {
      mutates: true,
    });
}

export async function deleteInstance(
  name: string,
  image: string,
  opts: { wait?: boolean; instance?: number },
): Promise<number> {
  checkName("machine", name);
  checkName("image", image);
  return guarded(name, "delete-instance", opts, async () => {
    const m = requireMachine(name);
    const inst = instanceOfImage(m, image, opts.instance);
    if (m.current === inst.gen) {
      throw new BoxError(
        `${describe(inst)} is ${name}'s current instance; boxctl never deletes the current instance`,
        m.fallback !== null
          ? `go back first (boxctl fallback-instance ${name}) or cut over to another image, then delete it`
          : `cut over to another image first (boxctl cutover-instance ${name} IMAGE), then delete it`,
      );
    }
    const intent: Intent = newIntent("delete-instance", m, { gen: inst.gen, image }, false);
    writeIntent(name, intent);
    let wasFallback = false;
    await apply(
      name,
      intent,
      [
        { name: "intent", what: "record what this operation will do", run: async () => {} },
        {
          name: "forget",
          what: `remove ${describe(inst)} from ${name}'s instances`,
          run: async () => {
            wasFallback = forget(m, inst.gen);
          },
        },
        {
          name: "remove",
          what: `delete ${paths.instance(name, inst.gen)}`,
          run: () => removeDirs(name, inst.gen),
        },
      ],
      "finish",
    );
    clearIntent(name);
    if (!runnerConfig.dryRun) {
      process.stdout.write(`${name}: deleted ${describe(inst)}\n`);
      if (wasFallback)
        process.stdout.write(
          `${name}: it was the fallback; ${name} has no fallback instance now\n`,
        );
    }
    return 0;
  });
}

/** Recovery: a delete the user asked for is finished, never undone. */
export async function finishDelete(name: string, intent: Intent): Promise<void> {
  process.stderr.write(
    `boxctl: ${name}: completing the interrupted delete-instance of instance ${intent.target}\n`,
  );
  const m = requireMachine(name);
  if (m.current !== intent.target) {
    if (m.instances.some((i) => i.gen === intent.target)) forget(m, intent.target);
    await removeDirs(name, intent.target);
  }
  clearIntent(name);
}
