// boxctl(8), generated from the verb table and the same usage, option and
// exit-status text that --help prints, so the two cannot drift apart.
// `npm run man` writes docs/boxctl.8; a unit test checks it is current.
import { EXIT_CODES, optionLines } from "./help.ts";
import { usageLine } from "./parse.ts";
import type { Verb } from "./types.ts";

/** Escapes text for roff: backslashes, hyphens, and a leading dot or quote. */
export function roff(text: string): string {
  return text
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .split("\n")
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join("\n");
}

const GROUPS: [Verb["group"], string][] = [
  ["container", "CONTAINER COMMANDS"],
  ["image", "IMAGE AND INSTANCE COMMANDS"],
  ["other", "OTHER COMMANDS"],
];

function verbSection(v: Verb): string[] {
  const out = [".TP", `.B ${roff(usageLine(v).replace(/^boxctl /, ""))}`, roff(v.summary)];
  if (v.details) {
    for (const para of v.details.trim().split(/\n\s*\n/))
      out.push(".IP", roff(para.replace(/\s*\n\s*/g, " ")));
  }
  out.push(".IP", "Options:", ".RS");
  for (const [flag, help] of optionLines(v)) out.push(".TP", `.B ${roff(flag.trim())}`, roff(help));
  out.push(".RE");
  return out;
}

export function manPage(verbs: readonly Verb[], version: string): string {
  const shown = verbs.filter((v) => !v.hidden);
  const lines = [
    `.\\" Generated from the verb table by npm run man; do not edit.`,
    `.TH BOXCTL 8 "" "boxctl ${roff(version)}" "System Administration"`,
    ".SH NAME",
    "boxctl \\- cut systemd\\-nspawn containers over to new images, with a way back",
    ".SH SYNOPSIS",
    ".B boxctl",
    ".I VERB",
    "[\\fIARGS\\fR] [\\fIOPTIONS\\fR]",
    ".br",
    ".B boxctl help",
    ".I VERB",
    ".SH DESCRIPTION",
    roff(
      "boxctl is a thin layer over machinectl, systemctl and systemd-nspawn. It stages root " +
        "filesystem images, runs each container on an OverlayFS instance of an image, cuts a " +
        "container over to a new image with a new instance, and falls back to the previous " +
        "instance, with the changes made in it, when the new one is wrong. Containers run " +
        "under the stock systemd-nspawn@.service, so machinectl keeps working on them.",
    ),
  ];
  for (const [group, title] of GROUPS) {
    const vs = shown.filter((v) => v.group === group);
    if (vs.length === 0) continue;
    lines.push(`.SH ${title}`);
    for (const v of vs) lines.push(...verbSection(v));
  }
  lines.push(".SH EXIT STATUS");
  for (const [code, , text] of EXIT_CODES) lines.push(".TP", `.B ${code}`, roff(text));
  lines.push(
    ".SH FILES",
    ".TP",
    ".B /var/lib/boxctl",
    roff(
      "The store: images/IMAGE/{rootfs,image.json} and machines/NAME/{machine.json,instances/GEN}.",
    ),
    ".TP",
    ".B /var/lib/machines/NAME",
    roff("Each container's root, where its current instance is mounted."),
    ".TP",
    ".B /etc/systemd/nspawn/NAME.nspawn",
    roff(
      "The container's nspawn settings: boxctl keeps PrivateUsers= (the instance's uid range, or no) and PrivateUsersOwnership=off; other lines are the administrator's.",
    ),
    ".TP",
    ".B /usr/lib/sysctl.d/30-boxctl.conf",
    roff(
      "Raises fs.inotify.max_user_instances to 8192 (Debian package): each booted container holds some, all charged to root, and the default of 128 runs out at about twenty.",
    ),
    ".SH ENVIRONMENT",
    ".TP",
    ".B NO_COLOR",
    roff("When set, output has no colour. Colour is used only on a terminal."),
    ".SH SEE ALSO",
    ".BR machinectl (1),",
    ".BR systemd\\-nspawn (1),",
    ".BR systemctl (1),",
    ".BR systemd.nspawn (5)",
  );
  return `${lines.join("\n")}\n`;
}
