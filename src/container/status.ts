// status NAME: one machine's state from its machine.json, its two units
// (one systemctl show), /proc/self/mountinfo and du of its upper layer.

import { changesSize } from "../instances/store.ts";
import type { Instance, MachineState, Operation } from "../machines/state.ts";
import { instanceOf, requireMachine } from "../machines/state.ts";
import { type MountEntry, mountAt, overlayOption } from "../mounts.ts";
import { ago, color, humanBytes, renderTable } from "../output.ts";
import { paths } from "../paths.ts";
import { mountUnitName, nspawnUnit, type UnitInfo, unitInfo } from "../systemd.ts";
import { machineState } from "./units.ts";

export interface StatusDoc {
  name: string;
  state: string;
  enabled: boolean;
  unit: {
    name: string;
    activeState: string;
    subState: string;
    result: string;
    unitFileState: string;
    since: string | null;
  };
  current: Instance | null;
  fallback: Instance | null;
  mount: {
    path: string;
    unit: string;
    mounted: boolean;
    /** The generation whose upper layer is mounted there; null if none or not boxctl's. */
    instance: number | null;
  };
  changes: { path: string; bytes: number | null } | null;
  lastOperation: Operation | null;
  services: string[];
}

export function buildStatus(
  m: MachineState,
  unit: UnitInfo,
  mount: MountEntry | null,
  changeBytes: number | null,
): StatusDoc {
  const root = paths.machineRoot(m.name);
  const upperdir =
    mount?.fstype === "overlay" ? overlayOption(mount.superOptions, "upperdir") : null;
  const mountedGen =
    m.instances.find((i) => upperdir !== null && paths.upper(m.name, i.gen) === upperdir)?.gen ??
    null;
  return {
    name: m.name,
    state: machineState(unit.activeState),
    enabled: unit.unitFileState === "enabled" || unit.unitFileState === "enabled-runtime",
    unit: {
      name: unit.id,
      activeState: unit.activeState,
      subState: unit.subState,
      result: unit.result,
      unitFileState: unit.unitFileState,
      since: unit.since,
    },
    current: instanceOf(m, m.current) ?? null,
    fallback: instanceOf(m, m.fallback) ?? null,
    mount: { path: root, unit: mountUnitName(root), mounted: mount !== null, instance: mountedGen },
    changes:
      m.current === null ? null : { path: paths.upper(m.name, m.current), bytes: changeBytes },
    lastOperation: m.lastOperation,
    services: m.services ?? [],
  };
}

export async function gatherStatus(name: string): Promise<StatusDoc> {
  const m = requireMachine(name);
  const unit = nspawnUnit(name);
  const [info, bytes] = await Promise.all([
    unitInfo(unit),
    m.current === null ? Promise.resolve(null) : changesSize(name, m.current),
  ]);
  return buildStatus(m, info, mountAt(paths.machineRoot(name)), bytes);
}

export function paintState(state: string): string {
  if (state === "running") return color.green(state);
  if (state === "failed") return color.red(state);
  if (state === "starting" || state === "stopping") return color.yellow(state);
  return state;
}

function describeInstance(i: Instance | null): string {
  if (!i) return "-";
  return `generation ${i.gen}, image ${i.image}, created ${i.created}`;
}

function describeOperation(op: Operation | null, now: number): string {
  if (!op) return "-";
  const when = op.finished ?? op.started;
  const result = op.result === "ok" ? op.result : color.yellow(op.result);
  return `${op.verb} ${result}, ${ago(when, now)} (${when})${op.message ? `: ${op.message}` : ""}`;
}

export function renderStatus(s: StatusDoc, legend: boolean, now = Date.now()): string {
  const u = s.unit;
  const mount = !s.mount.mounted
    ? `${s.mount.path} not mounted`
    : s.mount.instance === null
      ? color.yellow(`${s.mount.path} mounted, but not from one of this machine's instances`)
      : s.mount.instance === s.current?.gen
        ? `${s.mount.path} mounted (generation ${s.mount.instance})`
        : color.yellow(`${s.mount.path} mounted from generation ${s.mount.instance}, not current`);
  const rows: string[][] = [
    [
      "State:",
      `${paintState(s.state)}${s.state === "running" && u.since ? ` since ${u.since}` : ""}`,
    ],
    ["Boot:", s.enabled ? "enabled (starts with the host)" : "disabled"],
    [
      "Unit:",
      `${u.name} ${u.activeState} (${u.subState})${u.result !== "success" ? `, result ${u.result}` : ""}`,
    ],
    ["Current:", describeInstance(s.current)],
    ["Fallback:", describeInstance(s.fallback)],
    ["Mount:", mount],
    [
      "Changes:",
      s.changes
        ? `${s.changes.bytes === null ? "?" : humanBytes(s.changes.bytes)} in ${s.changes.path}`
        : "-",
    ],
    ["Last op:", describeOperation(s.lastOperation, now)],
    ["Services:", s.services.length ? s.services.join(", ") : "- (see boxctl set-services)"],
  ];
  const body = renderTable(["", ""], rows, { legend: false })
    .split("\n")
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
  return legend ? `${color.bold(s.name)} (managed by boxctl)\n${body}` : body;
}
