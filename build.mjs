// Bundles the CLI into one self-contained file that runs on Node 18+
// (Debian 12's nodejs) with no node_modules beside it, in two forms
// ($BOXCTL_OUTDIR instead of dist/ if set; npm run deb builds its own):
//   dist/boxctl.mjs  ES module, #!/usr/bin/env node: npm's bin, and what a
//                    developer runs or installs by hand
//   dist/boxctl.cjs  the same code as CommonJS, #!/usr/bin/node: the .deb's
//                    /usr/bin/boxctl (npm run deb). Debian 12's node 18 loads
//                    ES module syntax only from a file named .mjs, and
//                    CommonJS starts a little sooner on Debian's node (3% on
//                    12's node 18, 8 to 11% on 13's node 20, measured).
//
// The version --version prints is package.json's (or $BOXCTL_VERSION, which
// npm run deb sets to build a bumped test package), followed by where the
// bundle came from: `git describe --always --dirty` of the tree it was built
// from, or nothing when there is no git (a tarball of the sources).
import { execFileSync } from "node:child_process";
import { chmodSync, readFileSync } from "node:fs";
import { build } from "esbuild";

const version =
  process.env.BOXCTL_VERSION || JSON.parse(readFileSync("package.json", "utf8")).version;

function gitDescribe() {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "";
  }
}

const describe = gitDescribe();
const dir = process.env.BOXCTL_OUTDIR || "dist";
const common = {
  entryPoints: ["src/main.ts"],
  bundle: true,
  platform: "node",
  target: "node18",
  minify: false,
  legalComments: "none",
  define: {
    BOXCTL_VERSION: JSON.stringify(describe ? `${version} (git ${describe})` : version),
  },
  logLevel: "warning",
};
const outputs = [
  { outfile: `${dir}/boxctl.mjs`, format: "esm", banner: { js: "#!/usr/bin/env node" } },
  { outfile: `${dir}/boxctl.cjs`, format: "cjs", banner: { js: "#!/usr/bin/node" } },
];
await Promise.all(outputs.map((o) => build({ ...common, ...o })));
for (const o of outputs) chmodSync(o.outfile, 0o755);
