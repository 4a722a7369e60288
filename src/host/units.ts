// The systemd adapter's batched reads for the read verbs, so that `list`
// costs two processes however many machines there are.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { paths } from "../base/paths.ts";
import type { Runner } from "./runner.ts";

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
export async function loadedUnits(r: Runner, glob: string): Promise<Map<string, LoadedUnit>> {
  const res = await r.run(
    ["systemctl", "list-units", "--all", "--no-pager", "-o", "json", "--", glob],
    {
      check: false,
    },
  );
  return parseListUnits(res.stdout);
}

/**
 * Units enabled by a symlink in a .wants directory of /etc/systemd/system,
 * which is what machinectl enable and systemctl enable create. Read from
 * the file system, so that list needs no systemctl call per machine.
 */
export function wantedUnits(unitDir = paths.unitDir()): Set<string> {
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

export async function runningMachines(r: Runner): Promise<RunningMachine[]> {
  const res = await r.run(["machinectl", "list", "--no-pager", "-o", "json"], { check: false });
  return parseMachinectlList(res.stdout);
}
