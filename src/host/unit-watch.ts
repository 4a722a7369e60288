// Following one unit's state changes as systemd announces them on D-Bus,
// instead of asking again and again: `busctl monitor` of the unit's
// PropertiesChanged signals, one JSON line each. systemd sends them while
// any client is subscribed to it (machined and logind always are once a
// container runs); a watcher still re-reads the unit now and then, so a
// signal that never came costs time, never a hang.
import type { ChildProcess } from "node:child_process";
import type { Runner } from "./runner.ts";

/** The unit's D-Bus object path: systemd escapes every byte but [A-Za-z0-9] as _XX. */
export function unitObjectPath(unit: string): string {
  let out = "";
  for (const b of Buffer.from(unit, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9]/.test(c) ? c : `_${b.toString(16).padStart(2, "0")}`;
  }
  return `/org/freedesktop/systemd1/unit/${out}`;
}

/** The signal boxctl sends itself to learn that busctl has attached (see watchUnit). */
const pingPath = () => `/org/boxctl/watch/p${process.pid}`;
const PING = ["org.boxctl.Watch", "Attached"] as const;

export function monitorArgv(unit: string): string[] {
  return [
    "busctl",
    "monitor",
    "--json=short",
    `--match=type='signal',sender='org.freedesktop.systemd1',path='${unitObjectPath(unit)}',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'`,
    `--match=type='signal',path='${pingPath()}',interface='${PING[0]}',member='${PING[1]}'`,
  ];
}

/** What one PropertiesChanged signal said, of the properties a boot waiter reads. */
export interface UnitChange {
  statusText?: string;
  activeState?: string;
}

/** One line of `busctl monitor --json=short`; null if it is not a unit's PropertiesChanged. */
export function parseChange(line: string): UnitChange | null {
  let m: unknown;
  try {
    m = JSON.parse(line);
  } catch {
    return null;
  }
  const data = (m as { payload?: { data?: unknown[] } }).payload?.data;
  const props = data?.[1] as Record<string, { data?: unknown }> | undefined;
  if (!props || typeof props !== "object") return null;
  const out: UnitChange = {};
  const s = props.StatusText?.data;
  if (typeof s === "string") out.statusText = s;
  const a = props.ActiveState?.data;
  if (typeof a === "string") out.activeState = a;
  return out;
}

export interface UnitWatch {
  /**
   * Resolves with the changes announced since the last call (at least
   * one), or with [] after ms without any; null once the monitor has ended.
   */
  next(ms: number): Promise<UnitChange[] | null>;
  close(): void;
}

/** How long busctl gets to attach to the bus before boxctl does without it. */
const ATTACH_MS = 3000;
/** Between two pings while busctl attaches (it takes 10-30 ms). */
const PING_MS = 20;

/**
 * Starts watching unit; resolves once busctl has attached to the bus, so
 * that a state read after this cannot miss a change. busctl 252 says so on
 * stderr, 257 with --json no longer does: so boxctl also sends itself a
 * signal that the monitor matches, until the monitor shows it.
 * Null if busctl cannot watch (no bus, no busctl): the caller polls.
 */
export async function watchUnit(r: Runner, unit: string): Promise<UnitWatch | null> {
  let child: ChildProcess;
  try {
    child = r.spawn(monitorArgv(unit));
  } catch {
    return null;
  }
  const queue: UnitChange[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let isAttached: boolean | undefined;
  let attached: (ok: boolean) => void = () => {};
  const ready = new Promise<boolean>((res) => {
    attached = (ok) => {
      isAttached ??= ok;
      res(ok);
    };
  });
  let err = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err += d;
    if (err.includes("Monitoring bus message stream")) attached(true);
  });
  let buf = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    let i = buf.indexOf("\n");
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.includes(pingPath())) attached(true);
      else {
        const c = parseChange(line);
        if (c) queue.push(c);
      }
      i = buf.indexOf("\n");
    }
    if (queue.length) poke();
  });
  const end = () => {
    ended = true;
    attached(false);
    poke();
  };
  child.on("error", end);
  child.on("close", end);
  const close = () => {
    if (!ended) child.kill("SIGTERM");
  };
  const until = Date.now() + ATTACH_MS;
  while (isAttached === undefined && Date.now() < until) {
    // A missing busctl is the monitor's error event (end): nothing to report here.
    await r.run(["busctl", "emit", pingPath(), ...PING], { check: false }).catch(() => {});
    await Promise.race([ready, r.sleep(PING_MS)]);
  }
  if (!isAttached) {
    close();
    return null;
  }
  return {
    next: async (ms) => {
      if (!queue.length && !ended) {
        let t: NodeJS.Timeout | undefined;
        await new Promise<void>((res) => {
          wake = res;
          t = setTimeout(res, ms);
        });
        clearTimeout(t);
        wake = undefined;
      }
      return queue.length || !ended ? queue.splice(0) : null;
    },
    close,
  };
}
