// Tables for list-images.
import { ago, count, humanBytes } from "../../base/format.ts";
import type { ImageRow, InstanceRef, MachineRow } from "../../ops/images.ts";
import { color, renderTable } from "../output.ts";

const showRef = (r: InstanceRef | null) =>
  r ? `${r.image} (gen ${r.gen}${r.imageMissing ? color.red(", image gone") : ""})` : "-";

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
  let out = renderTable(["IMAGE", "OS", "SIZE", "STAGED", "SHA256", "USED BY"], rows, {
    legend,
    footer: `${count(data.images.length, "image")} staged.`,
  });
  if (data.machines.length) {
    const mrows = data.machines.map((m) => [m.name, showRef(m.current), showRef(m.fallback)]);
    out += `${legend || out ? "\n" : ""}${renderTable(["MACHINE", "CURRENT", "FALLBACK"], mrows, {
      legend,
      footer: `${count(data.machines.length, "machine")}.`,
    })}`;
  }
  return out;
}
