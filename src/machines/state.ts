// A machine's state: which instances it has, which is current, which is
// the fallback, and how the last operation ended. One file per machine,
// versioned, in the store.
import { existsSync, readdirSync } from "node:fs";
import * as v from "valibot";
import { BoxError } from "../errors.ts";
import { checkName } from "../names.ts";
import { paths } from "../paths.ts";
import { readJson, writeJsonAtomic } from "../state.ts";

export const STATE_VERSION = 1;

const Iso = v.pipe(v.string(), v.isoTimestamp());

export const InstanceSchema = v.object({
  gen: v.pipe(v.number(), v.integer(), v.minValue(1)),
  image: v.string(),
  created: Iso,
  lastActive: v.nullable(Iso),
});

export const OperationSchema = v.object({
  verb: v.string(),
  started: Iso,
  finished: v.nullable(Iso),
  /** ok, failed (nothing changed), rolled-back (automatic fallback), recovered. */
  result: v.picklist(["running", "ok", "failed", "rolled-back", "recovered"]),
  message: v.optional(v.string()),
});

export const MachineSchema = v.object({
  version: v.literal(STATE_VERSION),
  name: v.string(),
  current: v.nullable(v.number()),
  fallback: v.nullable(v.number()),
  instances: v.array(InstanceSchema),
  lastOperation: v.nullable(OperationSchema),
  /** Units that app-status checks inside the container. */
  services: v.optional(v.array(v.string())),
});

export type Instance = v.InferOutput<typeof InstanceSchema>;
export type Operation = v.InferOutput<typeof OperationSchema>;
export type MachineState = v.InferOutput<typeof MachineSchema>;

export function emptyMachine(name: string): MachineState {
  return {
    version: STATE_VERSION,
    name,
    current: null,
    fallback: null,
    instances: [],
    lastOperation: null,
  };
}

export function loadMachine(name: string): MachineState | null {
  return readJson(paths.machineState(name), MachineSchema);
}

/** The state of a machine boxctl manages; a clear error for any other name. */
export function requireMachine(name: string): MachineState {
  checkName("machine", name);
  const m = loadMachine(name);
  if (!m) {
    throw new BoxError(
      `machine '${name}' is not managed by boxctl`,
      existsSync(paths.machineRoot(name))
        ? `it exists in /var/lib/machines but boxctl did not create it; use machinectl for it`
        : `create it with: boxctl cutover-instance ${name} IMAGE (see boxctl list-images)`,
    );
  }
  return m;
}

export function saveMachine(m: MachineState): void {
  writeJsonAtomic(paths.machineState(m.name), m);
}

export function listMachineNames(): string[] {
  try {
    return readdirSync(paths.machines())
      .filter((n) => existsSync(paths.machineState(n)))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
}

export function instanceOf(m: MachineState, gen: number | null): Instance | undefined {
  return gen === null ? undefined : m.instances.find((i) => i.gen === gen);
}
