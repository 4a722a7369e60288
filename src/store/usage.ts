// Where the store's disk went, counted as GNU du counts it (du -s -B1 -x:
// allocated blocks, st_blocks x 512, of every entry, each inode once, never
// crossing into another file system), in ONE walk of the store. With
// identical files hard-linked across images, "the bytes only this image
// holds" needs to know, for every inode, which images link it; asking du
// for that meant one du of all the other images per image, N walks of the
// whole image store for N images (a minute with fifty). Here it is a map
// from inode to the images that hold it.
import { type BigIntStats, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** The groups an entry counts in, from its path relative to the store ("" for the store itself). */
export interface Owner {
  image?: string;
  /** "MACHINE/GEN" for everything under machines/MACHINE/instances/GEN. */
  instance?: string;
  /** True under that instance's upper dir. */
  upper?: boolean;
}

export function ownerOf(rel: string): Owner {
  const p = rel.split("/");
  if (p[0] === "images" && p[1]) return { image: p[1] };
  if (p[0] === "machines" && p[1] && p[2] === "instances" && p[3])
    return { instance: `${p[1]}/${p[3]}`, upper: p[4] === "upper" };
  return {};
}

export interface Usage {
  store: number;
  /** Every inode with a link in some image, once. */
  images: number;
  /** Per image: its inodes (du of it alone), and those no other image links. */
  image: Map<string, { bytes: number; only: number }>;
  instance: Map<string, { bytes: number; upper: number }>;
  /** What deleting these images together frees: inodes linked by them alone. */
  freedBy(names: ReadonlySet<string>): number;
}

/** Adds bytes to a group, counting an inode with several links only once per group. */
class Group {
  bytes = 0;
  private seen = new Set<bigint>();
  add(st: BigIntStats, n: number): void {
    if (st.nlink > 1n) {
      if (this.seen.has(st.ino)) return;
      this.seen.add(st.ino);
    }
    this.bytes += n;
  }
}

export function storeUsage(root: string): Usage {
  const top = lstatSync(root, { bigint: true });
  const store = new Group();
  const imageGroups = new Map<string, Group>();
  const instances = new Map<string, { whole: Group; upper: Group }>();
  // Inodes with several links that some image holds: their size and which images.
  const linked = new Map<bigint, { n: number; images: Set<string> }>();
  const group = <T>(m: Map<string, T>, k: string, make: () => T): T => {
    const g = m.get(k) ?? make();
    m.set(k, g);
    return g;
  };
  const count = (rel: string, st: BigIntStats) => {
    const n = Number(st.blocks) * 512;
    store.add(st, n);
    const o = ownerOf(rel);
    if (o.image) {
      group(imageGroups, o.image, () => new Group()).add(st, n);
      if (st.nlink > 1n) {
        const l = linked.get(st.ino) ?? { n, images: new Set<string>() };
        linked.set(st.ino, l);
        l.images.add(o.image);
      }
    }
    if (o.instance) {
      const g = group(instances, o.instance, () => ({ whole: new Group(), upper: new Group() }));
      g.whole.add(st, n);
      if (o.upper) g.upper.add(st, n);
    }
  };
  count("", top);
  const todo = [""];
  while (todo.length) {
    const rel = todo.pop() as string;
    let names: string[];
    try {
      names = readdirSync(rel ? join(root, rel) : root);
    } catch {
      continue; // gone meanwhile, as du would skip it
    }
    for (const name of names) {
      const sub = rel ? `${rel}/${name}` : name;
      let st: BigIntStats;
      try {
        st = lstatSync(join(root, sub), { bigint: true });
      } catch {
        continue;
      }
      // -x: another file system mounted in the store is neither counted nor entered.
      if (st.dev !== top.dev) continue;
      count(sub, st);
      if (st.isDirectory()) todo.push(sub);
    }
  }
  const image = new Map<string, { bytes: number; only: number }>();
  for (const [name, g] of imageGroups) image.set(name, { bytes: g.bytes, only: g.bytes });
  let images = [...imageGroups.values()].reduce((a, g) => a + g.bytes, 0);
  for (const l of linked.values()) {
    // Counted once in each image that links it: take back all but one.
    images -= l.n * (l.images.size - 1);
    if (l.images.size > 1)
      for (const name of l.images) (image.get(name) as { only: number }).only -= l.n;
  }
  const instance = new Map<string, { bytes: number; upper: number }>();
  for (const [k, g] of instances) instance.set(k, { bytes: g.whole.bytes, upper: g.upper.bytes });
  const freedBy = (names: ReadonlySet<string>) => {
    let freed = 0;
    for (const [name, u] of image) if (names.has(name)) freed += u.only;
    // Shared only among the images named: freed too, once.
    for (const l of linked.values())
      if (l.images.size > 1 && [...l.images].every((n) => names.has(n))) freed += l.n;
    return freed;
  };
  return { store: store.bytes, images, image, instance, freedBy };
}
