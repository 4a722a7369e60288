// app-status: are the machine's own services active inside its container?
// The list lives in machine.json ("services"), set with set-services, and
// one `systemctl -M NAME is-active` checks all of them.
import { BoxError, printable, UsageError } from "../errors.ts";
import { guarded } from "../instances/guard.ts";
import { loadMachine, requireMachine, saveMachine } from "../machines/state.ts";
import { color, renderTable } from "../output.ts";
import { run } from "../runner.ts";

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
  const r = await run(["systemctl", "-M", name, "is-active", "--", ...units], { check: false });
  const doc = buildAppStatus(name, units, r.stdout);
  return { doc, error: doc.reachable ? "" : r.stderr.trim() };
}

export function renderAppStatus(doc: AppStatusDoc, legend: boolean): string {
  const rows = doc.services.map((s) => [
    s.unit,
    s.active ? color.green(s.state) : color.red(s.state),
  ]);
  const active = doc.services.filter((s) => s.active).length;
  return renderTable(["UNIT", "STATE"], rows, {
    legend,
    footer: `${active} of ${doc.services.length} active in ${doc.name}.`,
  });
}

export function setServices(name: string, list: string[]): Promise<void> {
  requireMachine(name);
  const units = parseUnits(list);
  return guarded(name, "set-services", {}, async () => {
    // Re-read under the lock: another verb may have changed machine.json meanwhile.
    const m = loadMachine(name) ?? requireMachine(name);
    saveMachine({ ...m, services: units });
  });
}
