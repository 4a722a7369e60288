// Tables for history and diff.
import { ago, count, humanBytes } from "../../base/format.ts";
import { formatCarry } from "../../carry/policy.ts";
import type { DiffDoc } from "../../ops/diff.ts";
import type { HistoryDoc } from "../../ops/history.ts";
import { color, renderTable } from "../output.ts";

export function renderHistory(h: HistoryDoc, legend: boolean): string {
  const op = h.lastOperation;
  return renderTable(
    ["GEN", "IMAGE", "CREATED", "LAST ACTIVE", "CHANGES", "USERS", "MARK"],
    h.instances.map((r) => [
      String(r.gen),
      r.image,
      r.created.replace(/\.\d+Z$/, "Z"),
      r.current && h.running ? "now" : ago(r.lastActive),
      r.changesBytes === null ? "?" : humanBytes(r.changesBytes),
      r.uidBase ? `private (${r.uidBase})` : "host root",
      [
        r.current ? color.green("current") : r.fallback ? color.yellow("fallback") : "",
        r.pinned ? "pinned" : "",
        r.imageMissing ? color.red("image gone") : "",
      ]
        .filter(Boolean)
        .join(","),
    ]),
    {
      legend,
      footer:
        count(h.instances.length, "instance") +
        (op
          ? `; last operation: ${op.verb} ${op.result}${op.message ? ` (${op.message})` : ""}`
          : "") +
        `; carry: ${formatCarry(h.carry)}`,
    },
  );
}

export function renderDiff(d: DiffDoc, legend: boolean): string {
  const rows = [
    ...d.added.map((p) => ["A", p]),
    ...d.modified.map((p) => ["M", p]),
    ...d.deleted.map((p) => ["D", p]),
  ].sort((a, b) => ((a[1] as string) < (b[1] as string) ? -1 : 1));
  return renderTable(["CHANGE", "PATH"], rows, {
    legend,
    footer: `${d.added.length} added, ${d.modified.length} modified, ${d.deleted.length} deleted in instance ${d.gen} (${d.image})`,
  });
}
