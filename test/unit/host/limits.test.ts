// host/limits.ts: root's inotify instances, counted in a tree shaped like
// /proc, and on this machine.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  INOTIFY_COUNT_BELOW,
  inotifyHint,
  inotifyWarning,
  readInotifyUse,
} from "../../../src/host/limits.ts";
import { tempDir } from "../../lib/tmp.ts";

// A tree shaped like /proc: root's process, a user's, and one in a private-users container.
const proc = tempDir("boxctl-proc-");
const pid = (n: number, uid: number, ns: string, fds: string[]) => {
  mkdirSync(join(proc, String(n), "fd"), { recursive: true });
  mkdirSync(join(proc, String(n), "ns"));
  writeFileSync(
    join(proc, String(n), "status"),
    `Name:\tx\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\n`,
  );
  symlinkSync(ns, join(proc, String(n), "ns/user"));
  for (const [i, t] of fds.entries()) symlinkSync(t, join(proc, String(n), "fd", String(i)));
};
mkdirSync(join(proc, "self/ns"), { recursive: true });
symlinkSync("user:[1]", join(proc, "self/ns/user"));
mkdirSync(join(proc, "sys/fs/inotify"), { recursive: true });
writeFileSync(join(proc, "sys/fs/inotify/max_user_instances"), "128\n");
pid(1, 0, "user:[1]", ["anon_inode:inotify", "/dev/null", "anon_inode:inotify"]);
pid(2, 1000, "user:[1]", ["anon_inode:inotify"]);
pid(3, 1879048192, "user:[2]", ["anon_inode:inotify", "socket:[5]"]);
pid(4, 0, "user:[1]", ["anon_inode:[eventpoll]"]);

describe("inotify instances (host/limits.ts)", () => {
  it("counts root's instances and those of other user namespaces, not other users'", () => {
    assert.deepEqual(readInotifyUse(proc), { used: 3, max: 128 });
  });

  it("reads nothing where the limit cannot be read", () => {
    assert.equal(readInotifyUse(join(proc, "nowhere")), null);
  });

  it("reads this machine's limit", () => {
    const use = readInotifyUse();
    const max = Number(readFileSync("/proc/sys/fs/inotify/max_user_instances", "utf8"));
    assert.equal(use?.max, max);
  });
});

describe("the count after a good boot", () => {
  it("is skipped at a limit of INOTIFY_COUNT_BELOW or more", () => {
    assert.deepEqual(readInotifyUse(proc, INOTIFY_COUNT_BELOW), { used: 3, max: 128 });
    assert.equal(readInotifyUse(proc, 128), null);
  });

  it("warns only when fewer than 16 instances are left", () => {
    assert.equal(inotifyWarning({ used: 112, max: 128 }), null);
    assert.match(
      inotifyWarning({ used: 120, max: 128 }) ?? "",
      /nearly out of inotify instances \(120 of .*=128 in use\): containers started from now on may boot without D-Bus and logind, or not at all; raise the limit: sysctl -w fs\.inotify\.max_user_instances=8192/,
    );
  });
});

describe("the hint for a failed boot", () => {
  it("is given only when fewer than 16 instances are left", () => {
    assert.equal(inotifyHint({ used: 112, max: 128 }), null);
    assert.equal(inotifyHint(null), null);
    assert.match(
      inotifyHint({ used: 113, max: 128 }) ?? "",
      /113 of fs\.inotify\.max_user_instances=128/,
    );
  });
});
