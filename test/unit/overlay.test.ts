// overlay/: the mount unit and the .nspawn settings boxctl writes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BoxError } from "../../src/base/errors.ts";
import { overlayOption } from "../../src/host/mounts.ts";
import { mountUnitText, nspawnSettingsText, overlayOptions } from "../../src/overlay/units.ts";

const spec = {
  machine: "system1",
  gen: 3,
  image: "foo-0.2",
  where: "/var/lib/machines/system1",
  lower: "/var/lib/boxctl/images/foo-0.2/rootfs",
  upper: "/var/lib/boxctl/machines/system1/instances/3/upper",
  work: "/var/lib/boxctl/machines/system1/instances/3/work",
};

describe("mount unit", () => {
  it("mounts the instance's overlay at the machine root", () => {
    const t = mountUnitText(spec);
    assert.match(
      t,
      /^\[Mount\]\nWhat=overlay\nWhere=\/var\/lib\/machines\/system1\nType=overlay$/m,
    );
    assert.match(
      t,
      /^Options=lowerdir=\/var\/lib\/boxctl\/images\/foo-0\.2\/rootfs,upperdir=\S+\/3\/upper,workdir=\S+\/3\/work$/m,
    );
    assert.doesNotMatch(t, /\[Install\]/, "pulled in by RequiresMountsFor, never enabled");
  });
  it("refuses paths overlayfs would split", () => {
    assert.throws(() => overlayOptions({ ...spec, lower: "/a,b" }), BoxError);
    assert.throws(() => overlayOptions({ ...spec, upper: "/a:b" }), BoxError);
    assert.throws(() => overlayOptions({ ...spec, work: "relative" }), BoxError);
  });
  it("reads upperdir back from the mount table's options", () => {
    assert.equal(
      overlayOption(`rw,relatime,${overlayOptions(spec)},uuid=on`, "upperdir"),
      spec.upper,
    );
    assert.equal(overlayOption("rw,relatime", "upperdir"), null);
  });
});

describe("nspawn settings", () => {
  it("creates [Exec] PrivateUsers=no in a new file", () => {
    assert.match(nspawnSettingsText(null), /^\[Exec\]\n#.*\nPrivateUsers=no\n$/);
  });
  it("keeps every other line the user wrote", () => {
    const mine = "# my notes\n[Network]\nVirtualEthernet=no\n\n[Files]\nBind=/srv\n";
    const out = nspawnSettingsText(mine);
    assert.ok(out.startsWith(mine), out);
    assert.match(out, /\n\[Exec\]\n#.*\nPrivateUsers=no\n$/);
  });
  it("adds to an existing [Exec] and overrides the user's PrivateUsers", () => {
    const out = nspawnSettingsText("[Exec]\nBoot=yes\n[Files]\nBind=/srv\n");
    assert.equal(out.match(/PrivateUsers/g)?.length, 1);
    assert.match(out, /^\[Exec\]\n#.*\nPrivateUsers=no\nBoot=yes\n\[Files\]\nBind=\/srv\n$/);
    const over = nspawnSettingsText("[Exec]\nPrivateUsers=pick\nBoot=yes\n");
    assert.equal(over, "[Exec]\nPrivateUsers=no\nBoot=yes\n");
  });
  it("leaves a PrivateUsers= of another section alone", () => {
    const out = nspawnSettingsText("[Files]\nPrivateUsersOwnership=auto\n");
    assert.match(out, /^\[Files\]\nPrivateUsersOwnership=auto\n\n\[Exec\]/);
  });
  it("is idempotent", () => {
    for (const t of [null, "# x\n", "[Exec]\nBoot=yes\n", "[Network]\nZone=a\n"]) {
      const once = nspawnSettingsText(t);
      assert.equal(nspawnSettingsText(once), once);
    }
  });
});
