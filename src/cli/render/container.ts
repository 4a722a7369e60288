// Tables for the container verbs' data: status, list, app-status.
import { ago, count, humanBytes } from "../../base/format.ts";
import { paths } from "../../base/paths.ts";
import { formatCarry } from "../../carry/policy.ts";
import type { AppStatusDoc } from "../../ops/app-status.ts";
import type { ListEntry } from "../../ops/list.ts";
import type { StatusDoc } from "../../ops/status.ts";
import type { Instance, Operation } from "../../store/machine.ts";
import { color, renderTable } from "../output.ts";

export function paintState(state: string): string {
  if (state === "running") return color.green(state);
  if (state === "failed") return color.red(state);
  if (state === "starting" || state === "stopping") return color.yellow(state);
  return state;
}

function describeInstance(i: Instance | null): string {
  if (!i) return "-";
  return `generation ${i.gen}, image ${i.image}, created ${i.created}`;
}

function describeOperation(op: Operation | null, now: number): string {
  if (!op) return "-";
  const when = op.finished ?? op.started;
  const result = op.result === "ok" ? op.result : color.yellow(op.result);
  return `${op.verb} ${result}, ${ago(when, now)} (${when})${op.message ? `: ${op.message}` : ""}`;
}

export function renderStatus(s: StatusDoc, legend: boolean, now = Date.now()): string {
  const u = s.unit;
  const mount = !s.mount.mounted
    ? `${s.mount.path} not mounted`
    : s.mount.instance === null
      ? color.yellow(`${s.mount.path} mounted, but not from one of this machine's instances`)
      : s.mount.instance === s.current?.gen
        ? `${s.mount.path} mounted (generation ${s.mount.instance})`
        : color.yellow(`${s.mount.path} mounted from generation ${s.mount.instance}, not current`);
  const rows: string[][] = [
    [
      "State:",
      // As systemctl status: since when, and how long that is.
      `${paintState(s.state)}${s.state === "running" && u.since ? ` since ${u.since}; ${ago(u.since, now)}` : ""}`,
    ],
    ["Boot:", s.enabled ? "enabled (starts with the host)" : "disabled"],
    [
      "Unit:",
      `${u.name} ${u.activeState} (${u.subState})${u.result !== "success" ? `, result ${u.result}` : ""}`,
    ],
    ["Current:", describeInstance(s.current)],
    [
      "Fallback:",
      `${describeInstance(s.fallback)}${s.fallbackImageMissing ? color.yellow(`; its image is gone from the store: stage it again (boxctl stage-image FILE --name ${s.fallback?.image}) to fall back`) : ""}`,
    ],
    ["Mount:", mount],
    [
      "Changes:",
      s.changes
        ? `${s.changes.bytes === null ? "?" : humanBytes(s.changes.bytes)} in ${s.changes.path}`
        : "-",
    ],
    [
      "Users:",
      (s.privateUsers
        ? `private: root inside is uid ${s.privateUsers.base} on the host (${s.privateUsers.size} uids)${
            s.privateUsers.sharedWith.length
              ? color.yellow(
                  `; ${s.privateUsers.sharedWith.join(", ")} ${s.privateUsers.sharedWith.length === 1 ? "has" : "have"} the same range, so root in either container owns the other's files (a machinectl clone, or a store restored beside other machines: see README)`,
                )
              : ""
          }`
        : s.current
          ? color.yellow("not private: root inside is root on the host (--private-users no)")
          : "-") +
        // Only after a fallback to an instance made before the choice changed.
        (s.current && (s.privateUsers !== null) !== s.nextPrivateUsers
          ? `; new instances: ${s.nextPrivateUsers ? "private" : "not private"}`
          : ""),
    ],
    ["Last op:", describeOperation(s.lastOperation, now)],
    // As systemctl status shows a failed unit: what its last run said.
    ...(s.unit.log ?? []).map((line, i) => [i === 0 ? "Log:" : "", line]),
    ["Services:", s.services.length ? s.services.join(", ") : "- (see boxctl set-services)"],
    ["Carry:", `${formatCarry(s.carry)} (see boxctl set-carry)`],
    [
      "Keep:",
      s.keep === null
        ? "off: every instance stays (see boxctl set-keep)"
        : `after each cutover, every instance goes but the current, fallback and pinned ones${s.keep === 0 ? "" : ` and the ${count(s.keep, "newest other")}`} (see boxctl set-keep)`,
    ],
  ];
  if (s.ignoredSettings.length)
    rows.push([
      "Settings:",
      color.yellow(
        `${s.ignoredSettings.join(", ")} ignored: systemd-nspawn reads only ${paths.nspawnFile(s.name)}; merge the lines into it and remove ${s.ignoredSettings.length === 1 ? "the file" : "the files"} (they apply from the next start)`,
      ),
    ]);
  if (s.attention)
    rows.push([
      "Attention:",
      color.yellow(
        `${s.attention.message}${s.attention.settle ? `; run: ${s.attention.settle}` : ""}`,
      ),
    ]);
  const body = renderTable(["", ""], rows, { legend: false })
    .split("\n")
    .map((l) => (l ? `  ${l}` : l))
    .join("\n");
  return legend ? `${color.bold(s.name)} (managed by boxctl)\n${body}` : body;
}

export function renderList(entries: ListEntry[], legend: boolean): string {
  const rows = entries.map((e) => [
    e.name,
    paintState(e.state),
    e.enabled === null ? "-" : e.enabled ? "enabled" : "disabled",
    e.error ? "(unreadable)" : (e.image ?? "-"),
    e.generation === null ? "-" : String(e.generation),
    e.fallback ? `${e.fallback.generation} (${e.fallback.image})` : "-",
    e.managed ? "boxctl" : (e.service ?? "-"),
  ]);
  const managed = entries.filter((e) => e.managed).length;
  // A machine that is not as its record says is marked; its note follows the table.
  // Not with --no-legend, whose columns scripts read: --json has it all.
  for (const [i, e] of entries.entries())
    if (e.attention && legend) rows[i]?.splice(1, 1, `${paintState(e.state)}${color.yellow("!")}`);
  const notes = entries
    .filter((e) => e.attention)
    .map(
      (e) =>
        color.yellow(`! ${e.name}: ${e.attention?.message}`) +
        (e.attention?.settle ? `; run: ${e.attention.settle}` : ""),
    );
  const table = renderTable(
    ["MACHINE", "STATE", "BOOT", "IMAGE", "GEN", "FALLBACK", "MANAGER"],
    rows,
    {
      legend,
      footer: `${count(entries.length, "machine")} listed (${managed} managed by boxctl).`,
    },
  );
  return notes.length && legend ? `${table}${notes.join("\n")}\n` : table;
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
