// list: the machines boxctl manages (from the store) and every other
// machine machined knows of. Two processes in all, run side by side.
import { BoxError } from "../base/errors.ts";
import type { Runner } from "../host/runner.ts";
import { nspawnUnit } from "../host/systemd.ts";
import {
  type LoadedUnit,
  loadedUnits,
  machineState,
  type RunningMachine,
  runningMachines,
  wantedUnits,
} from "../host/units.ts";
import { instanceOf, listMachineNames, loadMachine, type MachineState } from "../store/machine.ts";
import { type Attention, attention } from "./drift.ts";

export interface ListEntry {
  name: string;
  managed: boolean;
  state: string;
  /** Starts with the host; null for a machine boxctl does not manage. */
  enabled: boolean | null;
  image: string | null;
  generation: number | null;
  fallback: { generation: number; image: string } | null;
  /** machined's class and service (container, systemd-nspawn), or null if not registered. */
  class: string | null;
  service: string | null;
  /** Why boxctl could not read this managed machine's state file; null normally. */
  error: string | null;
  /** What is not as the record says (drift.ts), and the command that settles it; null if all is. */
  attention: Attention | null;
}

/** A managed machine whose machine.json could not be read. */
export interface Unreadable {
  name: string;
  error: BoxError;
}

export function buildList(
  managed: MachineState[],
  units: Map<string, LoadedUnit>,
  running: RunningMachine[],
  wanted: Set<string>,
  unreadable: Unreadable[] = [],
  drift: Map<string, Attention> = new Map(),
): ListEntry[] {
  const registered = new Map(running.map((r) => [r.name, r]));
  const systemdSide = (name: string) => {
    const reg = registered.get(name);
    return {
      state: machineState(units.get(nspawnUnit(name))?.activeState ?? "inactive"),
      enabled: wanted.has(nspawnUnit(name)),
      class: reg?.class ?? null,
      service: reg?.service ?? null,
    };
  };
  const out: ListEntry[] = managed.map((m) => {
    const cur = instanceOf(m, m.current);
    const fb = instanceOf(m, m.fallback);
    return {
      name: m.name,
      managed: true,
      ...systemdSide(m.name),
      image: cur?.image ?? null,
      generation: cur?.gen ?? null,
      fallback: fb ? { generation: fb.gen, image: fb.image } : null,
      error: null,
      attention: drift.get(m.name) ?? null,
    };
  });
  // Still boxctl's, and still running or not: only its instances are unknown.
  for (const u of unreadable)
    out.push({
      name: u.name,
      managed: true,
      ...systemdSide(u.name),
      image: null,
      generation: null,
      fallback: null,
      error: u.error.message,
      attention: null,
    });
  const names = new Set([...managed.map((m) => m.name), ...unreadable.map((u) => u.name)]);
  for (const r of running) {
    if (names.has(r.name)) continue;
    out.push({
      name: r.name,
      managed: false,
      state: "running",
      enabled: null,
      image: null,
      generation: null,
      fallback: null,
      class: r.class,
      service: r.service,
      error: null,
      attention: null,
    });
  }
  // Plain code-unit order: localeCompare would load ICU, a few ms of start-up.
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The list, and the state files that could not be read. One corrupt
 * machine.json must not hide every other machine from the sysadmin who is
 * trying to find out what is wrong; the caller reports each one.
 */
export async function gatherList(
  r: Runner,
): Promise<{ entries: ListEntry[]; unreadable: Unreadable[] }> {
  const managed: MachineState[] = [];
  const unreadable: Unreadable[] = [];
  for (const name of listMachineNames()) {
    try {
      const m = loadMachine(name);
      if (m) managed.push(m);
    } catch (e) {
      if (!(e instanceof BoxError)) throw e;
      unreadable.push({ name, error: e });
    }
  }
  const [units, running] = await Promise.all([
    loadedUnits(r, "systemd-nspawn@*.service"),
    runningMachines(r),
  ]);
  const drift = new Map<string, Attention>();
  for (const m of managed) {
    const a = attention(r, m);
    if (a) drift.set(m.name, a);
  }
  return {
    entries: buildList(managed, units, running, wantedUnits(), unreadable, drift),
    unreadable,
  };
}
