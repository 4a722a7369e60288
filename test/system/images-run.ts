// How a stage runs in images.test.ts: which input tar reads directly and
// which it streams, what an interrupted or killed stage leaves, and the
// progress line. A module, not a *.test.ts file, so that it runs on
// images.test.ts's test hosts, after the hostile corpus, rather than booting more.
import assert from "node:assert/strict";
import { before, it } from "node:test";
import type { TestHost } from "../host/host.ts";
import { entry } from "../lib/tar.ts";
import { END, GOOD, type ImagesCtx, STORE, T } from "./images-helpers.ts";

export function stagingRuns(ctx: ImagesCtx): void {
  const { stage, sh, listing, put } = ctx;
  // The test file boots the host in a before() that runs ahead of this one.
  let host: TestHost;
  before(() => {
    host = ctx.host;
  });

  it("reads a file only root can change directly, and streams any other", async () => {
    await sh(`cp ${T}/mini.tar ${T}/user.tar && chown 65534 ${T}/user.tar`);
    const fast = await stage(["--verbose", `${T}/mini.tar`, "--name", "path-direct"]);
    assert.equal(fast.code, 0, fast.stderr);
    assert.match(fast.stderr, /^\+ tar -x -f \/proc\/\d+\/fd\/\d+ --numeric-owner/m);
    const slow = await stage(["--verbose", `${T}/user.tar`, "--name", "path-streamed"]);
    assert.equal(slow.code, 0, slow.stderr);
    assert.match(slow.stderr, /^\+ tar -x -f - --numeric-owner/m);
    put(
      "user-sym.tar",
      Buffer.concat([GOOD, entry("l", "2", "", "/tmp"), entry("l/evil", "0", "x"), END]),
    );
    await sh(`chown 65534 ${T}/user-sym.tar`);
    const store = await listing();
    const bad = await stage([`${T}/user-sym.tar`, "--name", "hostile"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /entry 'l\/evil' is written through the symlink 'l'/);
    assert.equal(await listing(), store);
  });

  /**
   * Starts a stage, waits until its tar runs (the command --verbose prints),
   * then sends it sig; returns once boxctl and its tar have both exited.
   * Each stage writes its own file: with one file, the wait could read the
   * previous stage's "+ tar" before the shell had truncated it, and kill
   * the next stage before it had made anything.
   */
  const signalled = (name: string, sig: "INT" | "KILL") =>
    host.exec([
      "bash",
      "-c",
      `err=/tmp/stage-${name}.err; rm -f $err
       boxctl stage-image --verbose /srv/images/foo-0.1.tar --name ${name} 2>$err & pid=$!
       for i in $(seq 600); do grep -qs '^+ tar' $err && break; sleep 0.05; done
       kill -${sig} $pid; wait $pid; rc=$?
       for i in $(seq 600); do pgrep -x tar >/dev/null || break; sleep 0.05; done
       cat $err >&2; exit $rc`,
    ]);

  it("cleans up at once on Ctrl-C (exit 130), and a killed stage on the next run", async () => {
    const store = await listing();
    const r = await signalled("interrupted", "INT");
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted; nothing was staged/);
    assert.equal(await listing(), store);
    const k = await signalled("killed", "KILL");
    assert.equal(k.code, 137, k.stderr);
    assert.match(
      await sh(`ls ${STORE}/staging`),
      /^killed\.\d+-\d+\./,
      "the killed stage left its tree",
    );
    assert.equal((await host.boxctl(["list-images"])).code, 0);
    assert.equal(await listing(), store);
  });

  it("shows a progress line and the final size and time on a terminal only", async () => {
    const r = await host.exec([
      "script",
      "-qec",
      "boxctl stage-image /srv/images/foo-0.2.tar",
      "/dev/null",
    ]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(
      r.stdout,
      /staging foo-0\.2: [\d.]+[KMG]? of 155M \(\d+%\)\s+[\d.]+[KMG]?\/s\s+ETA \d+s/,
    );
    assert.match(r.stdout, /staged foo-0\.2: Debian GNU\/Linux 12 \(bookworm\), \d+M in [\d.]+s/);
  });
}
