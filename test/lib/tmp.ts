// Temporary directories for tests, removed when the test process exits
// (node --test runs each file in its own process), so that runs leave no
// debris in /tmp or /dev/shm.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dirs: string[] = [];
process.on("exit", () => {
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A mount a failed test left under it: leave the rest for inspection.
    }
  }
});

/** mkdtemp under base (default the system's temp dir), removed at exit. */
export function tempDir(prefix: string, base = tmpdir()): string {
  const dir = mkdtempSync(join(base, prefix));
  dirs.push(dir);
  return dir;
}
