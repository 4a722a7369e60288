// list-images and delete-image: what is staged, who uses it, and removing
// an image nobody uses.

import { mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../errors.ts";
import { withImageStoreLock } from "../lock.ts";
import {
  type Instance,
  instanceOf,
  listMachineNames,
  loadMachine,
  type MachineState,
} from "../machines/state.ts";
import { checkName } from "../names.ts";
import { ago, color, humanBytes, renderTable } from "../output.ts";
import { paths } from "../paths.ts";
import { runnerConfig, showCommand } from "../runner.ts";
import { fsyncDir } from "../state.ts";
import {
  type ImageMeta,
  imageExists,
  listImageNames,
  loadImage,
  stagingEntry,
  sweepStaging,
} from "./store.ts";

export interface Use {
  machine: string;
  gen: number;
  /** current, fallback, or other (kept, but neither). */
  role: "current" | "fallback" | "other";
}

export interface ImageRow extends ImageMeta {
  usedBy: Use[];
}

interface InstanceRef {
  gen: number;
  image: string;
}

export interface MachineRow {
  name: string;
  current: InstanceRef | null;
  fallback: InstanceRef | null;
}

function ref(i: Instance | undefined): InstanceRef | null {
  return i ? { gen: i.gen, image: i.image } : null;
}

function machines(): MachineState[] {
  return listMachineNames()
    .map((n) => loadMachine(n))
    .filter((m): m is MachineState => m !== null);
}

export function usesOf(image: string, ms: MachineState[] = machines()): Use[] {
  const out: Use[] = [];
  for (const m of ms) {
    for (const i of m.instances) {
      if (i.image !== image) continue;
      const role = i.gen === m.current ? "current" : i.gen === m.fallback ? "fallback" : "other";
      out.push({ machine: m.name, gen: i.gen, role });
    }
  }
  return out;
}

export function gather(): { images: ImageRow[]; machines: MachineRow[] } {
  const ms = machines();
  const images: ImageRow[] = [];
  for (const name of listImageNames()) {
    const meta = loadImage(name);
    if (meta) images.push({ ...meta, usedBy: usesOf(name, ms) });
  }
  return {
    images,
    machines: ms.map((m) => ({
      name: m.name,
      current: ref(instanceOf(m, m.current)),
      fallback: ref(instanceOf(m, m.fallback)),
    })),
  };
}

const showRef = (r: InstanceRef | null) => (r ? `${r.image} (gen ${r.gen})` : "-");

export function renderImages(
  data: { images: ImageRow[]; machines: MachineRow[] },
  legend: boolean,
  now = Date.now(),
): string {
  const rows = data.images.map((i) => [
    i.name,
    i.os ?? "-",
    humanBytes(i.size),
    ago(i.staged, now),
    i.sha256.slice(0, 12),
    [...new Set(i.usedBy.map((u) => u.machine))].join(",") || color.dim("-"),
  ]);
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;
  let out = renderTable(["IMAGE", "OS", "SIZE", "STAGED", "SHA256", "USED BY"], rows, {
    legend,
    footer: `${plural(data.images.length, "image")} staged.`,
  });
  if (data.machines.length) {
    const mrows = data.machines.map((m) => [m.name, showRef(m.current), showRef(m.fallback)]);
    out += `${legend || out ? "\n" : ""}${renderTable(["MACHINE", "CURRENT", "FALLBACK"], mrows, {
      legend,
      footer: `${plural(data.machines.length, "machine")}.`,
    })}`;
  }
  return out;
}

export function listImages(): ReturnType<typeof gather> {
  sweepStaging();
  return gather();
}

export async function deleteImage(name: string, opts: { wait?: boolean } = {}): Promise<number> {
  checkName("image", name);
  return withImageStoreLock("delete-image", { shared: false, wait: opts.wait === true }, () =>
    deleteUnlocked(name),
  );
}

async function deleteUnlocked(name: string): Promise<number> {
  sweepStaging();
  if (!imageExists(name)) {
    const names = listImageNames();
    throw new BoxError(
      `image '${name}' is not staged`,
      names.length ? `staged images: ${names.join(", ")}` : "there are no staged images",
    );
  }
  const uses = usesOf(name);
  if (uses.length) {
    const who = uses.map((u) => `${u.machine} (gen ${u.gen}, ${u.role})`).join(", ");
    const first = uses[0] as Use;
    throw new BoxError(
      `image '${name}' is in use by ${who}`,
      `delete those instances first, e.g. boxctl delete-instance ${first.machine} ${name}`,
    );
  }
  const trash = join(paths.staging(), `${stagingEntry(name)}deleted`);
  if (runnerConfig.dryRun) {
    process.stdout.write(`# rename ${showCommand([paths.image(name), trash])}\n`);
    process.stdout.write(`${showCommand(["rm", "-rf", trash])}\n`);
    return 0;
  }
  // One rename makes the image vanish whole; the slow removal happens after,
  // and if it is interrupted the next run finishes it (sweepStaging).
  mkdirSync(paths.staging(), { recursive: true, mode: 0o700 });
  renameSync(paths.image(name), trash);
  fsyncDir(paths.images());
  rmSync(trash, { recursive: true, force: true });
  process.stdout.write(`deleted image ${name}\n`);
  return 0;
}
