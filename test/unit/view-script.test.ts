// overlay/views.ts's script (perl-base): it compiles alone, refuses a wrong
// command line, and, as root, mounts idmapped read-only views side by side.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BASE_MIN } from "../../src/base/uids.ts";
import { VIEW_SCRIPT } from "../../src/overlay/views.ts";
import { tempDir } from "../lib/tmp.ts";

describe("the view script", () => {
  const perl = spawnSync("perl", ["-v"]).status === 0;

  it("compiles with perl-base alone", { skip: !perl && "no perl" }, () => {
    const r = spawnSync("perl", ["-c", "-e", VIEW_SCRIPT], {
      encoding: "utf8",
      env: { PERL5LIB: "" },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(VIEW_SCRIPT, /^\s*use (?!strict|warnings)/m);
  });

  it("refuses a wrong command line", { skip: !perl && "no perl" }, () => {
    const r = spawnSync("perl", ["-e", VIEW_SCRIPT, "/a", "/b", "x", "65536"], {
      encoding: "utf8",
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /usage/);
  });

  const root = process.getuid?.() === 0 && perl;
  it("makes two views side by side, as two machines do at boot (as root)", {
    skip: !root && "needs root",
  }, async () => {
    // Both create the same parent directories: one found the other's and failed (EEXIST).
    const dir = tempDir("boxctl-idmap-race-");
    mkdirSync(join(dir, "src"));
    const script = join(dir, "idmap-view.pl");
    writeFileSync(script, VIEW_SCRIPT);
    const view = (dst: string) =>
      new Promise<[number | null, string]>((res) => {
        const c = spawn("perl", [script, join(dir, "src"), dst, String(BASE_MIN), "65536"]);
        let err = "";
        c.stderr.on("data", (d) => {
          err += d;
        });
        c.on("close", (code) => res([code, err]));
      });
    try {
      for (let i = 0; i < 60; i++) {
        const views = ["a", "b"].map((m) => join(dir, `run${i}/views/${m}/1`));
        for (const [code, err] of await Promise.all(views.map(view))) assert.equal(code, 0, err);
        for (const v of views) spawnSync("umount", [v]);
      }
    } finally {
      spawnSync("sh", ["-c", `grep -o ' ${dir}/[^ ]*' /proc/self/mountinfo | xargs -r umount`]);
    }
  });

  it("mounts an idmapped, read-only view (as root)", { skip: !root && "needs root" }, (t) => {
    const dir = tempDir("boxctl-idmap-");
    const src = join(dir, "src");
    const view = join(dir, "run/views/m/1");
    mkdirSync(join(src, "home"), { recursive: true });
    writeFileSync(join(src, "file"), "x");
    chownSync(join(src, "home"), 1000, 1000);
    const script = join(dir, "idmap-view.pl");
    writeFileSync(script, VIEW_SCRIPT);
    const r = spawnSync("perl", [script, src, view, String(BASE_MIN), "65536"], {
      encoding: "utf8",
    });
    if (r.status !== 0 && /open_tree|mount_setattr|unshare/.test(r.stderr)) {
      t.skip(`this kernel or sandbox cannot: ${r.stderr.trim()}`);
      return;
    }
    try {
      assert.equal(r.status, 0, r.stderr);
      assert.equal(statSync(join(view, "file")).uid, BASE_MIN);
      assert.equal(statSync(join(view, "home")).gid, BASE_MIN + 1000);
      assert.equal(statSync(join(src, "file")).uid, 0);
      assert.equal(statSync(join(dir, "run")).mode & 0o777, 0o700);
      assert.throws(() => writeFileSync(join(view, "new"), ""), /EROFS/);
      const again = spawnSync("perl", [script, src, view, String(BASE_MIN), "65536"], {
        encoding: "utf8",
      });
      assert.notEqual(again.status, 0);
      assert.match(again.stderr, /already a mount point/);
      const off = spawnSync("perl", [script, "--umount", view], { encoding: "utf8" });
      assert.equal(off.status, 0, off.stderr);
      assert.throws(() => statSync(join(view, "file")), /ENOENT/);
      const twice = spawnSync("perl", [script, "--umount", view], { encoding: "utf8" });
      assert.equal(twice.status, 0, twice.stderr);
    } finally {
      spawnSync("umount", [view]);
    }
  });
});
