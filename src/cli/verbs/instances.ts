import type { Verb } from "../types.ts";

const machine = { name: "NAME", complete: "machine" } as const;
const image = { name: "IMAGE", complete: "image" } as const;
const lockWait = {
  wait: { type: "boolean", help: "If another boxctl command holds the machine, wait for it." },
} as const;

export const instanceVerbs: Verb[] = [
  {
    name: "cutover-instance",
    group: "image",
    args: [machine, image],
    summary: "Actively cut over to a new container instance of IMAGE.",
    details: `Powers NAME off (waiting until it has stopped), creates a new instance of IMAGE,
mounts it at /var/lib/machines/NAME and starts the container. If the container does not
boot within --timeout, or --check fails, boxctl falls back to the previous instance on
its own, starts it, and exits 1.`,
    options: {
      timeout: {
        type: "string",
        arg: "S",
        help: "Seconds to wait for the container to boot (default 90).",
      },
      check: {
        type: "string",
        arg: "CMD",
        help: "A command that must also succeed inside the container.",
      },
      ...lockWait,
    },
    mutates: true,
  },
  {
    name: "fallback-instance",
    group: "image",
    args: [machine],
    summary: "Fall back to the previously used instance, with all its changes.",
    options: { ...lockWait },
    mutates: true,
  },
  {
    name: "reset",
    group: "image",
    args: [machine, image],
    summary: "Reset NAME's instance of IMAGE to the image as it was installed.",
    options: {
      yes: { type: "boolean", short: "y", help: "Do not ask for confirmation." },
      ...lockWait,
    },
    mutates: true,
  },
  {
    name: "delete-instance",
    group: "image",
    args: [machine, image],
    summary: "Delete the instance of NAME based on IMAGE (never the current one).",
    options: { ...lockWait },
    mutates: true,
  },
  {
    name: "history",
    group: "image",
    args: [machine],
    summary: "List NAME's instances, marking the current and fallback ones.",
    mutates: false,
    reads: true,
  },
  {
    name: "diff",
    group: "image",
    args: [machine],
    summary: "List the paths an instance added, modified or deleted.",
    options: {
      instance: {
        type: "string",
        arg: "GEN",
        help: "The instance's generation (default: current).",
      },
    },
    mutates: false,
    reads: true,
  },
];
