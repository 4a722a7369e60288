import type { Verb } from "../types.ts";

const machine = { name: "NAME", complete: "machine" } as const;
const noBlock = { "no-block": { type: "boolean", help: "Only ask; do not wait." } } as const;

export const containerVerbs: Verb[] = [
  {
    name: "configure",
    group: "container",
    args: [machine],
    summary: "Enter the container without booting it (for making filesystem changes).",
    mutates: true,
  },
  {
    name: "disable",
    group: "container",
    args: [machine],
    summary: "Ensure the container does *not* start upon reboot of the host.",
    mutates: true,
  },
  {
    name: "enable",
    group: "container",
    args: [machine],
    summary: "Ensure the container starts upon reboot of the host.",
    mutates: true,
  },
  {
    name: "list",
    group: "container",
    args: [],
    summary: "Show the containers boxctl manages, and other running machines.",
    mutates: false,
    reads: true,
  },
  {
    name: "login",
    group: "container",
    args: [machine],
    summary: "Open a TTY login session in the container.",
    mutates: false,
  },
  {
    name: "shell",
    group: "container",
    args: [machine, { name: "CMD", optional: true, rest: true }],
    summary: "Run a command in the container and return its exit status.",
    mutates: true,
  },
  {
    name: "poweroff",
    group: "container",
    args: [machine],
    summary: "Shut the container down cleanly; waits until it has stopped.",
    options: { ...noBlock },
    mutates: true,
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
    mutates: true,
  },
  {
    name: "start",
    group: "container",
    args: [machine],
    summary: "Power the container on; returns once it has booted.",
    options: { ...noBlock },
    mutates: true,
  },
  {
    name: "status",
    group: "container",
    args: [machine],
    summary: "Show the container's state, instances, mount and last cutover.",
    mutates: false,
    reads: true,
  },
  {
    name: "terminate",
    group: "container",
    args: [machine],
    summary: "Forcefully kill the container (not recommended).",
    details: `Kills every process in the container at once, without a shutdown: services get no
chance to flush or close their files, so data they were writing can be lost or corrupt.
Use poweroff unless the container no longer responds to it.`,
    mutates: true,
  },
  {
    name: "app-status",
    group: "container",
    args: [machine],
    summary: "Show whether the machine's listed services are active inside it.",
    options: {
      services: {
        type: "string",
        arg: "A,B",
        help: "Check these units instead of the configured list.",
      },
    },
    mutates: false,
    reads: true,
  },
];
