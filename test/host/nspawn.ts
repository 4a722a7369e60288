// How a test host's systemd-nspawn is started: the one command line every
// host boots with, from a cgroup of its own.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { hostCgroups } from "./roots.ts";
import { type Suite, UNIFIED } from "./suites.ts";

export interface HostSpawn {
  name: string;
  suite: Suite;
  /** The host's root directory. */
  dir: string;
  /** Where its console goes (an open file descriptor). */
  log: number;
  /** Read-only binds, SOURCE:DEST. */
  bindsRo: string[];
}

/** nspawn, booting the host; its init is a child of the returned process. */
export function spawnHost(h: HostSpawn): ChildProcess {
  // nspawn starts from a cgroup of the host's own (see hostCgroups): a
  // shell moves itself there, then becomes nspawn.
  const cgroups = hostCgroups(h.name);
  for (const c of cgroups) mkdirSync(c, { recursive: true });
  return spawn(
    "/bin/sh",
    [
      "-c",
      'for g in $BX_CGROUPS; do echo $$ > "$g/cgroup.procs"; done; exec "$@"',
      "sh",
      "systemd-nspawn",
      "--boot",
      "--register=no",
      "--keep-unit",
      "--capability=all",
      // Its console goes to NAME.log. Not passive: nothing reads a passive
      // console, and once its buffer was full (a shutdown that stopped 25
      // containers) systemd blocked on the write for good.
      "--console=read-only",
      // Its own network namespace: nested containers' veth links (ve-NAME)
      // then cannot collide between test hosts that run side by side.
      "--private-network",
      `--machine=${h.name}`,
      `--directory=${h.dir}`,
      ...h.bindsRo.map((b) => `--bind-ro=${b}`),
    ],
    {
      stdio: ["ignore", h.log, h.log],
      env: {
        ...process.env,
        BX_CGROUPS: cgroups.join(" "),
        ...(UNIFIED.has(h.suite) ? { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: "1" } : {}),
      },
    },
  );
}
