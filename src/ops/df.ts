// df: where the store's disk went. Every number is du's (-s -B1 -x:
// allocated bytes, one file system, each inode once), counted in one walk
// of the store (store/usage.ts), so that the parts add up to
// `du -s -B1 -x` of the whole store, which df reports as its total.
//
// Bytes only an image holds: what deleting that image alone would free,
// i.e. its inodes that no other image links (with identical files stored
// once, images share inodes).
import { existsSync } from "node:fs";
import { paths } from "../base/paths.ts";
import { storeUsage } from "../store/usage.ts";
import { loadStore, type PrunePlan, prunePlan } from "./prune.ts";

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

/** Reads the store only: no command to run, so no runner. */
export function df(): DfDoc {
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
  const u = storeUsage(paths.store());
  const used = new Set(machines.flatMap((m) => m.instances.map((i) => i.image)));
  const dfImages: DfImage[] = images.map((im) => ({
    name: im.name,
    bytes: u.image.get(im.name)?.bytes ?? 0,
    onlyBytes: u.image.get(im.name)?.only ?? 0,
    pinned: im.pinned === true,
    inUse: used.has(im.name),
  }));
  const gone = new Set(plan.instances.map((i) => `${i.machine}/${i.gen}`));
  let instancesBytes = 0;
  let freed = u.freedBy(new Set(plan.images));
  const dfMachines: DfDoc["machines"] = machines.map((m) => ({
    name: m.name,
    instances: m.instances.map((i): DfInstance => {
      const key = `${m.name}/${i.gen}`;
      const iu = u.instance.get(key) ?? { bytes: 0, upper: 0 };
      instancesBytes += iu.bytes;
      if (gone.has(key)) freed += iu.bytes;
      return {
        gen: i.gen,
        image: i.image,
        bytes: iu.bytes,
        changesBytes: iu.upper,
        current: i.gen === m.current,
        fallback: i.gen === m.fallback,
        pinned: i.pinned === true,
      };
    }),
  }));
  return {
    store: { path: paths.store(), bytes: u.store },
    imagesBytes: u.images,
    instancesBytes,
    otherBytes: u.store - u.images - instancesBytes,
    images: dfImages,
    machines: dfMachines,
    prune: { ...plan, bytes: freed },
  };
}
