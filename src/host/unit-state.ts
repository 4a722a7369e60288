// What `systemctl show` says of units, read into one shape. The adapter
// (systemd.ts) asks; status, lifecycle and the mount wiring read the answer.
import type { Runner } from "./runner.ts";

export const UNIT_PROPS = [
  "Id",
  "LoadState",
  "ActiveState",
  "SubState",
  "Result",
  "UnitFileState",
  "ActiveEnterTimestamp",
  "Job",
  "StatusText",
  "InvocationID",
] as const;

export interface UnitInfo {
  id: string;
  loadState: string;
  activeState: string;
  subState: string;
  result: string;
  unitFileState: string;
  /** ISO time the unit last became active, or null. */
  since: string | null;
  /** The id of the job queued or running for the unit, "" if none. */
  job: string;
  /** What the unit's process last reported with sd_notify STATUS=. */
  statusText: string;
  /** The unit's current or last run, which its journal lines carry; null if it has had none. */
  invocation: string | null;
}

/**
 * `systemctl show` output as one property map per unit, in the order the
 * units were asked about: blocks separated by blank lines, KEY=VALUE lines.
 */
export function showBlocks(text: string): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const p: Record<string, string> = {};
    for (const line of block.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) p[line.slice(0, i)] = line.slice(i + 1);
    }
    if (Object.keys(p).length) out.push(p);
  }
  return out;
}

/** Parses `systemctl show --timestamp=unix` output, keyed by Id. */
export function parseShow(text: string): Map<string, UnitInfo> {
  const out = new Map<string, UnitInfo>();
  for (const p of showBlocks(text)) {
    if (!p.Id) continue;
    const ts = /^@(\d+)/.exec(p.ActiveEnterTimestamp ?? "");
    out.set(p.Id, {
      id: p.Id,
      loadState: p.LoadState ?? "unknown",
      activeState: p.ActiveState ?? "unknown",
      subState: p.SubState ?? "unknown",
      result: p.Result ?? "unknown",
      unitFileState: p.UnitFileState ?? "",
      since: ts && Number(ts[1]) > 0 ? new Date(Number(ts[1]) * 1000).toISOString() : null,
      job: p.Job ?? "",
      statusText: p.StatusText ?? "",
      invocation: /^[0-9a-f]{32}$/.test(p.InvocationID ?? "") ? (p.InvocationID as string) : null,
    });
  }
  return out;
}

export function unknownUnit(id: string): UnitInfo {
  return {
    id,
    loadState: "unknown",
    activeState: "unknown",
    subState: "unknown",
    result: "unknown",
    unitFileState: "",
    since: null,
    job: "",
    statusText: "",
    invocation: null,
  };
}

export async function showUnits(r: Runner, units: string[]): Promise<Map<string, UnitInfo>> {
  if (units.length === 0) return new Map();
  const res = await r.run(
    ["systemctl", "show", "--timestamp=unix", "-p", UNIT_PROPS.join(","), "--", ...units],
    { check: false },
  );
  return parseShow(res.stdout);
}

/** One unit's state; unknown fields if systemctl could not tell. */
export async function unitInfo(r: Runner, unit: string): Promise<UnitInfo> {
  return (await showUnits(r, [unit])).get(unit) ?? unknownUnit(unit);
}

export const isUpState = (state: string) => ["active", "activating", "reloading"].includes(state);
export const isUp = (u: UnitInfo) => isUpState(u.activeState);

/** Up, or about to be: a job for it is queued (systemd starts it once its mount is done). */
export const isUpOrQueued = (u: UnitInfo) => isUp(u) || u.job !== "";
