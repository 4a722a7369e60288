// overlay/: the mount unit and the .nspawn settings boxctl writes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { BoxError } from "../../src/base/errors.ts";
import { BASE_MAX, BASE_MIN, isBase, UID_RANGE } from "../../src/base/uids.ts";
import { overlayOption } from "../../src/host/mounts.ts";
import {
  mountUnitText,
  nspawnGuardText,
  nspawnSettingsText,
  nspawnSettingsWithout,
  overlayOptions,
} from "../../src/overlay/units.ts";
import {
  allocateBase,
  viewArgv,
  viewPath,
  viewUnitName,
  viewUnitText,
} from "../../src/overlay/views.ts";

const spec = {
  machine: "system1",
  gen: 3,
  image: "foo-0.2",
  where: "/var/lib/machines/system1",
  lower: "/var/lib/boxctl/images/foo-0.2/rootfs",
  upper: "/var/lib/boxctl/machines/system1/instances/3/upper",
  work: "/var/lib/boxctl/machines/system1/instances/3/work",
};

const vspec = {
  machine: "system1",
  gen: 3,
  image: "foo-0.2",
  source: "/var/lib/boxctl/images/foo-0.2/rootfs",
  view: viewPath("system1", 3),
  base: 0x70010000,
  script: "/var/lib/boxctl/libexec/idmap-view.pl",
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

describe("NAME.nspawn", () => {
  it("writes both settings into an empty file", () => {
    assert.equal(
      nspawnSettingsText(null, 0x70000000),
      "[Exec]\nPrivateUsers=1879048192:65536\n\n[Files]\nPrivateUsersOwnership=off\n",
    );
  });

  it("replaces today's PrivateUsers=no and keeps the user's lines and comments", () => {
    const old =
      "[Exec]\n# boxctl: keep it off.\nPrivateUsers=no\nBoot=yes\n\n[Network]\nVirtualEthernet=no\n";
    assert.equal(
      nspawnSettingsText(old, 0x70000000),
      "[Exec]\n# boxctl: keep it off.\nPrivateUsers=1879048192:65536\nBoot=yes\n\n[Network]\nVirtualEthernet=no\n\n[Files]\nPrivateUsersOwnership=off\n",
    );
  });

  it("once boxctl lets go (delete-machine): the user's lines stay, boxctl's and the sections they leave empty go", () => {
    const mine = "[Exec]\n# boxctl: keep it off.\nBoot=yes\n\n[Network]\nVirtualEthernet=no\n";
    assert.equal(
      nspawnSettingsWithout(nspawnSettingsText(mine, 0x70000000)),
      "[Exec]\n# boxctl: keep it off.\nBoot=yes\n\n[Network]\nVirtualEthernet=no\n",
    );
    assert.equal(nspawnSettingsWithout(nspawnSettingsText(null, 0x70000000)), null);
    assert.equal(nspawnSettingsWithout(nspawnSettingsText(null, null)), null);
    // Only in its own section is a key boxctl's.
    assert.equal(
      nspawnSettingsWithout("[Network]\nPrivateUsers=odd\n"),
      "[Network]\nPrivateUsers=odd\n",
    );
  });

  it("goes back to PrivateUsers=no for an instance made before private users", () => {
    const priv = nspawnSettingsText("[Files]\nBind=/srv\n", 0x70000000);
    assert.equal(
      nspawnSettingsText(priv, null),
      "[Files]\nPrivateUsersOwnership=off\nBind=/srv\n\n[Exec]\nPrivateUsers=no\n",
    );
  });

  it("keeps one assignment of each key, and is idempotent", () => {
    const dup =
      "[Exec]\nPrivateUsers=pick\nPrivateUsers=yes\n[Files]\nPrivateUsersOwnership=chown\n";
    const once = nspawnSettingsText(dup, 0x70020000);
    assert.equal(
      once,
      "[Exec]\nPrivateUsers=1879179264:65536\n[Files]\nPrivateUsersOwnership=off\n",
    );
    assert.equal(nspawnSettingsText(once, 0x70020000), once);
  });

  it("refuses a base that is not boxctl's", () => {
    assert.throws(() => nspawnSettingsText(null, 0x00080000), /not one of boxctl's/);
  });
});

describe("the drop-in that checks NAME.nspawn before each start", () => {
  const file = "/etc/systemd/nspawn/web1.nspawn";
  it("checks the very line NAME.nspawn gets, with or without private users", () => {
    for (const base of [BASE_MIN, null]) {
      const line = /^PrivateUsers=.*$/m.exec(nspawnSettingsText(null, base))?.[0];
      assert.ok(line);
      assert.ok(
        nspawnGuardText("web1", file, base).includes(
          `\nExecStartPre=/bin/sh -c "grep -qxF ${line} ${file} || { echo 'boxctl: ${file} lacks ${line}: `,
        ),
      );
    }
  });
  it("refuses a path a shell or systemd would expand", () => {
    for (const bad of ["/etc/a b.nspawn", "/etc/a'b.nspawn", "/etc/%i.nspawn", "/etc/$x.nspawn"])
      assert.throws(
        () => nspawnGuardText("web1", bad, null),
        /cannot be used in the check of a unit file/,
      );
  });
});

describe("uid ranges", () => {
  it("stays between nspawn's pick range and the foreign range, below 2^31", () => {
    assert.equal(BASE_MIN, 0x6fffffff + 1);
    assert.equal(BASE_MAX + UID_RANGE - 1, 0x7ffe0000 - 1);
    assert.ok(BASE_MAX + UID_RANGE < 2 ** 31);
  });

  it("takes the lowest free base, skipping boxctl's and those NSS knows", () => {
    assert.equal(allocateBase([]), 0x70000000);
    assert.equal(allocateBase([0x70000000, 0x70020000]), 0x70010000);
    assert.equal(
      allocateBase([0x70000000], (b) => b === 0x70010000),
      0x70020000,
    );
  });

  it("fails when every base is taken", () => {
    assert.throws(() => allocateBase([], () => true), /no free uid range/);
  });

  it("accepts only 64K-aligned bases in its own range", () => {
    assert.ok(isBase(0x70000000));
    assert.ok(isBase(BASE_MAX));
    for (const b of [0, 0x00080000, 0x6fff0000, 0x70000001, 0x7ffe0000, BASE_MAX + UID_RANGE, 1.5])
      assert.ok(!isBase(b), String(b));
  });
});
describe("the view", () => {
  it("is on /run, one per instance, and one unit per instance", () => {
    assert.equal(vspec.view, "/run/boxctl/views/system1/3");
    assert.equal(viewUnitName("system1", 3), "boxctl-view-system1-3.service");
  });

  it("runs the script with perl-base, with plain argv", () => {
    assert.deepEqual(viewArgv(vspec), [
      "/usr/bin/perl",
      vspec.script,
      vspec.source,
      vspec.view,
      String(0x70010000),
      "65536",
    ]);
  });

  it("refuses paths systemd or a shell would expand, and foreign bases", () => {
    for (const bad of ["/a b", "/a%i", "/a$X", "relative", "/a/../etc", "/a;b", "/a\nb"])
      assert.throws(() => viewArgv({ ...vspec, source: bad }), /cannot be used/, bad);
    assert.throws(() => viewArgv({ ...vspec, base: 0x00080000 }), /not one of boxctl's/);
  });

  it("is a oneshot service with no default dependencies, unmounted at shutdown", () => {
    const t = viewUnitText(vspec);
    for (const line of [
      "DefaultDependencies=no",
      "StopWhenUnneeded=yes",
      "After=local-fs-pre.target",
      "Before=umount.target",
      "Conflicts=umount.target",
      `RequiresMountsFor=${vspec.source} ${vspec.script}`,
      "Type=oneshot",
      "RemainAfterExit=yes",
      `ExecStart=/usr/bin/perl ${vspec.script} ${vspec.source} ${vspec.view} 1879113728 65536`,
      `ExecStop=/usr/bin/perl ${vspec.script} --umount ${vspec.view}`,
    ])
      assert.ok(t.split("\n").includes(line), line);
    assert.doesNotMatch(t, /^\[Install\]/m);
  });

  it("is required by, and ordered before, the overlay mount that uses it as lowerdir", () => {
    const t = mountUnitText({
      machine: vspec.machine,
      gen: vspec.gen,
      image: vspec.image,
      lower: vspec.source,
      view: { path: vspec.view, unit: viewUnitName("system1", 3) },
      where: "/var/lib/machines/system1",
      upper: "/var/lib/boxctl/machines/system1/instances/3/upper",
      work: "/var/lib/boxctl/machines/system1/instances/3/work",
    });
    const lines = t.split("\n");
    assert.ok(lines.includes("Requires=boxctl-view-system1-3.service"));
    assert.ok(lines.includes("After=boxctl-view-system1-3.service"));
    assert.ok(
      lines.includes(
        "Options=lowerdir=/run/boxctl/views/system1/3,upperdir=/var/lib/boxctl/machines/system1/instances/3/upper,workdir=/var/lib/boxctl/machines/system1/instances/3/work",
      ),
    );
    assert.ok(lines.includes("Where=/var/lib/machines/system1"));
  });
});
