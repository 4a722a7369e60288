// The Debian package's maintainer scripts, run for real. postinst's limit
// is tried in a mount namespace of its own, with a file bound over
// /proc/sys/fs/inotify/max_user_instances, so the machine's is never touched.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { INOTIFY_RAISED } from "../../src/host/limits.ts";
import { tempDir } from "../lib/tmp.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const LIMIT = "/proc/sys/fs/inotify/max_user_instances";
const unshare = spawnSync("unshare", ["-m", "true"]).status === 0;

/** Runs postinst configure with `value` in the limit's place; what it printed and left there. */
function postinst(value: string, readOnly = false) {
  const file = join(tempDir("boxctl-postinst-"), "limit");
  writeFileSync(file, value);
  const r = spawnSync(
    "unshare",
    [
      "-m",
      "sh",
      "-c",
      `mount --bind "$1" ${LIMIT} && ${readOnly ? `mount -o remount,bind,ro ${LIMIT} && ` : ""}exec sh "$2" configure`,
      "sh",
      file,
      join(repo, "debian/postinst"),
    ],
    { encoding: "utf8" },
  );
  return { code: r.status, out: r.stdout + r.stderr, left: readFileSync(file, "utf8").trim() };
}

describe("the Debian package's postinst", { skip: !unshare && "needs root (unshare -m)" }, () => {
  it("raises the inotify limit to the sysctl.d file's value, quietly", () => {
    assert.deepEqual(postinst("128\n"), { code: 0, out: "", left: String(INOTIFY_RAISED) });
  });

  it("never lowers a limit the admin set higher", () => {
    assert.deepEqual(postinst("1048576\n"), { code: 0, out: "", left: "1048576" });
  });

  it("leaves a read-only /proc/sys alone, as inside a container", () => {
    assert.deepEqual(postinst("128\n", true), { code: 0, out: "", left: "128" });
  });
});

describe("the sysctl.d file", () => {
  it("sets the value postinst and boot failures name", () => {
    const conf = readFileSync(join(repo, "debian/sysctl.conf"), "utf8");
    assert.match(conf, new RegExp(`^fs\\.inotify\\.max_user_instances = ${INOTIFY_RAISED}$`, "m"));
    assert.match(
      readFileSync(join(repo, "debian/postinst"), "utf8"),
      new RegExp(`-lt ${INOTIFY_RAISED} \\]`),
    );
  });
});
