// df: where the store's disk went. Every number is du's (-s -B1 -x:
// allocated bytes, one file system), so that the parts add up to
// `du -s -B1 -x` of the whole store, which df reports as its total.
//
// Bytes only an image holds: du counts an inode with several hard links
// once, so with hard links across images "only" is du of all images minus
// du of all the others (what deleting that image alone would free). When
// the images share no inode (the sum of their separate du equals du of
// them all together), only = total and those extra walks are skipped.
import { existsSync } from "node:fs";
import { paths } from "../base/paths.ts";
import type { Runner } from "../host/runner.ts";
import { loadStore, type PrunePlan, prunePlan } from "./prune.ts";

/** du -s -c -B1 -x over dirs: each dir's bytes (shared inodes in the first dir only) and the total. */
export async function du(r: Runner, dirs: string[]): Promise<{ each: number[]; total: number }> {
  if (dirs.length === 0) return { each: [], total: 0 };
  const res = await r.run(["du", "-s", "-c", "-B1", "-x", "--", ...dirs], { check: false });
  const nums = res.stdout
    .trim()
    .split("\n")
    .map((l) => Number.parseInt(l, 10))
    .filter((n) => Number.isFinite(n));
  // du exits 1 when a file vanished or is unreadable but still prints its counts.
  if (nums.length !== dirs.length + 1)
    throw new Error(`du ${dirs.join(" ")} failed: ${res.stderr.trim()}`);
  return { each: nums.slice(0, -1), total: nums[nums.length - 1] as number };
}

export interface DfImage {
  name: string;
  bytes: number;
  onlyBytes: number;
  pinned: boolean;
  inUse: boolean;
}

export interface DfInstance {
  gen: number;
  image: string;
  /** The whole instance dir: upper (its changes) and work dir. */
  bytes: number;
  /** The upper dir alone: what the container changed. */
  changesBytes: number;
  current: boolean;
  fallback: boolean;
  pinned: boolean;
}

export interface DfDoc {
  store: { path: string; bytes: number };
  imagesBytes: number;
  instancesBytes: number;
  /** State files, staging, directories themselves: the store less images and instances. */
  otherBytes: number;
  images: DfImage[];
  machines: { name: string; instances: DfInstance[] }[];
  prune: PrunePlan & { bytes: number };
}

export async function df(r: Runner): Promise<DfDoc> {
  if (!existsSync(paths.store())) {
    const none = { keep: 0, instances: [], images: [], bytes: 0 };
    return {
      ...{ store: { path: paths.store(), bytes: 0 } },
      imagesBytes: 0,
      instancesBytes: 0,
      otherBytes: 0,
      images: [],
      machines: [],
      prune: none,
    };
  }
  const { machines, images } = loadStore();
  const plan = prunePlan(machines, images, 0);
  const dirs = images.map((i) => paths.image(i.name));
  const all = await du(r, dirs);
  const alone = await Promise.all(dirs.map(async (d) => (await du(r, [d])).total));
  const shared = alone.reduce((a, b) => a + b, 0) !== all.total;
  const only = async (k: number) =>
    shared
      ? all.total -
        (
          await du(
            r,
            dirs.filter((_, j) => j !== k),
          )
        ).total
      : (alone[k] as number);
  const used = new Set(machines.flatMap((m) => m.instances.map((i) => i.image)));
  const dfImages: DfImage[] = [];
  for (const [k, im] of images.entries()) {
    dfImages.push({
      name: im.name,
      bytes: alone[k] as number,
      onlyBytes: await only(k),
      pinned: im.pinned === true,
      inUse: used.has(im.name),
    });
  }
  const dfMachines: DfDoc["machines"] = [];
  let instancesBytes = 0;
  let freed = 0;
  const gone = new Set(plan.instances.map((i) => `${i.machine}/${i.gen}`));
  for (const m of machines) {
    const insts: DfInstance[] = [];
    for (const i of m.instances) {
      const [whole, upper] = await Promise.all([
        du(r, [paths.instance(m.name, i.gen)]),
        du(r, [paths.upper(m.name, i.gen)]),
      ]);
      instancesBytes += whole.total;
      if (gone.has(`${m.name}/${i.gen}`)) freed += whole.total;
      insts.push({
        gen: i.gen,
        image: i.image,
        bytes: whole.total,
        changesBytes: upper.total,
        current: i.gen === m.current,
        fallback: i.gen === m.fallback,
        pinned: i.pinned === true,
      });
    }
    dfMachines.push({ name: m.name, instances: insts });
  }
  // What removing those images frees: all of them less what the others still hold.
  const doomed = new Set(plan.images);
  if (doomed.size) {
    freed += shared
      ? all.total -
        (
          await du(
            r,
            dirs.filter((_, k) => !doomed.has(images[k]?.name ?? "")),
          )
        ).total
      : dfImages.filter((i) => doomed.has(i.name)).reduce((a, i) => a + i.bytes, 0);
  }
  const store = (await du(r, [paths.store()])).total;
  return {
    store: { path: paths.store(), bytes: store },
    imagesBytes: all.total,
    instancesBytes,
    otherBytes: store - all.total - instancesBytes,
    images: dfImages,
    machines: dfMachines,
    prune: { ...plan, bytes: freed },
  };
}
