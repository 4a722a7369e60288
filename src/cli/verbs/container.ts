import { BoxError, EXIT, printError } from "../../base/errors.ts";
import { checkName } from "../../base/names.ts";
import { gatherAppStatus, setServices, unitsNotThere } from "../../ops/app-status.ts";
import { configure, login, shell } from "../../ops/interactive.ts";
import { poweroff, restart, setEnabled, start, terminate } from "../../ops/lifecycle.ts";
import { gatherList } from "../../ops/list.ts";
import { gatherStatus } from "../../ops/status.ts";
import { done, emit } from "../output.ts";
import { parseTimeout } from "../parse.ts";
import { renderAppStatus, renderList, renderStatus } from "../render/container.ts";
import type { Ctx, Verb } from "../types.ts";
import { lockWait, machine } from "./args.ts";

const noBlock = { "no-block": { type: "boolean", help: "Only ask; do not wait." } } as const;
const timeout = {
  timeout: {
    type: "string",
    arg: "SECONDS",
    help: "Give up waiting for the boot after SECONDS (default 90).",
  },
} as const;

/** The NAME argument, validated before anything looks it up. */
const nameOf = (ctx: Ctx) => checkName("machine", ctx.args[0] ?? "");

/** --wait: every verb here that takes the machine's lock can queue behind its holder. */
const wait = (ctx: Ctx) => ({ wait: ctx.opts.wait === true });

async function enabled(ctx: Ctx, on: boolean): Promise<number> {
  const name = nameOf(ctx);
  const { changed } = await setEnabled(ctx.r, name, on, wait(ctx));
  const said = on
    ? `${name} ${changed ? "now" : "already"} starts with the host`
    : `${name} ${changed ? "no longer starts" : "was not enabled: it does not start"} with the host`;
  return done(ctx, { machine: name, changed, enabled: on }, said);
}

export const containerVerbs: Verb[] = [
  {
    name: "configure",
    group: "container",
    args: [machine, { name: "CMD", optional: true, rest: true, command: true }],
    summary: "Enter the container without booting it (for making filesystem changes).",
    details: `Mounts the current instance and runs systemd-nspawn on it without booting it: a root
shell, or CMD if one is given (boxctl configure NAME -- CMD ARGS...), whose exit status
boxctl returns. Changes land in the current instance, like changes made while it runs.
Refuses while the container is running (power it off first), and holds the machine's
lock meanwhile so that nothing starts it. Private users are off, so files keep their
owners and only what is changed is copied into the instance.`,
    options: { ...lockWait },
    mutates: true,
    run: async (ctx) => configure(ctx.r, nameOf(ctx), ctx.args.slice(1), wait(ctx)),
  },
  {
    name: "disable",
    group: "container",
    args: [machine],
    summary: "Ensure the container does *not* start upon reboot of the host.",
    details: `Runs machinectl disable NAME, so boxctl and machinectl agree on the setting.
It does not stop a running container.`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => enabled(ctx, false),
  },
  {
    name: "enable",
    group: "container",
    args: [machine],
    summary: "Ensure the container starts upon reboot of the host.",
    details: `Runs machinectl enable NAME: systemd-nspawn@NAME.service becomes wanted by
machines.target, and at boot systemd mounts the current instance before starting it.
It does not start the container now (boxctl start NAME does).`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => enabled(ctx, true),
  },
  {
    name: "list",
    group: "container",
    args: [],
    summary: "Show the containers boxctl manages, and other running machines.",
    details: `One line per machine: its state (running, starting, stopping, stopped, failed),
whether it starts with the host, its current image and generation, and its fallback.
Machines that machinectl knows of but boxctl does not manage are listed too, with their
manager (for example systemd-nspawn) in the last column. A managed machine whose state file cannot
be read is listed as (unreadable) and reported on stderr, naming the file; the others are
listed as usual, and the exit status is 1.`,
    mutates: false,
    reads: true,
    run: async (ctx) => {
      const { entries, unreadable } = await gatherList(ctx.r);
      emit(
        ctx.opts,
        () => ({ machines: entries }),
        (legend) => renderList(entries, legend),
      );
      for (const u of unreadable) printError(u.error);
      return unreadable.length ? EXIT.failed : EXIT.ok;
    },
  },
  {
    name: "login",
    group: "container",
    args: [machine],
    summary: "Open a TTY login session in the container.",
    details: `Runs machinectl login NAME. Press ^] three times within a second to leave.
It needs a terminal; without one, boxctl shell NAME CMD... or boxctl shell NAME < script
runs commands instead.`,
    mutates: false,
    run: async (ctx) => login(ctx.r, nameOf(ctx)),
  },
  {
    name: "shell",
    group: "container",
    args: [machine, { name: "CMD", optional: true, rest: true, command: true }],
    summary: "Run a command in the container and return its exit status.",
    details: `With CMD, runs it in the running container (systemd-run -M NAME --wait --pipe) with
boxctl's standard input and output, and exits with CMD's own exit status. Without CMD,
opens a root shell (machinectl shell NAME) on a terminal; without a terminal, runs
/bin/sh that way, so that boxctl shell NAME < script.sh runs the script and exits with
its status. Options after CMD belong to CMD.`,
    mutates: true,
    run: async (ctx) => shell(ctx.r, nameOf(ctx), ctx.args.slice(1)),
  },
  {
    name: "poweroff",
    group: "container",
    args: [machine],
    summary: "Shut the container down cleanly; waits until it has stopped.",
    details: `Stops systemd-nspawn@NAME.service, which shuts the container's own systemd down
cleanly, and returns once the unit is inactive. With --no-block it only asks
(machinectl poweroff NAME) and returns at once.`,
    options: { ...noBlock, ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = nameOf(ctx);
      const noBlock = ctx.opts["no-block"] === true;
      const { changed } = await poweroff(ctx.r, name, { noBlock, ...wait(ctx) });
      // Under --no-block boxctl only asked: a container that was running may still be.
      return done(ctx, { machine: name, changed, running: noBlock && changed });
    },
  },
  {
    name: "stop",
    group: "container",
    args: [machine],
    summary: "Not a verb: see poweroff.",
    mutates: false,
    hidden: true,
  },
  {
    name: "restart",
    group: "container",
    args: [machine],
    summary: "Power the container off, then on again, with the same instance.",
    details: `A clean poweroff (waiting for it), then a start that returns once the container has
booted. A stopped container is just started. Before the poweroff, a file boxctl writes for
the machine that is missing or changed is put back, as boxctl start does.`,
    options: { ...timeout, ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = nameOf(ctx);
      const timeoutMs = parseTimeout(ctx.opts.timeout, "restart");
      const { changed, settled } = await restart(ctx.r, name, { timeoutMs, ...wait(ctx) });
      return done(ctx, { machine: name, changed, running: true, booted: true, settled });
    },
  },
  {
    name: "start",
    group: "container",
    args: [machine],
    summary: "Power the container on; returns once it has booted.",
    details: `Mounts the current instance if it is not mounted, starts systemd-nspawn@NAME.service
and waits until the container's systemd reports running (or degraded). With --no-block
it returns as soon as the unit has started.

A file boxctl writes for the machine that is missing or changed (NAME.nspawn, its mount
unit; boxctl status names it) is put back first, as boxctl recover does, keeping your own
lines in NAME.nspawn.`,
    options: { ...noBlock, ...timeout, ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = nameOf(ctx);
      const noBlock = ctx.opts["no-block"] === true;
      const timeoutMs = parseTimeout(ctx.opts.timeout, "start");
      const { changed, settled } = await start(ctx.r, name, { noBlock, timeoutMs, ...wait(ctx) });
      return done(ctx, { machine: name, changed, running: true, booted: !noBlock, settled });
    },
  },
  {
    name: "status",
    group: "container",
    args: [machine],
    summary: "Show the container's state, instances, mount and last cutover.",
    details: `Shows whether the container is running, stopped or failed and whether it starts with
the host; its current instance and image, and its fallback; whether the instance is
mounted and how much it has changed from its image; the last cutover or fallback with its
time and result; and the state of systemd-nspawn@NAME.service, with the last lines its
last run logged when it failed; settings systemd-nspawn ignores (a NAME.nspawn in
/var/lib/machines or /run/systemd/nspawn, behind boxctl's in /etc/systemd/nspawn). Works
whether the container runs or not.`,
    mutates: false,
    reads: true,
    run: async (ctx) => {
      const s = await gatherStatus(ctx.r, nameOf(ctx));
      emit(
        ctx.opts,
        () => ({ ...s }),
        (legend) => renderStatus(s, legend),
      );
      return 0;
    },
  },
  {
    name: "terminate",
    group: "container",
    args: [machine],
    summary: "Forcefully kill the container (not recommended).",
    details: `Kills every process in the container at once, without a shutdown: services get no
chance to flush or close their files, so data they were writing can be lost or corrupt.
Use poweroff unless the container no longer responds to it.`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = nameOf(ctx);
      const { changed } = await terminate(ctx.r, name, wait(ctx));
      return done(ctx, { machine: name, changed, running: false });
    },
  },
  {
    name: "app-status",
    group: "container",
    args: [machine],
    summary: "Show whether the machine's listed services are active inside it.",
    details: `Asks the container's systemd for each listed unit's state (systemctl -M NAME show):
active, inactive, failed, activating, ..., or why a unit is not there (not-found,
masked, bad-setting). The list is kept per machine in its machine.json (set it with
boxctl set-services NAME UNIT...); --services checks other units once. Exit status 0
if every unit is active, 1 otherwise (also when the container is not running).`,
    options: {
      services: {
        type: "string",
        arg: "A,B",
        help: "Check these units instead of the configured list.",
      },
    },
    mutates: false,
    reads: true,
    run: async (ctx) => {
      const services = typeof ctx.opts.services === "string" ? ctx.opts.services : undefined;
      const { doc, error } = await gatherAppStatus(ctx.r, nameOf(ctx), services);
      emit(
        ctx.opts,
        () => ({ ...doc }),
        (legend) => renderAppStatus(doc, legend),
      );
      if (!doc.reachable) {
        printError(
          new BoxError(
            `cannot ask ${doc.name} about its services${error ? `: ${error}` : ""}`,
            `is it running? boxctl start ${doc.name}`,
          ),
        );
      }
      return doc.allActive ? 0 : 1;
    },
  },
  {
    name: "set-services",
    group: "container",
    args: [machine, { name: "UNIT", optional: true, rest: true }],
    summary: "Set the services that app-status checks in the container.",
    details: `Stores the units (names such as nginx or nginx.service, separated by spaces or commas)
in the machine's machine.json, replacing the list it had. Without UNIT, clears the list.
If the container is running, warns about each listed unit it lacks or cannot use
(not-found, masked, bad-setting): app-status would count it as down.`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = nameOf(ctx);
      const { services, changed } = await setServices(ctx.r, name, ctx.args.slice(1), wait(ctx));
      for (const u of await unitsNotThere(ctx.r, name, services)) {
        process.stderr.write(
          `boxctl: warning: ${name} has no usable unit ${u.unit} (${u.state}), so app-status will count it as down\n` +
            `  hint: check the name in the container: systemctl -M ${name} list-units --all\n`,
        );
      }
      return done(
        ctx,
        { machine: name, changed, services },
        `${name}: services ${services.join(", ") || "none"}`,
      );
    },
  },
];
