// Whether what the host has for a machine is what its record says: the
// read verbs (status, list) show this instead of trusting machine.json.
// Three things can differ: an operation left pending by a crash or a
// power cut (intent.json), the root mounted from another instance than
// the current one (a mount changed by hand, or a switch in flight), and
// the mount unit in /etc, which the next boot mounts. And one thing can
// be lost: the current instance's files, deleted through the mounted root,
// or its image, deleted from the store by hand.
import { existsSync } from "node:fs";
import { paths } from "../base/paths.ts";
import type { Runner } from "../host/runner.ts";
import { mountedUpper, rootHoldsOs } from "../overlay/root.ts";
import { rootFilesDiffering, upperAtNextBoot } from "../overlay/wiring.ts";
import { readIntent } from "../plan/intent.ts";
import { type Instance, instanceOf, type MachineState } from "../store/machine.ts";

export interface Attention {
  /**
   * in-progress: a boxctl command is working on the machine now.
   * pending-operation: one was interrupted (crash, kill, power cut).
   * mount-differs: the root is mounted from another instance than the current one, or not by boxctl.
   * unit-differs: the mount unit the next boot uses names another instance.
   * unit-outdated: the mount unit names the current instance, but a file boxctl writes for it
   * (the mount unit, NAME.nspawn, the view unit, the nspawn@ drop-in) is missing or not as
   * this boxctl writes it.
   * root-emptied: the current instance is mounted but holds no OS: its files were deleted
   * through the root (machinectl remove does that); recover cannot bring them back.
   * image-missing: the current instance's image is gone from the store (deleted by hand);
   * what runs keeps the files it holds open, but no start finds an OS.
   */
  reason:
    | "in-progress"
    | "pending-operation"
    | "mount-differs"
    | "unit-differs"
    | "unit-outdated"
    | "root-emptied"
    | "image-missing";
  message: string;
  /** The command that settles it; null while another command is at work. */
  settle: string | null;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The first thing about m that is not as its record says; null if all is. */
export function attention(r: Runner, m: MachineState): Attention | null {
  const name = m.name;
  const settle = `boxctl recover ${name}`;
  const intent = readIntent(name);
  if (intent) {
    const what = `${intent.verb} (pid ${intent.pid}, after step '${intent.step}')`;
    return alive(intent.pid) && intent.pid !== process.pid
      ? { reason: "in-progress", message: `${what} is in progress`, settle: null }
      : {
          reason: "pending-operation",
          message: `an interrupted ${what} is pending; the record may not say what runs`,
          settle,
        };
  }
  const cur = instanceOf(m, m.current);
  const want = cur ? paths.upper(name, cur.gen) : null;
  const have = mountedUpper(r, name);
  if (have !== null && have !== want) {
    const gen = m.instances.find((i) => paths.upper(name, i.gen) === have)?.gen;
    return {
      reason: "mount-differs",
      message: `${paths.machineRoot(name)} is mounted from ${gen !== undefined ? `instance ${gen}` : have ? have : "something that is not an overlay"}, but the current instance is ${cur ? cur.gen : "none"}`,
      settle,
    };
  }
  const gone = cur ? imageGone(name, cur) : null;
  if (cur && gone)
    return {
      reason: "image-missing",
      message: gone,
      settle: `boxctl stage-image FILE --name ${cur.image}`,
    };
  if (cur && have !== null && !rootHoldsOs(name))
    return {
      reason: "root-emptied",
      message: `${paths.machineRoot(name)} holds no OS (no os-release): the files of instance ${cur.gen} were deleted through the mounted root, as machinectl remove does`,
      settle:
        m.fallback !== null
          ? `boxctl fallback-instance ${name}`
          : `boxctl reset ${name} ${cur.image} --instance ${cur.gen}`,
    };
  const differing = rootFilesDiffering(name, cur);
  if (differing.length === 0) return null;
  const next = upperAtNextBoot(name);
  if (next !== want)
    return {
      reason: "unit-differs",
      message: `the mount unit the next boot uses names ${next ? next : "nothing"}, not the current instance ${cur ? cur.gen : "(none)"}`,
      settle,
    };
  // A file that is gone (deleted by hand, or by a tool that purges what it
  // does not manage) is named as such, not as edited.
  const missing = differing.filter((p) => !existsSync(p));
  const changed = differing.filter((p) => existsSync(p));
  const one = changed.length === 1;
  const parts = [
    ...(missing.length
      ? [`${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing`]
      : []),
    ...(changed.length
      ? [
          `${changed.join(", ")} ${one ? "is" : "are"} not as this boxctl writes ${one ? "it" : "them"} for it (written by another version of boxctl, or edited by hand)`,
        ]
      : []),
  ];
  return {
    reason: "unit-outdated",
    message: `the mount unit names the current instance, but ${parts.join(", and ")}`,
    settle,
  };
}

/**
 * Settings nspawn does not read: NAME.nspawn in /run/systemd/nspawn or
 * beside the root in /var/lib/machines, while boxctl's in /etc/systemd/nspawn
 * exists (it does for every machine with a current instance). nspawn reads
 * only the first it finds, /etc first, so their Bind=, network and other
 * lines are silently ignored; a new machine's first cutover refuses them
 * (switch-refusals.ts), status names them afterwards.
 */
export function ignoredSettings(name: string): string[] {
  return existsSync(paths.nspawnFile(name)) ? shadowedSettings(name) : [];
}

/** NAME.nspawn files that exist where nspawn looks after /etc/systemd/nspawn. */
export function shadowedSettings(name: string): string[] {
  return paths.shadowedNspawnFiles(name).filter((f) => existsSync(f));
}

/** Why inst cannot start again: its image was deleted from the store; null while it is there. */
export function imageGone(name: string, inst: Instance): string | null {
  const root = paths.imageRoot(inst.image);
  return existsSync(root)
    ? null
    : `${name}'s instance ${inst.gen} is on image ${inst.image}, which is gone from the store (no ${root}): it cannot start again`;
}
