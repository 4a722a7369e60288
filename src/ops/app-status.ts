// app-status: are the machine's own services active inside its container?
// The list lives in machine.json ("services"), set with set-services, and
// one `systemctl -M NAME show` checks all of them.
import { BoxError, printable, UsageError } from "../base/errors.ts";
import { unitStatesInMachine } from "../host/in-machine.ts";
import type { LockOptions } from "../host/lock.ts";
import type { Runner } from "../host/runner.ts";
import { showBlocks } from "../host/unit-state.ts";
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

const UNIT_TYPES = /\.(service|socket|target|device|mount|automount|swap|timer|path|slice|scope)$/;

/**
 * systemctl's own completion of a name without a unit type's suffix (as
 * dbus-org.freedesktop.login1 or nginx), so the output names the real unit.
 */
export const unitName = (u: string) => (UNIT_TYPES.test(u) ? u : `${u}.service`);

export interface AppStatusDoc {
  name: string;
  /** False when the container could not be asked (not running): every state is then "unknown". */
  reachable: boolean;
  allActive: boolean;
  services: { unit: string; state: string; active: boolean }[];
}

/**
 * A unit's state as app-status shows it: its ActiveState, except that a
 * unit that is not active and not loaded says why (not-found, masked,
 * bad-setting, error) instead of "inactive".
 */
function unitState(p: Record<string, string>): string {
  const active = p.ActiveState ?? "unknown";
  const load = p.LoadState ?? "unknown";
  return active === "active" || load === "loaded" ? active : load;
}

/**
 * Pairs the blocks of `systemctl show -p Id,LoadState,ActiveState A B C`
 * with the units asked about, in order (by Id they would not pair: an
 * alias shows as the unit it names).
 */
export function buildAppStatus(name: string, units: string[], stdout: string): AppStatusDoc {
  const blocks = showBlocks(stdout);
  const reachable = blocks.length === units.length;
  const services = units.map((u, i) => {
    const state = reachable ? unitState(blocks[i] ?? {}) : "unknown";
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
  const res = await unitStatesInMachine(r, name, units);
  const doc = buildAppStatus(name, units, res.stdout);
  return { doc, error: doc.reachable ? "" : res.stderr.trim() };
}

/**
 * The listed units a running container has no (loaded) unit for: a typo
 * set-services can point out at once, instead of app-status counting the
 * service as down for good. Empty when the container cannot be asked.
 */
export async function unitsNotThere(
  r: Runner,
  name: string,
  units: string[],
): Promise<{ unit: string; state: string }[]> {
  if (units.length === 0) return [];
  const doc = buildAppStatus(name, units, (await unitStatesInMachine(r, name, units)).stdout);
  return doc.reachable ? doc.services.filter((s) => NOT_THERE.has(s.state)) : [];
}

const NOT_THERE = new Set(["not-found", "masked", "bad-setting", "error"]);

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
