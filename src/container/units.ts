// Batched reads of systemd and machined state for the read verbs, so that
// `list` costs two processes however many machines there are.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UNIT_DIR } from "../paths.ts";
import { run } from "../runner.ts";

export const UNIT_PROPS = [
  "Id",
  "LoadState",
  "ActiveState",
  "SubState",
  "Result",
  "UnitFileState",
  "ActiveEnterTimestamp",
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
}

/** Parses `systemctl show --timestamp=unix` output: blocks separated by blank lines, keyed by Id. */
export function parseShow(text: string): Map<string, UnitInfo> {
  const out = new Map<string, UnitInfo>();
  for (const block of text.split(/\n\s*\n/)) {
    const p: Record<string, string> = {};
    for (const line of block.split("\n")) {
      const i = line.indexOf("=");
      if (i > 0) p[line.slice(0, i)] = line.slice(i + 1);
    }
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
  };
}

export async function showUnits(units: string[]): Promise<Map<string, UnitInfo>> {
  if (units.length === 0) return new Map();
  const r = await run(
    ["systemctl", "show", "--timestamp=unix", "-p", UNIT_PROPS.join(","), "--", ...units],
    { check: false },
  );
  return parseShow(r.stdout);
}

export interface LoadedUnit {
  activeState: string;
  subState: string;
}

/** Parses `systemctl list-units -o json` (the same on systemd 252 and 257). */
export function parseListUnits(text: string): Map<string, LoadedUnit> {
  const out = new Map<string, LoadedUnit>();
  let data: unknown;
  try {
    data = JSON.parse(text || "[]");
  } catch {
    return out;
  }
  if (!Array.isArray(data)) return out;
  for (const u of data as Record<string, unknown>[]) {
    if (typeof u.unit === "string")
      out.set(u.unit, { activeState: String(u.active ?? ""), subState: String(u.sub ?? "") });
  }
  return out;
}

/**
 * The loaded units matching a glob. A unit systemd has not loaded is
 * inactive (systemd keeps failed units loaded), so this is every unit's
 * state at the cost of one call; `systemctl show` of 50 unloaded units
 * makes PID 1 load each one and takes a quarter of a second.
 */
export async function loadedUnits(glob: string): Promise<Map<string, LoadedUnit>> {
  const r = await run(
    ["systemctl", "list-units", "--all", "--no-pager", "-o", "json", "--", glob],
    {
      check: false,
    },
  );
  return parseListUnits(r.stdout);
}

/**
 * Units enabled by a symlink in a .wants directory of /etc/systemd/system,
 * which is what machinectl enable and systemctl enable create. Read from
 * the file system, so that list needs no systemctl call per machine.
 */
export function wantedUnits(unitDir = UNIT_DIR): Set<string> {
  const out = new Set<string>();
  let dirs: string[];
  try {
    dirs = readdirSync(unitDir).filter((d) => d.endsWith(".wants"));
  } catch {
    return out;
  }
  for (const d of dirs) {
    try {
      for (const u of readdirSync(join(unitDir, d))) out.add(u);
    } catch {
      // A .wants entry that is not a directory wants nothing.
    }
  }
  return out;
}

/** What a person calls the container's state, from its unit's ActiveState. */
export function machineState(activeState: string): string {
  switch (activeState) {
    case "active":
    case "reloading":
      return "running";
    case "activating":
      return "starting";
    case "deactivating":
      return "stopping";
    case "failed":
      return "failed";
    case "inactive":
      return "stopped";
    default:
      return "unknown";
  }
}

export interface RunningMachine {
  name: string;
  class: string;
  service: string;
  os: string;
  osVersion: string;
}

/** Parses `machinectl list -o json` (the same on systemd 252 and 257). */
export function parseMachinectlList(text: string): RunningMachine[] {
  let data: unknown;
  try {
    data = JSON.parse(text || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(data)) return [];
  return data.map((m: Record<string, unknown>) => ({
    name: String(m.machine ?? ""),
    class: String(m.class ?? ""),
    service: String(m.service ?? ""),
    os: String(m.os ?? ""),
    osVersion: String(m.version ?? ""),
  }));
}

export async function runningMachines(): Promise<RunningMachine[]> {
  const r = await run(["machinectl", "list", "--no-pager", "-o", "json"], { check: false });
  return parseMachinectlList(r.stdout);
}

export interface MountEntry {
  fstype: string;
  source: string;
  /** Super-block options, e.g. lowerdir=...,upperdir=...,workdir=... */
  superOptions: string;
}

/** The mount at exactly `path`, topmost first, from /proc/self/mountinfo (no process spawned). */
export function mountAt(path: string, mountinfo?: string): MountEntry | null {
  const text = mountinfo ?? readFileSync("/proc/self/mountinfo", "utf8");
  let found: MountEntry | null = null;
  for (const line of text.split("\n")) {
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const mp = unescapeMount(left.split(" ")[4] ?? "");
    if (mp !== path) continue;
    const [fstype = "", source = "", superOptions = ""] = right.split(" ");
    found = { fstype, source: unescapeMount(source), superOptions: unescapeMount(superOptions) };
  }
  return found;
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

/** The value of one overlay option (upperdir, lowerdir) in a super-block option list. */
export function overlayOption(superOptions: string, key: string): string | null {
  for (const part of superOptions.split(",")) {
    if (part.startsWith(`${key}=`)) return part.slice(key.length + 1);
  }
  return null;
}
