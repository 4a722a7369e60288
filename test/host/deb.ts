// The package the test hosts install: the tests test what ships, so each
// host runs the boxctl of the .deb that npm run deb built from this tree.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * The .deb every test host installs: dist/boxctl_VERSION_all.deb, VERSION
 * being debian/changelog's top entry (npm run deb insists that it matches
 * package.json's version).
 */
export function debFile(): string {
  const top = /^boxctl \(([^)]+)\)/.exec(readFileSync(join(repo, "debian/changelog"), "utf8"));
  if (!top) throw new Error("debian/changelog does not start with a boxctl entry");
  return join(repo, "dist", `boxctl_${top[1]}_all.deb`);
}

/** The newest mtime under dir, to tell a stale .deb from a fresh one. */
function newest(dir: string): { path: string; ms: number } {
  let best = { path: dir, ms: 0 };
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const n = e.isDirectory() ? newest(p) : { path: p, ms: statSync(p).mtimeMs };
    if (n.ms > best.ms) best = n;
  }
  return best;
}

/** Fails unless the .deb exists and is newer than every source file. */
export function checkDeb(deb: string): void {
  const again = "run npm run build && npm run deb (npm test does both)";
  if (!existsSync(deb)) throw new Error(`dist/${basename(deb)} is missing: ${again}`);
  const src = newest(join(repo, "src"));
  if (src.ms > statSync(deb).mtimeMs)
    throw new Error(`dist/${basename(deb)} is older than ${src.path}: ${again}`);
}
