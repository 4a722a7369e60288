// status NAME: one machine's state from its machine.json, its unit (one
// systemctl show), the mount table and du of its upper layer.
import { paths } from "../base/paths.ts";
import { UID_RANGE } from "../base/uids.ts";
import { type MountEntry, mountAt, overlayOption } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import { isEnabledState, mountUnitName, nspawnUnit } from "../host/systemd.ts";
import { unitLines } from "../host/unit-log.ts";
import { type UnitInfo, unitInfo } from "../host/unit-state.ts";
import { machineState } from "../host/units.ts";
import { settingsSharing } from "../overlay/ranges.ts";
import { changesSize } from "../store/instances.ts";
import {
  type CarryPolicy,
  DEFAULT_CARRY,
  type Instance,
  instanceOf,
  listMachineNames,
  loadMachine,
  type MachineState,
  type Operation,
  requireMachine,
} from "../store/machine.ts";
import { type Attention, attention, ignoredSettings, imageGone } from "./drift.ts";

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
    /** When the unit failed: the last lines its last run logged (empty if the journal is closed). */
    log: string[] | null;
  };
  current: Instance | null;
  fallback: Instance | null;
  /** The fallback instance's image was deleted from the store: fallback-instance refuses until it is staged again. */
  fallbackImageMissing: boolean;
  /** NAME.nspawn files that systemd-nspawn ignores because boxctl's in /etc/systemd/nspawn comes first. */
  ignoredSettings: string[];
  mount: {
    path: string;
    unit: string;
    mounted: boolean;
    /** The generation whose upper layer is mounted there; null if none or not boxctl's. */
    instance: number | null;
  };
  changes: { path: string; bytes: number | null } | null;
  /**
   * The current instance's uid range on the host; null: root inside is root outside.
   * sharedWith: other machines that run in the same range (a machinectl clone of this
   * one, or a machine restored from another host's store): root in either container
   * owns the other's files.
   */
  privateUsers: { base: number; size: 65536; sharedWith: string[] } | null;
  /** Whether the machine's next new instance gets private users (cutover-instance --private-users). */
  nextPrivateUsers: boolean;
  lastOperation: Operation | null;
  services: string[];
  /** What a cutover carries into the new instance (set-carry). */
  carry: CarryPolicy;
  /** After each successful cutover, prune this machine's instances to the N newest (set-keep); null: off. */
  keep: number | null;
  /** What is not as the record says (drift.ts), and the command that settles it; null if all is. */
  attention: Attention | null;
}

export function buildStatus(
  m: MachineState,
  unit: UnitInfo,
  mount: MountEntry | null,
  changeBytes: number | null,
  more: {
    attention?: Attention | null;
    log?: string[] | null;
    fallbackImageMissing?: boolean;
    ignoredSettings?: string[];
    sharedWith?: string[];
  } = {},
): StatusDoc {
  const root = paths.machineRoot(m.name);
  const upperdir =
    mount?.fstype === "overlay" ? overlayOption(mount.superOptions, "upperdir") : null;
  const mountedGen =
    m.instances.find((i) => upperdir !== null && paths.upper(m.name, i.gen) === upperdir)?.gen ??
    null;
  const cur = instanceOf(m, m.current);
  return {
    name: m.name,
    state: machineState(unit.activeState),
    enabled: isEnabledState(unit.unitFileState),
    unit: {
      name: unit.id,
      activeState: unit.activeState,
      subState: unit.subState,
      result: unit.result,
      unitFileState: unit.unitFileState,
      since: unit.since,
      log: more.log ?? null,
    },
    current: cur ?? null,
    fallback: instanceOf(m, m.fallback) ?? null,
    fallbackImageMissing: more.fallbackImageMissing ?? false,
    ignoredSettings: more.ignoredSettings ?? [],
    mount: { path: root, unit: mountUnitName(root), mounted: mount !== null, instance: mountedGen },
    changes:
      m.current === null ? null : { path: paths.upper(m.name, m.current), bytes: changeBytes },
    privateUsers: cur?.uidBase
      ? { base: cur.uidBase, size: UID_RANGE, sharedWith: more.sharedWith ?? [] }
      : null,
    nextPrivateUsers: m.privateUsers !== false,
    lastOperation: m.lastOperation,
    services: m.services ?? [],
    carry: m.carry ?? DEFAULT_CARRY,
    keep: m.keep ?? null,
    attention: more.attention ?? null,
  };
}

export async function gatherStatus(r: Runner, name: string): Promise<StatusDoc> {
  const m = requireMachine(name);
  const unit = nspawnUnit(name);
  const fb = instanceOf(m, m.fallback);
  const [info, bytes] = await Promise.all([
    unitInfo(r, unit),
    m.current === null ? Promise.resolve(null) : changesSize(r, name, m.current),
  ]);
  return buildStatus(m, info, mountAt(paths.machineRoot(name), r.mountinfo()), bytes, {
    attention: attention(r, m),
    log: info.activeState === "failed" ? await lastRunLines(r, info) : null,
    fallbackImageMissing: fb !== undefined && imageGone(name, fb) !== null,
    ignoredSettings: ignoredSettings(name),
    sharedWith: sameRange(m),
  });
}

/** What the unit's last run logged, as systemctl status shows it for a failed unit. */
function lastRunLines(r: Runner, u: UnitInfo): Promise<string[]> {
  return u.invocation
    ? unitLines(r, { invocation: u.invocation, unit: u.id })
    : Promise.resolve([]);
}

/**
 * The other machines that run in m's current uid range: boxctl's by their
 * records, and any container by its NAME.nspawn (a machinectl clone of m).
 */
function sameRange(m: MachineState): string[] {
  const base = instanceOf(m, m.current)?.uidBase;
  if (!base) return [];
  const managed = listMachineNames().filter((n) => {
    if (n === m.name) return false;
    const o = loadMachine(n);
    return o !== null && (o.uidBase === base || o.instances.some((i) => i.uidBase === base));
  });
  return [...new Set([...managed, ...settingsSharing(m.name, base)])].sort();
}
