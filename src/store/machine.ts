// The machine record, machine.json: which instances a machine has, which
// is current, which is the fallback, and how the last operation ended. One
// file per machine, versioned, in the store; and the state changes that
// operations make to it.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { BoxError } from "../base/errors.ts";
import { checkName } from "../base/names.ts";
import { paths } from "../base/paths.ts";
import {
  readJson,
  readTextOrNull,
  removeFileDurably,
  rootOnly,
  writeJsonAtomic,
} from "../host/files.ts";
import type { Runner } from "../host/runner.ts";

export const STATE_VERSION = 1;

const Iso = v.pipe(v.string(), v.isoTimestamp());

const Base = v.pipe(v.number(), v.integer(), v.minValue(1));

export const InstanceSchema = v.object({
  gen: v.pipe(v.number(), v.integer(), v.minValue(1)),
  image: v.string(),
  created: Iso,
  lastActive: v.nullable(Iso),
  /**
   * The first uid of the instance's private user namespace (its files are
   * owned BASE+N on the host); null or absent: no user namespace, files
   * owned as in the image (an instance made before private users, or with
   * --private-users no).
   */
  uidBase: v.optional(v.nullable(Base)),
  /** Pinned (boxctl pin NAME --instance GEN): prune never deletes it. Absent: not pinned. */
  pinned: v.optional(v.boolean()),
});

export const OperationSchema = v.object({
  verb: v.string(),
  started: Iso,
  finished: v.nullable(Iso),
  /** ok, failed (nothing changed), rolled-back (automatic fallback), recovered. */
  result: v.picklist(["running", "ok", "failed", "rolled-back", "recovered"]),
  message: v.optional(v.string()),
});

/**
 * What a cutover carries from the old instance into the new one (see
 * src/carry/). Absent in a record: the default, identity only. Added
 * without a version bump: an older boxctl ignores it.
 */
export const CarrySchema = v.object({
  /** /etc/machine-id, /etc/hostname, /etc/ssh/ssh_host_*. */
  identity: v.boolean(),
  /** The three-way merge of /etc. */
  etc: v.boolean(),
  /** Absolute paths in the container, copied whole. */
  paths: v.array(v.string()),
});
export type CarryPolicy = v.InferOutput<typeof CarrySchema>;
export const DEFAULT_CARRY: CarryPolicy = { identity: true, etc: false, paths: [] };

export const MachineSchema = v.object({
  version: v.literal(STATE_VERSION),
  name: v.string(),
  current: v.nullable(v.number()),
  fallback: v.nullable(v.number()),
  instances: v.array(InstanceSchema),
  lastOperation: v.nullable(OperationSchema),
  /** Units that app-status checks inside the container. */
  services: v.optional(v.array(v.string())),
  /** The machine's uid range, allocated at its first private-users instance and kept. */
  uidBase: v.optional(Base),
  /** Whether new instances get private users (absent: yes); cutover-instance --private-users sets it. */
  privateUsers: v.optional(v.boolean()),
  /** The carry policy (set-carry); absent means DEFAULT_CARRY. */
  carry: v.optional(CarrySchema),
  /** set-keep: after each successful cutover, prune --keep N this machine's instances. Absent: off. */
  keep: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
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

export function saveMachine(r: Runner, m: MachineState): void {
  writeJsonAtomic(r, paths.machineState(m.name), m);
}

/** delete-machine: without its record, boxctl no longer knows the machine. */
export function forgetMachine(r: Runner, name: string): void {
  removeFileDurably(r, paths.machineState(name));
  releaseBases(r, name);
}

export function listMachineNames(): string[] {
  try {
    return readdirSync(paths.machines())
      .filter((n) => existsSync(paths.machineState(n)))
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw rootOnly(e, paths.machines());
  }
}

/** What a claim file holds: the machine's name. */
const claimText = (name: string) => `${name}\n`;

/**
 * Claims base for name: /run/boxctl/bases/BASE, made with O_EXCL, names
 * the machine. Two cutovers that make machines at the same moment both read
 * every machine.json before either writes its own (a step later), so the
 * records alone would give both the same range; only one gets the claim.
 * A claim lasts until its machine's record is deleted (forgetMachine) or
 * the next boot (/run is a tmpfs); one for a machine never made keeps its
 * range unused until then, one of 4094.
 */
export function claimBase(r: Runner, name: string, base: number): boolean {
  if (r.dryRun) return true;
  const path = paths.baseClaim(base);
  mkdirSync(paths.baseClaims(), { recursive: true, mode: 0o700 });
  try {
    const fd = openSync(path, "wx", 0o600);
    try {
      writeSync(fd, claimText(name));
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    return readTextOrNull(path) === claimText(name);
  }
}

/** Drops name's claims, once its record is gone, so that its range can be used again before a reboot. */
function releaseBases(r: Runner, name: string): void {
  if (r.dryRun) return;
  const dir = paths.baseClaims();
  let claims: string[];
  try {
    claims = readdirSync(dir);
  } catch {
    return; // none made since the last boot
  }
  for (const f of claims)
    if (readTextOrNull(join(dir, f)) === claimText(name)) rmSync(join(dir, f), { force: true });
}

/** The uid bases that boxctl's machines hold. */
export function takenBases(): number[] {
  const out: number[] = [];
  for (const n of listMachineNames()) {
    const base = loadMachine(n)?.uidBase;
    if (base !== undefined) out.push(base);
  }
  return out;
}

export function instanceOf(m: MachineState, gen: number | null): Instance | undefined {
  return gen === null ? undefined : m.instances.find((i) => i.gen === gen);
}

/** A managed machine with a current instance, or a clear error. */
export function requireInstance(name: string): { machine: MachineState; instance: Instance } {
  const machine = requireMachine(name);
  const instance = instanceOf(machine, machine.current);
  if (!instance) {
    throw new BoxError(
      `machine '${name}' has no current instance`,
      `give it one with: boxctl cutover-instance ${name} IMAGE (see boxctl list-images)`,
    );
  }
  return { machine, instance };
}

/** The newest instance of image (or generation gen of it); what "NAME's instance of IMAGE" means. */
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

/** An instance as the JSON documents name it. */
export type InstanceRef = { gen: number; image: string };

export function instanceRef(inst: Instance | undefined): InstanceRef | null {
  return inst ? { gen: inst.gen, image: inst.image } : null;
}

export function describe(inst: Instance | undefined): string {
  return inst ? `instance ${inst.gen} (${inst.image})` : "no instance";
}

export function registerInstance(r: Runner, m: MachineState, inst: Instance): void {
  if (!m.instances.some((i) => i.gen === inst.gen)) m.instances.push(inst);
  m.instances.sort((a, b) => a.gen - b.gen);
  saveMachine(r, m);
}

/** Drops an instance from the record; true if it was the fallback, which then is none. */
export function forgetInstance(r: Runner, m: MachineState, gen: number): boolean {
  const wasFallback = m.fallback === gen;
  m.instances = m.instances.filter((i) => i.gen !== gen);
  if (wasFallback) m.fallback = null;
  saveMachine(r, m);
  return wasFallback;
}

/** The state after a switch to target: the instance it left becomes the fallback. */
export function commitSwitch(
  r: Runner,
  m: MachineState,
  target: number,
  left: number | null,
  op: { verb: string; result: "ok" | "recovered"; started: string; message?: string },
): void {
  const now = new Date().toISOString();
  m.current = target;
  m.fallback = left;
  for (const i of m.instances) if (i.gen === target || i.gen === left) i.lastActive = now;
  m.lastOperation = {
    verb: op.verb,
    started: op.started,
    finished: now,
    result: op.result,
    ...(op.message ? { message: op.message } : {}),
  };
  saveMachine(r, m);
}

/** The state after a failed switch: as it was before, with the failure recorded. */
export function restoreState(
  r: Runner,
  m: MachineState,
  old: { current: number | null; fallback: number | null },
  op: { verb: string; result: "rolled-back" | "recovered"; started: string; message: string },
): void {
  m.current = old.current;
  m.fallback = old.fallback;
  m.lastOperation = { ...op, finished: new Date().toISOString() };
  saveMachine(r, m);
}
