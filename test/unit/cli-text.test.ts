// What the settings verbs say on a terminal: one line each, naming the
// machine and what it is set to now, whether or not it changed (--json is
// tested in cli-json.test.ts).
import assert from "node:assert/strict";
import { beforeEach, describe, it } from "node:test";
import { parseVerbArgs } from "../../src/cli/parse.ts";
import { findVerb } from "../../src/cli/table.ts";
import { capture } from "../lib/capture.ts";
import { FakeHost } from "../lib/fake-host.ts";
import { tempRoot } from "../lib/fake-store.ts";

/** Runs a verb as main.ts would, without --json, and returns what it printed on stdout. */
async function say(h: FakeHost, argv: string[]): Promise<string> {
  const verb = findVerb(argv[0] as string);
  const { args, opts } = parseVerbArgs(verb, argv.slice(1));
  return capture("stdout", () => verb.run?.({ verb, args, opts, r: h }));
}

describe("the settings verbs' one line", () => {
  let h: FakeHost;
  beforeEach(async () => {
    tempRoot(["foo-0.1"]);
    h = new FakeHost();
    await say(h, ["cutover-instance", "web", "foo-0.1"]);
  });

  it("enable and disable say whether the machine starts with the host, and whether that changed", async () => {
    assert.equal(await say(h, ["enable", "web"]), "web now starts with the host\n");
    assert.equal(await say(h, ["enable", "web"]), "web already starts with the host\n");
    assert.equal(await say(h, ["disable", "web"]), "web no longer starts with the host\n");
    assert.equal(
      await say(h, ["disable", "web"]),
      "web was not enabled: it does not start with the host\n",
    );
  });

  it("set-services says the list, as set-carry and set-keep say theirs", async () => {
    assert.equal(await say(h, ["set-services", "web", "nginx", "pg"]), "web: services nginx, pg\n");
    assert.equal(await say(h, ["set-services", "web"]), "web: services none\n");
    assert.equal(await say(h, ["set-carry", "web", "none"]), "web: carry none\n");
    assert.equal(await say(h, ["set-keep", "web", "2"]), "web: keep 2\n");
  });
});
