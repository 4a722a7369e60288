// The Debian package, as an admin meets it: installed with apt-get on a host
// with only Debian's packages (the host fixture installs dist/'s .deb), its
// man page, its bash completion, its version, the seed's workflow, an
// upgrade while a machine runs, then remove and purge. A module, not a
// *.test.ts file: it runs last on foundation.test.ts's fresh hosts of the
// stable releases rather than booting hosts of its own (sid installs the
// same .deb for every other system test).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as v from "valibot";
import { StatusJson } from "../../src/cli/json-schema.ts";
import type { TestHost } from "../host/host.ts";
import { type HostCtx, isActive, ok, release, stage } from "./instances-helpers.ts";

const repo = join(dirname(fileURLToPath(import.meta.url)), "../..");
const N: string = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version;
/** N in a regular expression. */
const N_RE = N.replace(/\./g, "\\.");
/** N+1: N with its last number bumped, built by the test itself. */
const NEXT = N.replace(/(\d+)$/, (d) => String(Number(d) + 1));

/** Builds the N+1 package once for every suite, on the controller, as a release would. */
let next: { dir: string; file: string } | undefined;
function buildNext(): string {
  if (!next) {
    const dir = mkdtempSync(join(tmpdir(), "boxctl-next-"));
    const out = execFileSync("npm", ["run", "--silent", "deb"], {
      cwd: repo,
      encoding: "utf8",
      env: { ...process.env, BOXCTL_VERSION: NEXT, BOXCTL_DEB_DIR: dir },
    });
    next = { dir, file: out.trim().split("\n").pop() as string };
  }
  return next.file;
}
after(() => {
  if (next) rmSync(next.dir, { recursive: true, force: true });
});

/** Whether rev (a git describe, less its -dirty) names a commit of this repository. */
function isCommit(rev: string): boolean {
  try {
    execFileSync("git", ["rev-parse", "--verify", "--quiet", `${rev}^{commit}`], {
      cwd: repo,
      stdio: "ignore",
    });
    return true;
  } catch {
    return false;
  }
}

/** Leaves boxctl purged: register it last on its host. */
export function packageTests(ctx: HostCtx): void {
  describe("the Debian package", () => {
    let host: TestHost;
    let nextDeb = "";
    before(() => {
      host = ctx.host;
      nextDeb = buildNext();
    });

    // dpkg-query's own ${field} syntax, not a template: "ii 0.1.0-1".
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format
    const FORMAT = "${db:Status-Abbrev}${Version}";
    const pkg = async () => (await host.sh(["dpkg-query", "-W", "-f", FORMAT, "boxctl"])).trim();
    /** The container unit's main process and invocation: unchanged means never restarted. */
    const unit = () =>
      host.sh([
        "systemctl",
        "show",
        "-p",
        "MainPID",
        "-p",
        "InvocationID",
        "systemd-nspawn@system1",
      ]);
    const status = async () => {
      const r = ok(await host.boxctl(["status", "system1", "--json"]), "status --json");
      return v.parse(StatusJson, JSON.parse(r.stdout));
    };

    it("is installed by apt-get from Debian's packages alone, as /usr/bin/boxctl", async () => {
      // The host has no package lists: apt found every dependency installed.
      assert.equal(await pkg(), `ii ${N}-1`);
      assert.equal((await host.sh(["sh", "-c", "command -v boxctl"])).trim(), "/usr/bin/boxctl");
      assert.equal((await host.sh(["head", "-1", "/usr/bin/boxctl"])).trim(), "#!/usr/bin/node");
      // "boxctl 0.1.0 (git 1424dd8)": the git describe of the tree npm run
      // deb built from (-dirty if it had changes), a commit of this repository.
      const version = (await host.sh(["boxctl", "--version"])).trim();
      const m = new RegExp(`^boxctl ${N_RE} \\(git (\\S+?)(-dirty)?\\)$`).exec(version);
      assert.ok(m, `boxctl --version says '${version}'`);
      assert.ok(isCommit(m[1] as string), `'${m[1]}' is not a commit here`);
      // The inotify limit that many containers need, as systemd-sysctl applies it at boot.
      const sysctl = await host.sh(["/lib/systemd/systemd-sysctl", "--cat-config"]);
      assert.match(
        sysctl,
        /# \/usr\/lib\/sysctl\.d\/30-boxctl\.conf\n[\s\S]*?\nfs\.inotify\.max_user_instances = 8192\n/,
      );
    });

    it("has its man page in man, section 8", async () => {
      const r = await host.exec(["man", "-P", "cat", "boxctl"], {
        env: { LC_ALL: "C", MANWIDTH: "80" },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^BOXCTL\(8\) +System Administration +BOXCTL\(8\)$/m);
      assert.match(r.stdout, /^ +cutover-instance NAME IMAGE/m);
      assert.match(r.stdout, new RegExp(`^boxctl ${N_RE} `, "m"));
    });

    it("runs the seed's workflow from /usr/bin/boxctl", async () => {
      await stage(host, "foo-0.1");
      ok(await host.boxctl(["cutover-instance", "system1", "foo-0.1"]), "first cutover");
      ok(await host.inMachine("system1", ["sh", "-c", "echo hi > /root/marker"]));
      ok(await host.boxctl(["poweroff", "system1"]), "poweroff");
      assert.equal(await isActive(host), false);
      ok(await host.boxctl(["start", "system1"]), "start");
      await host.waitBooted("system1");
      await stage(host, "foo-0.2");
      ok(await host.boxctl(["cutover-instance", "system1", "foo-0.2"]), "second cutover");
      assert.equal(await release(host), "0.2");
      ok(await host.boxctl(["fallback-instance", "system1"]), "fallback");
      assert.equal(await release(host), "0.1");
      assert.equal((await host.inMachine("system1", ["cat", "/root/marker"])).stdout, "hi\n");
      assert.match(ok(await host.boxctl(["list-images"])).stdout, /^foo-0\.2\b/m);
    });

    it("completes in a login shell once bash-completion loads it", async () => {
      // bash-completion loads a command's file at its first Tab; its loader
      // is _completion_loader in Debian 12 (2.11), _comp_load in 13 (2.16).
      const r = await host.exec([
        "bash",
        "-lic",
        `if type _comp_load >/dev/null 2>&1; then _comp_load boxctl; else _completion_loader boxctl; fi
         complete -p boxctl
         for w in stat "status sys" "cutover-instance system1 foo-0."; do
           COMP_WORDS=(boxctl $w); COMP_CWORD=\${#COMP_WORDS[@]}; COMP_CWORD=$((COMP_CWORD - 1))
           COMPREPLY=(); _boxctl; echo "\${COMPREPLY[*]}"
         done`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split("\n"), [
        "complete -o filenames -F _boxctl boxctl",
        "status",
        "system1",
        "foo-0.1 foo-0.2",
      ]);
    });

    it(`upgrades to ${NEXT} with apt-get while system1 runs, and leaves it alone`, async () => {
      const before = await unit();
      const was = await status();
      const inHost = `/var/tmp/${basename(nextDeb)}`;
      copyFileSync(nextDeb, join(host.dir, inHost));
      // An old hand-installed copy shadows the package in PATH: the install says so.
      await host.sh(["install", "-m", "0755", "/usr/bin/boxctl", "/usr/local/bin/boxctl"]);
      const out = await host.aptInstall(inHost);
      await host.sh(["rm", "/usr/local/bin/boxctl"]);
      assert.match(out, new RegExp(`Unpacking boxctl \\(${NEXT}-1\\) over \\(${N}-1\\)`));
      assert.match(out, /boxctl: warning: \/usr\/local\/bin\/boxctl exists and comes before/);
      assert.equal(await pkg(), `ii ${NEXT}-1`);
      assert.match(await host.sh(["boxctl", "--version"]), new RegExp(`^boxctl ${NEXT} `));
      assert.equal(await unit(), before, "the container was restarted");
      const now = await status();
      assert.deepEqual(
        [now.state, now.current?.gen, now.mount.instance],
        ["running", was.current?.gen, was.current?.gen],
      );
      // The new version changes machines as the old one did.
      ok(await host.boxctl(["fallback-instance", "system1"]), "fallback after the upgrade");
      assert.equal(await release(host), "0.2");
      assert.equal((await status()).current?.gen, was.fallback?.gen);
    });

    it("is removed, then purged, leaving the store, the mount and the machine", async () => {
      const before = await unit();
      const kept = async (what: string) => {
        assert.equal(await unit(), before, `${what} restarted the container`);
        assert.equal(await isActive(host), true);
        ok(await host.exec(["test", "-f", "/var/lib/boxctl/machines/system1/machine.json"]));
        ok(await host.exec(["test", "-f", "/etc/systemd/system/var-lib-machines-system1.mount"]));
        const fs = await host.sh(["findmnt", "-n", "-o", "FSTYPE", "/var/lib/machines/system1"]);
        assert.equal(fs.trim(), "overlay", `${what} unmounted system1's root`);
        assert.equal(await release(host), "0.2");
      };
      const removed = await host.apt(["remove", "-y", "boxctl"]);
      assert.match(removed, /boxctl: kept \/var\/lib\/boxctl/);
      assert.equal((await host.exec(["test", "-e", "/usr/bin/boxctl"])).code, 1);
      await kept("apt-get remove");
      // dpkg keeps a removed package that has a postrm as config-files
      // ("rc") until it is purged, so purge runs its postrm after a remove too.
      assert.equal(await pkg(), `rc ${NEXT}-1`);
      const purged = await host.apt(["purge", "-y", "boxctl"]);
      assert.match(purged, /boxctl: purge, too, keeps \/var\/lib\/boxctl/);
      assert.equal((await host.exec(["dpkg-query", "-W", "boxctl"])).code, 1);
      await kept("apt-get purge");
    });
  });
}
