// A cause outside either instance (a Bind= source in NAME.nspawn gone, say)
// fails the new instance's start and the way back's alike. Against a fake
// host: each failure quotes its own run once, and the hint names what is
// left to do.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { beforeEach, describe, it } from "node:test";
import { paths } from "../../../src/base/paths.ts";
import { cutover } from "../../../src/ops/switch.ts";
import { capture } from "../../lib/capture.ts";
import { FakeHost } from "../../lib/fake-host.ts";
import { recordOf, tempRoot } from "../../lib/fake-store.ts";

const M = "web1";
const opts = { timeoutMs: 20_000 };
const nspawn = `systemd-nspawn@${M}.service`;

describe("a cutover whose start and whose way back both fail", () => {
  let h: FakeHost;
  beforeEach(() => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    h = new FakeHost();
  });

  it("quotes the failed run once, and says the old instance is back but needs a start", async () => {
    await cutover(h, M, "foo-0.1", opts);
    h.failsToStart.add(nspawn);
    h.unitLog.set(nspawn, ["Failed to stat /nonexistent-dir: No such file or directory"]);
    // The retry's second passes here; each try's start time (ms) is noted.
    h.sleep = () => new Promise((res) => setTimeout(res, 20));
    const tries: number[] = [];
    const run = h.run.bind(h);
    h.run = (argv, o) => {
      if (argv[0] === "systemctl" && /^(re)?start$/.test(argv[1] ?? "") && argv[2] === nspawn)
        tries.push(Date.now());
      return run(argv, o);
    };
    let error: unknown;
    const stderr = await capture("stderr", async () => {
      error = await cutover(h, M, "foo-0.2", opts).catch((e) => e);
    });
    const e = error as { message: string; hint: string };
    // The first failure was printed with its lines; the last message quotes only the way back's.
    assert.equal(stderr.match(/said:/g)?.length, 1, stderr);
    assert.equal(e.message.match(/said:/g)?.length, 1, e.message);
    assert.match(
      e.message,
      /^cutover-instance web1 failed \('systemctl start [^\n]*\n[^\n]*\), and going back to instance 1 \(foo-0\.1\) failed too/,
    );
    assert.equal(
      e.hint,
      "web1 is back on instance 1 (foo-0.1) but did not start; fix the cause, then: boxctl start web1",
    );
    // Settled: the old instance is mounted and current, no operation is left to recover.
    assert.equal(recordOf(M).current, 1);
    assert.equal(h.mounts.get(paths.machineRoot(M)), paths.upper(M, 1));
    assert.equal(existsSync(paths.intent(M)), false);
    // Each quote reaches back to the retried run only, not to the first try.
    const quotes = h.commands.filter((c) => c.startsWith(`journalctl -u ${nspawn} --since=@`));
    assert.equal(quotes.length, 2, h.commands.join("\n"));
    assert.equal(tries.length, 4, "two tries each, the cutover's and the way back's");
    for (const [k, q] of quotes.entries()) {
      const since = Number(/--since=@([\d.]+)/.exec(q)?.[1]) * 1000;
      const [first, retry] = [tries[2 * k] as number, tries[2 * k + 1] as number];
      assert.ok(since > first && since <= retry, `${first} < ${since} <= ${retry}`);
    }
  });
});

describe("nspawn's line that journald stored without its unit", () => {
  it("is quoted in its place among the unit's lines", async () => {
    tempRoot(["foo-0.1", "foo-0.2"]);
    const h = new FakeHost();
    await cutover(h, M, "foo-0.1", opts);
    h.failsToStart.add(nspawn);
    const starting = `Starting ${nspawn} - Container ${M}...`;
    h.unitLog.set(nspawn, [
      starting,
      `${nspawn}: Main process exited, code=exited, status=1/FAILURE`,
    ]);
    // Its sender, nspawn's child, exited before journald could tell its unit (systemd 257).
    h.orphanLog.push({
      after: starting,
      message: "Failed to stat /gone-bx: No such file or directory",
    });
    h.sleep = () => Promise.resolve();
    const stderr = await capture("stderr", () => assert.rejects(cutover(h, M, "foo-0.2", opts)));
    assert.ok(
      stderr.includes(
        `said:\n    ${starting}\n    Failed to stat /gone-bx: No such file or directory\n    ${nspawn}: Main process exited`,
      ),
      stderr,
    );
    const orphans = h.commands.filter((c) => c.startsWith("journalctl SYSLOG_IDENTIFIER="));
    assert.match(
      orphans[0] ?? "",
      /^journalctl SYSLOG_IDENTIFIER=systemd-nspawn --since=@\d+\.\d{6} --until=@\d+\.\d{6} -q --no-pager -o json$/,
    );
  });
});
