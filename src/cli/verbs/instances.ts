import { BoxError, UsageError } from "../../base/errors.ts";
import { formatCarry, parseCarry } from "../../carry/policy.ts";
import { setCarry } from "../../ops/carry-policy.ts";
import { deleteInstance } from "../../ops/delete-instance.ts";
import { applyKeep } from "../../ops/keep.ts";
import { reset } from "../../ops/reset.ts";
import { cutover, fallback, type SwitchResult } from "../../ops/switch.ts";
import { describe, instanceRef } from "../../store/machine.ts";
import { done } from "../output.ts";
import { parseTimeout } from "../parse.ts";
import { reportKeep } from "../render/store.ts";
import type { Ctx, Opts, Verb } from "../types.ts";
import { gen, lockWait, machine, timeout, yes } from "./args.ts";

const str = (o: Opts, k: string) => (typeof o[k] === "string" ? (o[k] as string) : undefined);

/** A switch that succeeded, for people and for --json (docs/json.md). */
const switched = (ctx: Ctx, s: SwitchResult) => {
  // Conflicts go to stderr whatever the output format: someone must look at them.
  for (const c of s.carry?.etc?.conflicts ?? [])
    process.stderr.write(
      `boxctl: ${s.machine}: conflict in ${c}: both the container and the new image changed it; the container's version is kept, the new image's is at ${c}.boxctl-new\n`,
    );
  return done(
    ctx,
    {
      machine: s.machine,
      changed: true,
      result: "ok",
      target: instanceRef(s.current),
      current: instanceRef(s.current),
      fallback: instanceRef(s.fallback),
      running: true,
      ...(s.verb === "cutover-instance" ? { carry: s.carry ?? null } : {}),
    },
    `${s.machine} is running on ${describe(s.current)}${s.fallback ? `; fallback: ${describe(s.fallback)}` : ""}`,
  );
};

function yesNo(o: Opts, k: string): boolean | undefined {
  const s = str(o, k);
  if (s === undefined) return undefined;
  if (s === "yes" || s === "no") return s === "yes";
  throw new UsageError(`--${k} wants yes or no, not '${s}'`, `for example: --${k} no`);
}

const image = { name: "IMAGE", complete: "image" } as const;

/** How long to wait for a boot, and what else must pass, after cutover or fallback. */
const bootOptions = {
  ...timeout,
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
becomes the fallback. The container is down only from its stop to its boot. A stopped
NAME is started: a cutover is checked by booting it, so NAME is left running either way
(boxctl poweroff NAME afterwards, if it should stay off).

Before the stop, while NAME still runs, boxctl carries into the new instance what the
machine's carry policy says (boxctl set-carry; by default its identity: /etc/machine-id,
/etc/hostname, /etc/ssh/ssh_host_*), reading the old instance without changing it.
--carry SPEC uses another policy for this cutover only (none: the pristine image).
A conflict of the /etc merge is reported on stderr (and in --json).

If any step fails - the container does not boot within --timeout, or --check fails -
boxctl goes back on its own to the instance that was current before, starts it, says
what failed and exits 1; the failed instance is kept (see boxctl history/diff). On the
first cutover of a new machine there is nothing to go back to: the machine is left
stopped with no current instance. An image that is not staged changes nothing, and so
does one that cannot boot as a boxctl container: without systemd (/usr/lib/systemd/systemd;
boxctl follows the boot, and runs --check, through it) or an os-release, or a tree that
nspawn's -U shifted on disk (its root owned by a uid of 65536 or more).

Private users: the new instance runs in the machine's own user namespace. uid 0 inside
is BASE on the host, one range of 65536 uids that boxctl allocates once per machine (from
0x70000000 up, outside the range nspawn's -U picks from) and keeps for all its instances.
Every machine shares the image through an idmapped read-only view of it; only the
instance's changes are written, owned BASE+N. --private-users no makes root in the
container root on the host, as boxctl did before: the container can change anything on
the host it can reach. The machine keeps that choice for its next cutovers; instances made
before private users keep running without them.

--check CMD is handed to /bin/sh -c inside the container (so it is the container's
shell that interprets it, as if typed there); a non-zero exit fails the cutover.

Ctrl-C or SIGTERM: boxctl finishes the step in progress, goes back to the instance that
was current before and exits 130 (a second one exits at once). A hang-up (a dropped SSH
session) does not stop it: the cutover runs to its end, checks and fallback included.
If boxctl is killed (crash, kill -9, power cut), the next mutating boxctl command on
NAME completes the cutover if the new instance had already booted, or else rolls back.`,
    options: {
      ...bootOptions,
      "private-users": {
        type: "string",
        arg: "yes|no",
        help: "yes (the default): the new instance runs in the machine's own uid range; no: root inside is root on the host. The machine keeps the choice (status shows it).",
      },
      carry: {
        type: "string",
        arg: "SPEC",
        help: "Carry SPEC this time instead of the machine's policy (see set-carry; none: nothing).",
      },
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const [name, img] = ctx.args as [string, string];
      const spec = str(ctx.opts, "carry");
      const res = await cutover(ctx.r, name, img, {
        wait: ctx.opts.wait === true,
        timeoutMs: parseTimeout(ctx.opts.timeout, "cutover-instance"),
        check: str(ctx.opts, "check"),
        privateUsers: yesNo(ctx.opts, "private-users"),
        ...(spec !== undefined ? { carry: parseCarry(spec) } : {}),
      });
      reportKeep(name, await applyKeep(ctx.r, name));
      return switched(ctx, res);
    },
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
instance it left, on its own, and exits 1. A stopped NAME is started, as by
cutover-instance. Ctrl-C, SIGTERM and a hang-up are handled as for cutover-instance.`,
    options: {
      ...bootOptions,
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const res = await fallback(ctx.r, ctx.args[0] as string, {
        wait: ctx.opts.wait === true,
        timeoutMs: parseTimeout(ctx.opts.timeout, "fallback-instance"),
        check: str(ctx.opts, "check"),
      });
      return switched(ctx, res);
    },
  },
  {
    name: "set-carry",
    group: "image",
    args: [machine, { name: "SPEC" }],
    summary: "Set what every cutover of NAME carries from the old instance into the new one.",
    details: `SPEC is none, or a comma-separated list of:
  identity   /etc/machine-id, /etc/hostname and /etc/ssh/ssh_host_* (the default policy)
  etc        a three-way merge of /etc: what the container changed against its old image
             is kept, anything it did not touch comes from the new image; where both
             changed a path, the container's version wins and the new image's is kept
             beside it as PATH.boxctl-new (reported by the cutover)
  /PATH      an absolute path in the container, copied whole as the old instance sees it
             (image plus changes), e.g. /var/lib/app,/home,/root
Example: boxctl set-carry web1 identity,etc,/var/lib/app. Owners, modes, xattrs, ACLs,
file capabilities and hard links are carried exactly; links are copied as links and
never followed. Carrying writes only into the new instance; the old one, which
fallback-instance returns to, is never changed. For large or live data, Bind= in
/etc/systemd/nspawn/NAME.nspawn is the better tool: it is not copied at all.`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const [name, spec] = ctx.args as [string, string];
      const res = await setCarry(ctx.r, name, spec, { wait: ctx.opts.wait === true });
      const carry = formatCarry(res.policy);
      return done(ctx, { machine: name, changed: res.changed, carry }, `${name}: carry ${carry}`);
    },
  },
  {
    name: "reset",
    group: "image",
    args: [machine, image],
    summary: "Reset NAME's instance of IMAGE to the image as it was installed.",
    details: `Discards every change of NAME's newest instance of IMAGE (or of --instance GEN).
Asks for confirmation on a terminal; without one, --yes is required. If the instance is
current and running, boxctl stops the container, resets the instance and starts it again.
Once it has begun, Ctrl-C or SIGTERM does not stop a reset half-way: it runs to its end.
The changes include the machine's identity (its machine ID, SSH host keys and hostname,
which a cutover carries): after a reset it boots as a new machine. To start again from
the image but keep what the carry policy carries, and the old instance as the way back,
cut over to the same image instead: boxctl cutover-instance NAME IMAGE.`,
    options: {
      ...yes,
      instance: { type: "string", arg: "GEN", help: "Reset this generation of IMAGE instead." },
      ...timeout,
      ...lockWait,
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const [name, img] = ctx.args as [string, string];
      const inst = await reset(ctx.r, name, img, {
        yes: ctx.opts.yes === true,
        wait: ctx.opts.wait === true,
        instance: gen(ctx.opts),
        timeoutMs: parseTimeout(ctx.opts.timeout, "reset"),
      });
      if (!inst) throw new BoxError("nothing reset", "answer y to reset, or add --yes");
      return done(
        ctx,
        { machine: name, changed: true, instance: instanceRef(inst) },
        `${name}: ${describe(inst)} is reset to its image`,
      );
    },
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
    scripted: true,
    run: async (ctx) => {
      const [name, img] = ctx.args as [string, string];
      const res = await deleteInstance(ctx.r, name, img, {
        wait: ctx.opts.wait === true,
        instance: gen(ctx.opts),
      });
      return done(
        ctx,
        {
          machine: name,
          changed: true,
          instance: instanceRef(res.instance),
          wasFallback: res.wasFallback,
        },
        `${name}: deleted ${describe(res.instance)}`,
        ...(res.wasFallback
          ? [`${name}: it was the fallback; ${name} has no fallback instance now`]
          : []),
      );
    },
  },
];
