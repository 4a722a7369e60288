// Tables for list-images.
import { ago, humanBytes } from "../../base/format.ts";
import type { ImageRow, InstanceRef, MachineRow } from "../../ops/images.ts";
import { color, renderTable } from "../output.ts";

const showRef = (r: InstanceRef | null) => (r ? `${r.image} (gen ${r.gen})` : "-");

export function renderImages(
  data: { images: ImageRow[]; machines: MachineRow[] },
  legend: boolean,
  now = Date.now(),
): string {
  const rows = data.images.map((i) => [
    i.pinned ? `${i.name} (pinned)` : i.name,
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
