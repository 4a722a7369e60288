// A store for the fake host's operations to work on: a temporary root
// (paths.relocate) with staged images, and the machine records they write.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { paths, relocate } from "../../src/base/paths.ts";
import { loadMachine, type MachineState } from "../../src/store/machine.ts";
import { tempDir } from "./tmp.ts";

/** NAME's machine record, which the test expects the operations to have written. */
export function recordOf(name: string): MachineState {
  const m = loadMachine(name);
  if (!m) throw new Error(`no machine.json for ${name}`);
  return m;
}

/** A fresh temporary root holding the given staged images (empty rootfs, valid image.json). */
export function tempRoot(images: string[]): string {
  // On tmpfs where there is one: the operations fsync every state file.
  const dir = tempDir("boxctl-ops-", existsSync("/dev/shm") ? "/dev/shm" : undefined);
  relocate(dir);
  // Present on every systemd host; boxctl creates only its own directories.
  mkdirSync(paths.unitDir(), { recursive: true });
  for (const image of images) fakeImage(image);
  return dir;
}

/** An image as staging leaves it, in the store tempRoot set up: what a cutover asks of one. */
export function fakeImage(image: string): void {
  mkdirSync(paths.imageRoot(image), { recursive: true, mode: 0o755 });
  // What a cutover asks of an image (archive/layout.ts: unbootable): an os-release and systemd.
  mkdirSync(join(paths.imageRoot(image), "etc"));
  writeFileSync(join(paths.imageRoot(image), "etc/os-release"), "ID=debian\n");
  mkdirSync(join(paths.imageRoot(image), "usr/lib/systemd"), { recursive: true });
  writeFileSync(join(paths.imageRoot(image), "usr/lib/systemd/systemd"), "", { mode: 0o755 });
  writeFileSync(
    paths.imageMeta(image),
    JSON.stringify({
      version: 1,
      name: image,
      os: "Debian GNU/Linux 12 (bookworm)",
      size: 0,
      staged: new Date().toISOString(),
      sha256: "0".repeat(64),
      source: `${image}.tar`,
    }),
  );
}
