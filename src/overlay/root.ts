// A machine's root: the overlay of one instance at /var/lib/machines/NAME,
// mounted by its generated mount unit, and the .nspawn settings beside it.
// Switching the root between instances is the shared core of cutover,
// fallback, reset and recovery; every function here is idempotent, so
// that recovery can run it again after a crash.
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { mountAt, overlayOption } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import {
  mountUnitName,
  resetFailed,
  startMount,
  stopMachine,
  stopMountUnit,
  umount,
} from "../host/systemd.ts";
import { showUnits } from "../host/unit-state.ts";
import { removeInstanceDirs } from "../store/instances.ts";
import type { Instance } from "../store/machine.ts";
import { viewUnitName } from "./views.ts";
import { removeViewUnit, rootUnitsMatch, writeRootUnits } from "./wiring.ts";

/** The upper dir of the overlay mounted at the machine's root now: null if nothing is mounted, "" if it is not an overlay. */
export function mountedUpper(r: Runner, name: string): string | null {
  const m = mountAt(paths.machineRoot(name), r.mountinfo());
  if (!m) return null;
  if (m.fstype !== "overlay") return "";
  return overlayOption(m.superOptions, "upperdir") ?? "";
}

/**
 * Whether the machine's root holds an OS: an os-release, as nspawn asks
 * before it boots a directory. Not followed: an absolute link points into
 * the container, not the host.
 */
export function rootHoldsOs(name: string): boolean {
  return ["etc/os-release", "usr/lib/os-release"].some((p) => {
    try {
      lstatSync(join(paths.machineRoot(name), p));
      return true;
    } catch {
      return false;
    }
  });
}

/** Unmounts the machine's root through its unit (umount(8) if systemd cannot). */
export async function stopMount(r: Runner, name: string): Promise<void> {
  const root = paths.machineRoot(name);
  const res = await stopMountUnit(r, root);
  if (res.code !== 0 && mountedUpper(r, name) !== null) {
    // systemd can fail to spawn umount for a unit whose cgroup vanished
    // (seen on cgroup v1 hosts after the container stopped); umount(8) by
    // hand does the same, and systemd follows the mount table. A root a
    // host process uses stays busy: that error names the process's finder.
    await unmountRoot(r, name);
    // Until systemd has noticed, a start of the mount unit would mount nothing.
    await r.whenReal(() => waitUnmountSettled(r, root, null));
    await resetFailed(r, mountUnitName(root));
  }
  const left = r.whenReal(() => mountedUpper(r, name)) ?? null;
  if (left !== null) {
    throw new BoxError(
      `${root} is still mounted after stopping its mount unit`,
      `find what keeps it busy with: fuser -vm ${root}`,
    );
  }
}

/** Unmounts the machine's root if anything is mounted there. */
export async function unmountIfMounted(r: Runner, name: string): Promise<void> {
  if (r.dryRun || mountedUpper(r, name) !== null) await stopMount(r, name);
}

/**
 * Makes inst the overlay mounted at the machine's root (nothing, for
 * undefined), stopping the container first if anything has to change.
 */
export async function remountTo(r: Runner, name: string, inst: Instance | undefined) {
  const want = inst ? paths.upper(name, inst.gen) : null;
  const have = mountedUpper(r, name);
  if (have === want) {
    // The right instance is mounted; only the unit files may need putting back.
    if (!rootUnitsMatch(name, inst)) await writeRootUnits(r, name, inst);
    return;
  }
  await stopMachine(r, name);
  if (have !== null) await stopMount(r, name);
  await writeRootUnits(r, name, inst);
  await resetFailed(r, mountUnitName(paths.machineRoot(name)));
  if (inst) await startMount(r, paths.machineRoot(name));
}

/**
 * Puts target's overlay at the machine's root on the host while the
 * container, if it runs, goes on running on the old one. A running
 * container's root is its own mount namespace's copy of the old overlay:
 * unmounting the host's copy neither disturbs it nor is refused by it, and
 * the new mount does not propagate into it (checked on systemd 252 and
 * 257). So the unmount and the mount, two processes, happen before the
 * downtime instead of in it, and the restart that follows is a plain one.
 * Until that restart the host and the container see different roots;
 * recovery handles that by rolling back through remountTo, which stops
 * the container first.
 */
export async function remountLive(r: Runner, name: string, target: Instance): Promise<void> {
  const root = paths.machineRoot(name);
  const have = mountedUpper(r, name);
  if (have === paths.upper(name, target.gen)) return;
  if (have !== null) {
    await unmountRoot(r, name);
    await r.whenReal(() => waitUnmountSettled(r, root, viewOf(name, have)));
  }
  await startMount(r, root);
  r.whenReal(() => checkMounted(r, name, target));
}

/** The view unit of the instance whose upper dir is upper, if it has private users. */
function viewOf(name: string, upper: string): string | null {
  const gen = /\/instances\/(\d+)\/upper$/.exec(upper)?.[1];
  return gen ? viewUnitName(name, Number(gen)) : null;
}

/**
 * After the host's umount of the root, waits until systemd has noticed:
 * it learns of an unmount from the mount table, not from us, and asking
 * it to start the mount unit before that would be a no-op. And the old
 * instance's idmapped view (view: its unit) stops by itself once its
 * overlay is unmounted (StopWhenUnneeded). During a switch the mount unit
 * still requires it (the /etc unit's Requires= stays under the /run
 * drop-in, see wiring.ts), so starting the mount while that stop is under
 * way would queue a start against the stop and fail as a dependency: wait
 * for the stop to end too; the start then mounts it again, unused, until
 * the commit. Both in one systemctl per look.
 */
async function waitUnmountSettled(r: Runner, root: string, view: string | null): Promise<void> {
  const unit = mountUnitName(root);
  for (let i = 0; i < 1000; i++) {
    const u = await showUnits(r, view ? [unit, view] : [unit]);
    const mountDown = !["active", "deactivating"].includes(u.get(unit)?.activeState ?? "");
    const v = view ? u.get(view) : undefined;
    // It stops by itself, but systemd may not have queued that stop yet.
    const viewDown =
      !v || ((v.activeState === "inactive" || v.activeState === "failed") && v.job === "");
    if (mountDown && viewDown) return;
    if (!mountDown && i >= 500)
      throw new BoxError(
        `systemd still reports ${unit} active after ${root} was unmounted`,
        `see: systemctl status ${unit}`,
      );
    await r.sleep(10);
  }
}

/**
 * Unmounts the host's copy of the root. A busy root is usually brief: a
 * container that has just stopped keeps it busy until the kernel has
 * freed its mount namespace, asynchronously. A root that a host process
 * really uses stays busy, and that error names the fix.
 */
async function unmountRoot(r: Runner, name: string): Promise<void> {
  const root = paths.machineRoot(name);
  for (let i = 0; ; i++) {
    const res = await umount(r, root);
    if (r.dryRun || mountedUpper(r, name) === null) return;
    if (i >= 10) {
      // The runner runs umount in the C locale, so its message is English.
      const why = /busy/i.test(res.stderr)
        ? "it is busy (a process on the host uses it)"
        : res.stderr.trim() || `umount exited ${res.code}`;
      throw new BoxError(
        `${root} could not be unmounted; ${why}`,
        `find what keeps it busy with: fuser -vm ${root}`,
      );
    }
    // A busy root gets time; a umount that succeeded with a mount still
    // there uncovered an earlier one stacked under it, which goes at once.
    if (res.code !== 0) await r.sleep(300);
  }
}

function checkMounted(r: Runner, name: string, target: Instance): void {
  const have = mountedUpper(r, name);
  if (have !== paths.upper(name, target.gen)) {
    throw new BoxError(
      `${paths.machineRoot(name)} has ${have ? `${have} mounted` : "nothing mounted"}, not instance ${target.gen}`,
      `see: systemctl status ${mountUnitName(paths.machineRoot(name))}`,
    );
  }
}

/** Deletes an instance's directories; never one that is mounted as the machine's root. */
export async function removeInstance(r: Runner, name: string, gen: number): Promise<void> {
  // The current instance is never deleted; this guards against a mount the state does not know.
  if (mountedUpper(r, name) === paths.upper(name, gen)) {
    throw new BoxError(
      `instance ${gen} is mounted at ${paths.machineRoot(name)}`,
      `run boxctl recover ${name}, then try again`,
    );
  }
  await removeInstanceDirs(r, name, gen);
  removeViewUnit(r, name, gen);
}
