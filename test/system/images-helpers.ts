// What images.test.ts shares with the modules its tests are split into
// (images-hostile.ts, images-run.ts, images-list.ts). Those are not
// *.test.ts files, so node --test does not run them on their own, and
// all of them use the one test host each suite of images.test.ts boots.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestHost } from "../host/host.ts";
import { entry } from "../lib/tar.ts";
import { STORE } from "./instances-helpers.ts";

// One store path for every system test file.
export { STORE };

export const T = "/root/t";

/** A small, valid start, so that tar has written something before the bad entry. */
export const GOOD = Buffer.concat([
  entry("./", "5"),
  entry("etc/", "5"),
  entry("etc/os-release", "0", 'PRETTY_NAME="Hostile"\n'),
  entry("etc/hostname", "0", "evil\n"),
]);
export const END = Buffer.alloc(10240);
export const UP = "../../../../../../../..";

/** A sysadmin's German locale: the tools' messages are translated (test/host/recipe.sh). */
export const GERMAN = { LANG: "de_DE.UTF-8", LANGUAGE: "de" };

/**
 * The suite's host and the helpers over it. host is a getter: the host
 * boots in before(), after the tests have been registered.
 */
export function imagesCtx(host: () => TestHost) {
  const sh = (script: string) => host().sh(["sh", "-c", script], { timeoutMs: 120_000 });
  return {
    get host() {
      return host();
    },
    stage: (args: string[], env?: Record<string, string>) =>
      host().boxctl(["stage-image", ...args], { timeoutMs: 120_000, env }),
    sh,
    meta: async (name: string) =>
      JSON.parse(await host().sh(["cat", `${STORE}/images/${name}/image.json`])),
    listing: () => sh(`find ${STORE} -maxdepth 3 | sort`),
    put: (name: string, data: Buffer) => writeFileSync(join(host().dir, T, name), data),
  };
}

export type ImagesCtx = ReturnType<typeof imagesCtx>;
