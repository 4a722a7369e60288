import { UsageError } from "../../errors.ts";
import { cutover, fallback } from "../../instances/cutover.ts";
import { deleteInstance } from "../../instances/delete.ts";
import { diff } from "../../instances/diff.ts";
import { history } from "../../instances/history.ts";
import { recoverCommand } from "../../instances/recover-verb.ts";
import { reset } from "../../instances/reset.ts";
import { parseTimeout } from "../parse.ts";
import type { Opts, Verb } from "../types.ts";

const str = (o: Opts, k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);
function gen(o: Opts, k = "instance"): number | undefined {
  const s = str(o, k);
  if (s === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(s))
    throw new UsageError(
      `--${k} '${s}' is not a generation number`,
      "see the GEN column of boxctl history NAME",
    );
  return Number(s);
}

const machine = { name: "NAME", complete: "machine" } as const;
const image = { name: "IMAGE", complete: "image" } as const;
const lockWait = {
  wait: { type: "boolean", help: "If another boxctl command holds the machine, wait for it." },
} as const;

/** How long to wait for a boot, and what else must pass, after cutover or fallback. */
const bootOptions = {
  timeout: {
    type: "string",
    arg: "S",
    help: "Seconds to wait for the container to boot (default 90).",
  },
  check: {
    type: "string",
    arg: "CMD",
    help: "A shell command that must also succeed inside the container.",
  },
  ...lockWait,
} as const;

export const instanceVerbs: Verb[] = [
  {
    name: "cutover-instance",
    group: "image",
    args: [machine, image],
    summary: "Actively cut over to a new container instance of IMAGE.",
    details: `Creates a new instance of IMAGE (an empty OverlayFS upper dir on top of the image)
and points NAME's generated mount unit at it. While NAME still runs, boxctl mounts the
new instance at /var/lib/machines/NAME on the host in place of the old one (the running
container keeps its own copy of the old root), then runs systemctl restart
systemd-nspawn@NAME: systemd powers NAME off (waiting until it has stopped) and starts it
on the new instance. boxctl waits until the container's systemd reports running or degraded. The instance that was current
becomes the fallback. The container is down only from its stop to its boot.

If any step fails - the container does not boot within --timeout, or --check fails -
boxctl goes back on its own to the instance that was current before, starts it, says
what failed and exits 1; the failed instance is kept (see boxctl history/diff). On the
first cutover of a new machine there is nothing to go back to: the machine is left
stopped with no current instance. An image that is not staged changes nothing.

--check CMD is handed to /bin/sh -c inside the container (so it is the container's
shell that interprets it, as if typed there); a non-zero exit fails the cutover.

Ctrl-C or SIGTERM: boxctl finishes the step in progress, goes back to the instance that
was current before and exits 130 (a second one exits at once). A hang-up (a dropped SSH
session) does not stop it: the cutover runs to its end, checks and fallback included.
If boxctl is killed (crash, kill -9, power cut), the next mutating boxctl command on
NAME completes the cutover if the new instance had already booted, or else rolls back.`,
    options: {
      ...bootOptions,
    },
    mutates: true,
    run: ({ args: [name, img], opts }) =>
      cutover(name as string, img as string, {
        wait: opts.wait === true,
        timeoutMs: parseTimeout(opts.timeout, "cutover-instance"),
        check: str(opts, "check"),
      }),
  },
  {
    name: "fallback-instance",
    group: "image",
    args: [machine],
    summary: "Fall back to the previously used instance, with all its changes.",
    details: `Mounts NAME's fallback instance (the one that was current before the last cutover,
with every change made in it) in its place and restarts NAME on it, the same way as
cutover-instance does. The instance it leaves
stays, and becomes the fallback: fallback-instance swaps current and fallback, so a
second fallback-instance returns to the newer instance; it never walks further back.
If the fallback instance does not boot within --timeout, boxctl returns to the
instance it left, on its own, and exits 1. Ctrl-C, SIGTERM and a hang-up are handled
as for cutover-instance.`,
    options: {
      ...bootOptions,
    },
    mutates: true,
    run: ({ args: [name], opts }) =>
      fallback(name as string, {
        wait: opts.wait === true,
        timeoutMs: parseTimeout(opts.timeout, "fallback-instance"),
        check: str(opts, "check"),
      }),
  },
  {
    name: "reset",
    group: "image",
    args: [machine, image],
    summary: "Reset NAME's instance of IMAGE to the image as it was installed.",
    details: `Discards every change of NAME's newest instance of IMAGE (or of --instance GEN).
Asks for confirmation on a terminal; without one, --yes is required. If the instance is
current and running, boxctl stops the container, resets the instance and starts it again.
Once it has begun, Ctrl-C or SIGTERM does not stop a reset half-way: it runs to its end.`,
    options: {
      yes: { type: "boolean", short: "y", help: "Do not ask for confirmation." },
      instance: { type: "string", arg: "GEN", help: "Reset this generation of IMAGE instead." },
      ...lockWait,
    },
    mutates: true,
    run: ({ args: [name, img], opts }) =>
      reset(name as string, img as string, {
        yes: opts.yes === true,
        wait: opts.wait === true,
        instance: gen(opts),
      }),
  },
  {
    name: "delete-instance",
    group: "image",
    args: [machine, image],
    summary: "Delete the instance of NAME based on IMAGE (never the current one).",
    details: `Deletes NAME's newest instance of IMAGE (or --instance GEN), with all its changes.
The current instance is refused. If it is the fallback, NAME has no fallback afterwards.`,
    options: {
      instance: { type: "string", arg: "GEN", help: "Delete this generation of IMAGE instead." },
      ...lockWait,
    },
    mutates: true,
    run: ({ args: [name, img], opts }) =>
      deleteInstance(name as string, img as string, {
        wait: opts.wait === true,
        instance: gen(opts),
      }),
  },
  {
    name: "recover",
    group: "image",
    args: [machine],
    summary: "Complete or roll back an interrupted operation on NAME.",
    details: `Every mutating boxctl command does this first on its own; this verb does only that.
An operation interrupted before the new instance had booted is rolled back to the
instance that was current before; one interrupted later is completed. Either way the
container is started. A reset or delete-instance that was interrupted is completed.`,
    options: { ...lockWait },
    mutates: true,
    run: ({ args: [name], opts }) => recoverCommand(name as string, { wait: opts.wait === true }),
  },
  {
    name: "history",
    group: "image",
    args: [machine],
    summary: "List NAME's instances, marking the current and fallback ones.",
    details: `For each instance: its generation, image, when it was created and last active, and
the size of its changes (disk usage of its upper dir). JSON schema: docs/json.md.`,
    mutates: false,
    reads: true,
    run: ({ args: [name], opts }) => history(name as string, opts),
  },
  {
    name: "diff",
    group: "image",
    args: [machine],
    summary: "List the paths an instance added, modified or deleted.",
    details: `Compares an instance's upper dir with its image: A added, M modified (present in the
image too), D deleted (overlay whiteouts; everything under an opaque directory that the
image has). OverlayFS bookkeeping is not reported. Needs getfattr (package attr).`,
    options: {
      instance: {
        type: "string",
        arg: "GEN",
        help: "The instance's generation (default: current).",
      },
    },
    mutates: false,
    reads: true,
    run: ({ args: [name], opts }) => diff(name as string, gen(opts), opts),
  },
];
