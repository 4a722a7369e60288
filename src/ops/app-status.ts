// app-status: are the machine's own services active inside its container?
// The list lives in machine.json ("services"), set with set-services, and
// one `systemctl -M NAME is-active` checks all of them.
import { BoxError, printable, UsageError } from "../base/errors.ts";
import { isActiveInMachine } from "../host/in-machine.ts";
import type { LockOptions } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { loadMachine, requireMachine, saveMachine } from "../store/machine.ts";
import { guarded } from "./guard.ts";

// A unit name, or a bare name systemctl completes with .service; never an option.
const UNIT_RE = /^[A-Za-z0-9:_.@\\][A-Za-z0-9:_.@\\-]{0,255}$/;

export function parseUnits(list: string[]): string[] {
  const units = list
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const u of units) {
    if (!UNIT_RE.test(u)) {
      throw new UsageError(
        `'${printable(u)}' is not a unit name`,
        "give unit names such as nginx or nginx.service, separated by commas or spaces",
      );
    }
  }
  return units;
}

/** systemctl's own completion of a bare name, so the output names the real unit. */
export const unitName = (u: string) => (/\.[a-z]+$/.test(u) ? u : `${u}.service`);

export interface AppStatusDoc {
  name: string;
  /** False when the container could not be asked (not running): every state is then "unknown". */
  reachable: boolean;
  allActive: boolean;
  services: { unit: string; state: string; active: boolean }[];
}

/** Pairs `systemctl is-active A B C` output lines with the units asked about. */
export function buildAppStatus(name: string, units: string[], stdout: string): AppStatusDoc {
  const lines = stdout.split("\n").filter((l) => l.trim() !== "");
  const reachable = lines.length === units.length;
  const services = units.map((u, i) => {
    const state = reachable ? (lines[i]?.trim() ?? "unknown") : "unknown";
    return { unit: unitName(u), state, active: state === "active" };
  });
  return { name, reachable, allActive: services.every((s) => s.active), services };
}

export async function gatherAppStatus(
  r: Runner,
  name: string,
  override: string | undefined,
): Promise<{ doc: AppStatusDoc; error: string }> {
  const m = requireMachine(name);
  const units = override !== undefined ? parseUnits([override]) : (m.services ?? []);
  if (units.length === 0) {
    throw new BoxError(
      `no services are listed for machine '${name}'`,
      `list them with: boxctl set-services ${name} UNIT..., or pass --services A,B`,
    );
  }
  const res = await isActiveInMachine(r, name, units);
  const doc = buildAppStatus(name, units, res.stdout);
  return { doc, error: doc.reachable ? "" : res.stderr.trim() };
}

/** The list stored, and whether it differs from the one before. */
export function setServices(
  r: Runner,
  name: string,
  list: string[],
  o: LockOptions = {},
): Promise<{ services: string[]; changed: boolean }> {
  const units = parseUnits(list);
  requireMachine(name);
  return guarded(r, name, "set-services", o, async () => {
    // Re-read under the lock: another verb may have changed machine.json meanwhile.
    const m = loadMachine(name) ?? requireMachine(name);
    saveMachine(r, { ...m, services: units });
    return { services: units, changed: (m.services ?? []).join(" ") !== units.join(" ") };
  });
}
