// Who else runs in a uid range: every NAME.nspawn on the host that names
// one. nspawn's own -U never picks from boxctl's BASEs, but machinectl clone
// copies a boxctl machine's NAME.nspawn, PrivateUsers=BASE:65536 included,
// so the clone runs in that machine's range (its files copied through the
// idmapped root, owned BASE+N). A BASE named there is taken for the next
// machine, and status names whoever shares a machine's range.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { paths } from "../base/paths.ts";
import { BASE_MAX, BASE_MIN, UID_RANGE } from "../base/uids.ts";
import { settingsUidRange } from "./units.ts";

export interface SettingsRange {
  /** The machine the file is for: its name without .nspawn. */
  machine: string;
  file: string;
  base: number;
  size: number;
}

/** The ranges in the NAME.nspawn that nspawn reads for each machine (the first it finds). */
export function settingsRanges(): SettingsRange[] {
  const seen = new Set<string>();
  const out: SettingsRange[] = [];
  for (const dir of paths.nspawnDirs()) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((f) => f.endsWith(".nspawn"));
    } catch {
      continue; // no such directory: nothing there
    }
    for (const f of names) {
      const machine = f.slice(0, -".nspawn".length);
      if (seen.has(machine)) continue;
      seen.add(machine);
      const file = join(dir, f);
      let text: string;
      try {
        text = readFileSync(file, "utf8");
      } catch {
        continue; // gone meanwhile, or not a file
      }
      const range = settingsUidRange(text);
      if (range) out.push({ machine, file, ...range });
    }
  }
  return out;
}

/**
 * Every one of boxctl's BASEs that a range in the host's settings overlaps,
 * whoever's it is, except in self's own NAME.nspawn: boxctl sets that line
 * for its new machine (and where the file is a link it cannot change, the
 * user puts boxctl's range there, which must not then count as taken).
 */
export function basesInSettings(self?: string): number[] {
  const out: number[] = [];
  for (const r of settingsRanges()) {
    if (r.machine === self) continue;
    const first = Math.max(BASE_MIN, Math.floor(r.base / UID_RANGE) * UID_RANGE);
    const end = Math.min(BASE_MAX + UID_RANGE, r.base + r.size);
    for (let b = first; b < end; b += UID_RANGE) out.push(b);
  }
  return out;
}

/** The machines other than name whose settings overlap the range at base. */
export function settingsSharing(name: string, base: number): string[] {
  return settingsRanges()
    .filter((r) => r.machine !== name && r.base < base + UID_RANGE && base < r.base + r.size)
    .map((r) => r.machine);
}
