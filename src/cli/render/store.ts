// Tables for df and prune.
import { count, humanBytes } from "../../base/format.ts";
import type { DfDoc } from "../../ops/df.ts";
import type { PrunePlan, PruneResult } from "../../ops/prune.ts";
import { renderTable } from "../output.ts";

const yes = (b: boolean, w: string) => (b ? w : "");

export function renderDf(d: DfDoc, legend: boolean): string {
  const rows = d.images.map((i) => [
    "image",
    i.name,
    humanBytes(i.bytes),
    humanBytes(i.onlyBytes),
    [yes(i.inUse, "in use"), yes(i.pinned, "pinned")].filter(Boolean).join(",") || "unused",
  ]);
  for (const m of d.machines)
    for (const i of m.instances)
      rows.push([
        "instance",
        `${m.name} gen ${i.gen} (${i.image})`,
        humanBytes(i.bytes),
        humanBytes(i.changesBytes),
        [yes(i.current, "current"), yes(i.fallback, "fallback"), yes(i.pinned, "pinned")]
          .filter(Boolean)
          .join(",") || "kept",
      ]);
  const footer = [
    `Store ${d.store.path}: ${humanBytes(d.store.bytes)} = images ${humanBytes(d.imagesBytes)}`,
    ` + instances ${humanBytes(d.instancesBytes)} + other ${humanBytes(d.otherBytes)}.`,
    `\nboxctl prune would free ${humanBytes(d.prune.bytes)} (${count(d.prune.instances.length, "instance")},`,
    ` ${count(d.prune.images.length, "image")}).`,
  ].join("");
  return renderTable(["KIND", "NAME", "SIZE", "ONLY/CHANGES", "ROLE"], rows, { legend, footer });
}

/** One line per thing a prune removes (or removed). */
export function pruneLines(p: Pick<PrunePlan, "instances" | "images">): string[] {
  return [
    ...p.instances.map((i) => `instance ${i.machine} gen ${i.gen} (${i.image})`),
    ...p.images.map((n) => `image ${n}`),
  ];
}

/** What a machine's keep setting deleted after a cutover, on stderr (stdout is the cutover's). */
export function reportKeep(name: string, res: PruneResult | null): void {
  if (!res) return;
  for (const l of pruneLines(res.removed))
    process.stderr.write(`boxctl: ${name}: keep ${res.plan.keep}: removed ${l}\n`);
  for (const f of res.failed)
    process.stderr.write(`boxctl: ${name}: keep: left ${f.what}: ${f.message}\n`);
}
