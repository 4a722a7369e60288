// Helpers shared by the instances and crash system tests.
import assert from "node:assert/strict";
import { CUTOVER_STEPS } from "../../src/plan/steps.ts";
import type { ExecResult, TestHost } from "../host/host.ts";

export const STORE = "/var/lib/boxctl";

/** Stages one of the guest images with boxctl stage-image, unless it is staged already. */
export async function stage(host: TestHost, image: string): Promise<void> {
  if (await isDir(host, `${STORE}/images/${image}/rootfs`)) return;
  ok(await host.boxctl(["stage-image", `/srv/images/${image}.tar`]), `staging ${image}`);
}

export async function isDir(host: TestHost, path: string): Promise<boolean> {
  return (await host.exec(["test", "-d", path])).code === 0;
}

/**
 * A staged copy of foo-0.1 that does not boot: its systemd exits at once
 * (the container stops within a second), or ("powers-off") it starts
 * booting and powers itself off before its boot has finished. Both pass
 * cutover-instance's check that the image has systemd.
 */
export async function stageBroken(
  host: TestHost,
  image = "broken",
  how: "init-exits" | "powers-off" = "init-exits",
): Promise<void> {
  await linkedCopy(host, image);
  if (how === "powers-off") {
    // It boots, then powers itself off before its boot is finished.
    const etc = `${STORE}/images/${image}/rootfs/etc/systemd/system`;
    await host.sh(["mkdir", "-p", `${etc}/multi-user.target.wants`]);
    await host.sh(["tee", `${etc}/dies.service`], {
      input: "[Service]\nType=oneshot\nExecStart=/usr/bin/systemctl --no-block poweroff\n",
    });
    await host.sh(["ln", "-s", "../dies.service", `${etc}/multi-user.target.wants/`]);
    return;
  }
  // Removed first, so that tee makes a new file whatever the copy linked to it.
  const init = `${STORE}/images/${image}/rootfs/usr/lib/systemd/systemd`;
  await host.sh(["rm", "-f", init]);
  await host.sh(["tee", init], { input: "#!/bin/sh\nexit 1\n" });
  await host.sh(["chmod", "755", init]);
}

/**
 * foo-0.1 again as image, without staging it: its files hard-linked (not
 * 160 MB copied; change one only by making it anew), and its image.json as
 * stage-image would write it, so that boxctl sees a staged image.
 */
export async function linkedCopy(host: TestHost, image: string): Promise<void> {
  await host.sh(["rm", "-rf", `${STORE}/images/${image}`]);
  await host.sh(["mkdir", "-p", `${STORE}/images/${image}`]);
  await host.sh(["cp", "-al", `${STORE}/images/foo-0.1/rootfs`, `${STORE}/images/${image}/rootfs`]);
  const meta = JSON.parse(await host.sh(["cat", `${STORE}/images/foo-0.1/image.json`]));
  await host.sh(["tee", `${STORE}/images/${image}/image.json`], {
    input: JSON.stringify({ ...meta, name: image }),
  });
}

/**
 * A tarball of a tiny OS tree, for images refused before they would boot:
 * the host's /etc and os-release, and an init (never run) at init.
 */
export async function tinyImage(
  host: TestHost,
  tarball: string,
  o: { init?: string; owner?: number } = {},
): Promise<void> {
  const init = o.init ?? "usr/lib/systemd/systemd";
  const chown = o.owner ? `chown -R ${o.owner}:${o.owner} $d && ` : "";
  await host.sh([
    "sh",
    "-c",
    `d=$(mktemp -d) && mkdir -p $d/usr/lib $(dirname $d/${init}) && cp -a /etc $d/ && cp /usr/lib/os-release $d/usr/lib/ && cp /bin/true $d/${init} && ${chown}tar -C $d --numeric-owner -cf ${tarball} . && rm -rf $d`,
  ]);
}

export interface MachineJson {
  current: number | null;
  fallback: number | null;
  instances: { gen: number; image: string }[];
  lastOperation: { verb: string; result: string; message?: string } | null;
}

export async function machineJson(host: TestHost, name = "system1"): Promise<MachineJson> {
  return JSON.parse(await host.sh(["cat", `${STORE}/machines/${name}/machine.json`]));
}

export function ok(r: ExecResult, what = "command"): ExecResult {
  assert.equal(r.code, 0, `${what} exited ${r.code}\n${r.stderr}${r.stdout}`);
  return r;
}

export async function release(host: TestHost, name = "system1"): Promise<string> {
  const r = await host.inMachine(name, ["cat", "/etc/foo-release"]);
  assert.equal(r.code, 0, r.stderr);
  return /VERSION=(\S+)/.exec(r.stdout)?.[1] ?? "";
}

export async function isActive(host: TestHost, name = "system1"): Promise<boolean> {
  const r = await host.exec(["systemctl", "is-active", `systemd-nspawn@${name}.service`]);
  return r.stdout.trim() === "active";
}

/** When the container's unit last became active: unchanged means it was not restarted. */
export function upSince(host: TestHost, name = "system1"): Promise<string> {
  return host.sh([
    "systemctl",
    "show",
    "-P",
    "ActiveEnterTimestampMonotonic",
    `systemd-nspawn@${name}.service`,
  ]);
}

/** The mounted root's file system type and upper dir. */
export async function mounted(host: TestHost, name = "system1") {
  const r = await host.exec([
    "findmnt",
    "-n",
    "-o",
    "FSTYPE,OPTIONS",
    "--mountpoint",
    `/var/lib/machines/${name}`,
  ]);
  const [fstype, options] = r.stdout.trim().split(/\s+/);
  return { fstype: fstype ?? "", upper: /upperdir=([^,]+)/.exec(options ?? "")?.[1] ?? "" };
}

/**
 * A checksum of what the user made in an instance: /root/data (files,
 * a symlink, modes, xattrs) and the whiteout of /etc/motd. The rest of an
 * upper dir changes on every boot (journal, wtmp), so it is not compared.
 */
export async function userDataSum(host: TestHost, gen: number, name = "system1"): Promise<string> {
  const upper = `${STORE}/machines/${name}/instances/${gen}/upper`;
  return host.sh([
    "sh",
    "-c",
    // Not tar: its pax headers carry atime, which the first read changes.
    'cd "$1" && { find root/data etc/motd -printf "%p %y %M %U %G %s %T@ %l\\n" | sort; find root/data -type f -print0 | sort -z | xargs -0 sha256sum; getfattr -R -h -d -m - root/data etc/motd; } | sha256sum',
    "sh",
    upper,
  ]);
}

/** Writes the data userDataSum covers, inside the running container. */
export async function writeUserData(host: TestHost, tag: string, name = "system1"): Promise<void> {
  const script = `set -e
mkdir -p /root/data
echo ${tag} > /root/data/file
head -c 100000 /dev/urandom > /root/data/blob
ln -sfn file /root/data/link
chmod 600 /root/data/blob
rm -f /etc/motd
sync`;
  ok(await host.inMachine(name, ["sh", "-c", script]), "writing user data");
}

/**
 * The suite's host, for the modules instances.test.ts is split into. A
 * getter: the host boots in before(), after the tests have been registered.
 */
export interface HostCtx {
  readonly host: TestHost;
}

/**
 * The state the middle of instances.test.ts starts from, made if it is
 * missing (a part run alone with --test-name-pattern): system1 running on
 * instance 1 (foo-0.1, with /root/marker), instance 2 (foo-0.2) its fallback.
 */
export async function ensureSystem1(host: TestHost): Promise<void> {
  await stage(host, "foo-0.1");
  await stage(host, "foo-0.2");
  if (!(await isDir(host, `${STORE}/machines/system1`))) {
    ok(await host.boxctl(["cutover-instance", "system1", "foo-0.1"]));
    ok(await host.inMachine("system1", ["sh", "-c", "echo hi > /root/marker"]));
    ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2"]));
    ok(await host.boxctl(["fallback-instance", "system1"]));
  }
  if (!(await isActive(host))) ok(await host.boxctl(["start", "system1"]));
}

/**
 * The crash and power-cut tests' start: system1 cut over to foo-0.1, then to
 * foo-0.2, with user data written in each instance (writeUserData), so
 * that a test can check every instance's upper dir is left as it was.
 */
export async function twoInstancesWithData(host: TestHost): Promise<void> {
  await stage(host, "foo-0.1");
  await stage(host, "foo-0.2");
  ok(await host.boxctl(["cutover-instance", "system1", "foo-0.1"]));
  await writeUserData(host, "one");
  ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2"]));
  await writeUserData(host, "two");
}

/**
 * Whether a switch stopped after step is completed rather than rolled back.
 * Written out here, not taken from plan/steps.ts, so that the tests pin the
 * commit point instead of following it.
 */
export const committed = (steps: readonly string[], step: string) =>
  steps.indexOf(step) >= steps.indexOf("wait-booted");

/**
 * After a cutover of system1 to foo-0.2, stopped after step, has been settled
 * (by recovery now, or at boot): the machine is on the new instance with the
 * old as fallback, and a fallback works from it, or it is exactly as before.
 * The new instance, which is always listed, is then deleted so that the next
 * case starts alike.
 */
export async function checkSettledCutover(
  host: TestHost,
  step: string,
  m0: MachineJson,
  m: MachineJson,
): Promise<void> {
  const newGen = Math.max(...m.instances.map((i) => i.gen));
  if (committed(CUTOVER_STEPS, step)) {
    assert.deepEqual([m.current, m.fallback], [newGen, m0.current]);
    ok(await host.boxctl(["fallback-instance", "system1"]));
  } else assert.deepEqual([m.current, m.fallback], [m0.current, m0.fallback]);
  if (newGen > Math.max(...m0.instances.map((i) => i.gen)))
    ok(await host.boxctl(["delete-instance", "system1", "foo-0.2", "--instance", String(newGen)]));
}
