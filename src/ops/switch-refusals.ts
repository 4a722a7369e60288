// What a switch refuses before anything changes: a cutover to a name that
// another container holds or whose settings nspawn would no longer read, an
// image that cannot boot, a carried path that is a mount point, and an
// instance whose image was deleted from the store.
// Each is checked while the command holds its locks, before the first step.
import { existsSync, readFileSync } from "node:fs";
import { unbootable } from "../archive/layout.ts";
import { BoxError } from "../base/errors.ts";
import { paths } from "../base/paths.ts";
import { mountedPath, policyOf } from "../carry/policy.ts";
import { mountPoints } from "../host/mounts.ts";
import type { Runner } from "../host/runner.ts";
import { machinedKnows, machineLeader } from "../host/systemd.ts";
import { type Instance, instanceOf, type MachineState } from "../store/machine.ts";
import { imageGone, shadowedSettings } from "./drift.ts";
import type { SwitchOptions, Verb } from "./switch-plan.ts";

/**
 * A new machine's name must be free in machined too, not only at its mount
 * point: a container of that name that runs from elsewhere (systemd-nspawn
 * -D DIR -M NAME, a .raw image) makes systemd-nspawn@NAME fail ("Machine
 * already exists") once boxctl has mounted and recorded the new machine;
 * an image of that name elsewhere (/etc/machines, NAME.raw) is another
 * container for machinectl under the same name.
 */
export async function refuseTakenName(r: Runner, name: string): Promise<void> {
  const { unit, image } = await machinedKnows(r, name);
  if (unit !== null)
    throw new BoxError(
      `a machine named ${name} is already running (${unit}), and boxctl does not manage it`,
      `pick another machine name, or stop that one first (machinectl poweroff ${name}; machinectl terminate ${name} if it does not run systemd)`,
    );
  if (image !== null)
    throw new BoxError(
      `an image named ${name} already exists at ${image} (machinectl list-images), and boxctl does not manage it`,
      `pick another machine name, or rename that image (machinectl rename ${name} ${name}-old)`,
    );
}

/**
 * A new machine's settings where nspawn would no longer read them: beside
 * its image in /var/lib/machines (where a container moved to boxctl had
 * them), or in /run. boxctl writes /etc/systemd/nspawn/NAME.nspawn, and
 * nspawn reads the first of the three it finds, so their Bind=, network and
 * other lines would silently stop applying.
 */
export function refuseShadowedSettings(name: string): void {
  const target = paths.nspawnFile(name);
  const [found] = shadowedSettings(name);
  if (!found) return;
  throw new BoxError(
    `${found} would be ignored: boxctl writes ${name}'s settings to ${target}, and systemd-nspawn reads only the first NAME.nspawn it finds, ${paths.nspawnDir()} first`,
    existsSync(target)
      ? `merge its lines into ${target}, then remove it`
      : `move it there (mv ${found} ${target}); boxctl keeps its lines and adds its own`,
  );
}

/** An image that cannot boot as a boxctl container is refused before its cutover stops anything. */
export function refuseUnbootable(image: string): void {
  const no = unbootable(paths.imageRoot(image));
  if (no)
    throw new BoxError(`image '${image}' cannot boot as a boxctl container: ${no.why}`, no.fix);
}

/** A carried path that is a mount point inside the running container is refused before anything changes. */
export async function refuseMountedCarry(
  r: Runner,
  m: MachineState,
  opts: SwitchOptions,
): Promise<void> {
  const policy = opts.carry ?? policyOf(m.carry);
  if (policy.paths.length === 0 || m.current === null) return;
  const leader = await machineLeader(r, m.name);
  if (leader === null) return;
  let mounts: string[] = [];
  try {
    mounts = mountPoints(readFileSync(`/proc/${leader}/mountinfo`, "utf8"));
  } catch {
    return; // The container stopped meanwhile: nothing is mounted in it.
  }
  const hit = mountedPath(policy, mounts);
  if (hit)
    throw new BoxError(
      `cannot carry ${hit.path}: ${hit.mount} is a mount point inside ${m.name}, and boxctl carries the instance's own files, not what is mounted over them`,
      `drop it from the policy (boxctl set-carry ${m.name} SPEC, or --carry) and keep it with Bind= in /etc/systemd/nspawn/${m.name}.nspawn`,
    );
}

/**
 * A switch whose target or way back lies on an image deleted from the store
 * (by hand: delete-image refuses an image in use) is refused before anything
 * stops. Without its image an instance boots no OS; the way back could not
 * start; a cutover carries from the current instance's whole tree; and with
 * private users every mount of the root still maps the current instance's
 * image until a switch has completed.
 */
export function refuseGoneImages(verb: Verb, m: MachineState, target: Instance | undefined): void {
  const name = m.name;
  const cur = instanceOf(m, m.current);
  const stage = (i: Instance) =>
    `stage it again under its name from the archive it came from (boxctl stage-image FILE --name ${i.image}), then run this again`;
  const targetGone = target ? imageGone(name, target) : null;
  if (target && targetGone) throw new BoxError(`cannot ${verb}: ${targetGone}`, stage(target));
  const curGone = cur ? imageGone(name, cur) : null;
  if (!cur || !curGone) return;
  if (verb === "cutover-instance")
    throw new BoxError(
      `cannot cutover-instance: ${curGone}, and a cutover carries from that instance and goes back to it if the new one fails`,
      stage(cur),
    );
  if (cur.uidBase)
    throw new BoxError(
      `cannot fallback-instance: ${curGone}, and with private users every mount of ${name}'s root maps that image until a switch away from it completes`,
      stage(cur),
    );
}
