import { BoxError, EXIT, UsageError } from "../../base/errors.ts";
import { count } from "../../base/format.ts";
import { paths } from "../../base/paths.ts";
import { confirm } from "../../ops/ask.ts";
import { deleteMachine } from "../../ops/delete-machine.ts";
import { df } from "../../ops/df.ts";
import { setKeep } from "../../ops/keep.ts";
import { pinImage, pinInstance } from "../../ops/pin.ts";
import { applyPrune, loadStore, parseKeep, prunePlan, settleInterrupted } from "../../ops/prune.ts";
import { describe } from "../../store/machine.ts";
import { done, emit } from "../output.ts";
import { pruneLines, renderDf } from "../render/store.ts";
import type { Ctx, Verb } from "../types.ts";
import { gen, lockWait, machine, yes } from "./args.ts";

function pinVerb(on: boolean): Verb {
  const name = on ? "pin" : "unpin";
  return {
    name,
    group: "image",
    args: [{ name: "IMAGE|NAME", complete: "image" }],
    summary: on
      ? "Keep an image, or with --instance GEN an instance of NAME, from prune."
      : "Let prune delete an image, or with --instance GEN an instance of NAME, again.",
    details: `${on ? "Pins" : "Unpins"} IMAGE; with --instance GEN, machine NAME's instance GEN instead.
prune never deletes a pinned image or instance (delete-image and delete-instance still do).
The pin is stored in the image's image.json or in the instance's entry in machine.json,
and shown by list-images --json, history and df.`,
    options: {
      instance: {
        type: "string",
        arg: "GEN",
        help: `${on ? "Pin" : "Unpin"} NAME's instance GEN.`,
      },
    },
    mutates: true,
    scripted: true,
    run: async (ctx: Ctx) => {
      const arg = ctx.args[0] as string;
      const g = gen(ctx.opts);
      if (g === undefined) {
        const changed = await pinImage(ctx.r, arg, on);
        return done(
          ctx,
          { changed, image: arg, pinned: on },
          `image ${arg} ${changed ? "is now" : "was already"} ${on ? "pinned" : "unpinned"}`,
        );
      }
      const res = await pinInstance(ctx.r, arg, g, on);
      return done(
        ctx,
        {
          changed: res.changed,
          machine: arg,
          instance: { gen: g, image: res.instance.image },
          pinned: on,
        },
        `${arg}: ${describe(res.instance)} ${res.changed ? "is now" : "was already"} ${on ? "pinned" : "unpinned"}`,
      );
    },
  };
}

export const storeVerbs: Verb[] = [
  {
    name: "df",
    group: "image",
    args: [],
    summary: "Show where the store's disk space goes, and what prune would free.",
    details: `Per image, its size and the bytes only it holds (what deleting it alone would free;
with no hard links shared across images, its whole size); per machine, each instance's
size and its changes (the upper dir); and what boxctl prune (with --keep 0) would free.
All sizes are du -s -B1 -x (allocated bytes), and images + instances + other (state
files, staging, directories) add up to du -s -B1 -x of the store. Walks the whole store.
The JSON schema is documented in docs/json.md.`,
    mutates: false,
    reads: true,
    run: async (ctx) => {
      const d = df();
      emit(
        ctx.opts,
        () => ({ ...d }),
        (legend) => renderDf(d, legend),
      );
      return 0;
    },
  },
  {
    name: "prune",
    group: "image",
    args: [],
    summary: "Delete old instances and the images no instance uses.",
    details: `On every machine, deletes each instance beyond the --keep newest (default 0) that is
neither the current nor the fallback instance nor pinned; then every image that no
remaining instance uses and that is not pinned. The current and fallback instances do not
count among the --keep newest. --dry-run lists exactly what a real run removes.
Asks for confirmation on a terminal; without one, --yes is required.
Each deletion is a delete-instance or delete-image of its own, each crash-safe: a prune
that is interrupted leaves every instance and image either whole or gone, and running
prune again finishes it: prune first completes or rolls back any machine's interrupted
operation, as boxctl recover NAME would. Something that changed since prune looked (an instance became
current, an image came into use), or that another boxctl command holds, is left alone and
reported on stderr (exit 1); with --wait, prune queues behind such a command instead.`,
    options: {
      keep: {
        type: "string",
        arg: "N",
        help: "Keep the N newest other instances of each machine.",
      },
      ...yes,
      wait: {
        type: "boolean",
        help: "If another boxctl command holds a machine or the store, wait.",
      },
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const keep = parseKeep(ctx.opts.keep);
      await settleInterrupted(ctx.r, { wait: ctx.opts.wait === true });
      const { machines, images } = loadStore();
      const plan = prunePlan(machines, images, keep);
      const lines = pruneLines(plan);
      // main.ts refuses --json with --dry-run: a dry run prints, one line each, what a real run removes.
      if (ctx.r.dryRun) {
        process.stdout.write(
          lines.length
            ? `would remove:\n${lines.map((l) => `  ${l}\n`).join("")}`
            : "nothing to prune\n",
        );
        return 0;
      }
      if (lines.length === 0)
        return done(ctx, { changed: false, plan, removed: plan, failed: [] }, "nothing to prune");
      if (ctx.opts.yes !== true) {
        if (!process.stdin.isTTY)
          throw new BoxError(
            "prune deletes instances and images and needs confirmation",
            "run it on a terminal to be asked, or add --yes (see first: boxctl prune --dry-run)",
          );
        process.stderr.write(`prune removes:\n${lines.map((l) => `  ${l}\n`).join("")}`);
        if (!(await confirm("Delete these? [y/N] ")))
          throw new UsageError("nothing pruned", "answer y to prune, or add --yes");
      }
      const res = await applyPrune(ctx.r, plan, { wait: ctx.opts.wait === true });
      const removed = pruneLines(res.removed).map((l) => `removed ${l}`);
      const doc = { changed: removed.length > 0, plan, removed: res.removed, failed: res.failed };
      if (res.failed.length === 0) return done(ctx, doc, ...removed);
      // What it removed, on stdout as after a whole prune; what it left is the error (stderr, exit 1).
      if (!ctx.opts.json) for (const l of removed) process.stdout.write(`${l}\n`);
      throw new BoxError(
        `prune left ${res.failed.length} of ${lines.length} alone: ${res.failed.map((f) => `${f.what}: ${f.message}`).join("; ")}`,
        res.hint ?? "see what changed (boxctl df), then run boxctl prune again",
        EXIT.failed,
        doc,
      );
    },
  },
  {
    name: "delete-machine",
    group: "image",
    args: [machine],
    summary: "Delete a stopped machine and all its instances (as machinectl remove does).",
    details: `For a machine that is retired: deletes every instance of NAME with all its changes,
its record, its mount unit and mount point, and boxctl's settings in NAME.nspawn (the file
goes if nothing else is in it). If NAME starts with the host, it no longer does. Images stay:
boxctl prune then deletes those that no other machine uses. The container must be stopped
first (boxctl poweroff NAME). Asks for confirmation on a terminal; without one, --yes is
required. Once it has begun, Ctrl-C or SIGTERM does not stop it half-way, and a crash or
power cut is finished by the next boxctl command on NAME (or by recovery at boot).
The name is then free for a new machine: boxctl cutover-instance NAME IMAGE.`,
    options: {
      ...yes,
      ...lockWait,
    },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const name = ctx.args[0] as string;
      const res = await deleteMachine(ctx.r, name, {
        yes: ctx.opts.yes === true,
        wait: ctx.opts.wait === true,
      });
      if (!res) throw new UsageError("nothing deleted", "answer y to delete, or add --yes");
      const n = res.instances.length;
      return done(
        ctx,
        { changed: true, ...res },
        res.completedInterrupted
          ? `deleted machine ${name} (boxctl finished the delete-machine that was interrupted)`
          : `deleted machine ${name} and its ${count(n, "instance")}${res.wasEnabled ? "; it no longer starts with the host" : ""}`,
        ...(res.keptMountPoint
          ? [
              `left ${paths.machineRoot(name)}: files were written into it while nothing was mounted there`,
            ]
          : []),
      );
    },
  },
  pinVerb(true),
  pinVerb(false),
  {
    name: "set-keep",
    group: "image",
    args: [machine, { name: "N|off" }],
    summary: "After each successful cutover of NAME, delete its instances beyond the N newest.",
    details: `Sets NAME's keep setting, stored in its machine.json (off by default). After every
successful cutover-instance of NAME, boxctl deletes NAME's instances beyond the N newest
that are neither current, fallback nor pinned, as boxctl prune --keep N does for that
machine alone, and says so on stderr. The current and fallback instances do not count
among the N: set-keep NAME 1 leaves the current, the fallback, the pinned ones and one
more. It never deletes an image (boxctl prune does). off: keep every instance.
boxctl status NAME shows the setting (Keep:).`,
    options: { ...lockWait },
    mutates: true,
    scripted: true,
    run: async (ctx) => {
      const [name, spec] = ctx.args as [string, string];
      const { keep, changed } = await setKeep(ctx.r, name, spec, { wait: ctx.opts.wait === true });
      return done(
        ctx,
        { machine: name, changed, keep },
        `${name}: keep ${keep === null ? "off" : keep}`,
      );
    },
  },
];
