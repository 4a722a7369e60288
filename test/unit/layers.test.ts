// The layers of src/ (docs/architecture.md): a file imports only from
// lower layers, or from its own folder, and no files import each other in
// a circle. This test fails on the first import that breaks either rule.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, it } from "node:test";

const SRC = resolve(new URL("../../src", import.meta.url).pathname);

/** Each folder's layer, from the ground up; main.ts stands on top of all. */
const LAYERS: Record<string, number> = {
  base: 0,
  host: 1,
  store: 2,
  overlay: 3,
  archive: 3,
  plan: 3,
  carry: 4,
  ops: 5,
  cli: 6,
  ".": 7,
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The top folder of a file under src/ ("." for src/main.ts). */
const folder = (file: string) => {
  const rel = relative(SRC, file);
  return rel.includes("/") ? (rel.split("/")[0] as string) : ".";
};

function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^(?:import|export)[^;]*?from\s+"(\.[^"]+)";/gms)].map((m) =>
    resolve(dirname(file), m[1] as string),
  );
}

type Graph = Map<string, string[]>;

/** Every import that goes up a layer, or sideways into another folder of the same layer. */
function upward(graph: Graph): string[] {
  const wrong: string[] = [];
  for (const [f, deps] of graph)
    for (const d of deps) {
      const [a, b] = [folder(f), folder(d)];
      if (a !== b && (LAYERS[a] ?? -1) <= (LAYERS[b] ?? -1))
        wrong.push(`${relative(SRC, f)} (${a}) imports ${relative(SRC, d)} (${b})`);
    }
  return wrong;
}

/** The first circle of imports found, as a list of files, or null. */
function findCircle(graph: Graph): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (f: string): string[] | null => {
    if (state.get(f) === "done") return null;
    if (state.get(f) === "open") return [...path.slice(path.indexOf(f)), f];
    state.set(f, "open");
    path.push(f);
    for (const d of graph.get(f) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(f, "done");
    return null;
  };
  for (const f of graph.keys()) {
    const c = visit(f);
    if (c) return c.map((p) => relative(SRC, p));
  }
  return null;
}

const graph: Graph = new Map(files(SRC).map((f) => [f, imports(f)]));
const at = (p: string) => join(SRC, p);

describe("layers", () => {
  it("every folder of src/ has a layer", () => {
    for (const f of graph.keys()) assert.ok(folder(f) in LAYERS, `${folder(f)} has no layer`);
  });

  it("imports go down a layer, or stay in their folder", () => {
    assert.deepEqual(upward(graph), []);
  });

  it("no files import each other in a circle", () => {
    assert.equal(findCircle(graph), null);
  });

  it("the checks see a planted upward import and a planted circle", () => {
    const planted: Graph = new Map([
      [at("host/systemd.ts"), [at("ops/switch.ts")]],
      [at("ops/switch.ts"), [at("ops/guard.ts")]],
      [at("ops/guard.ts"), [at("ops/switch.ts")]],
    ]);
    assert.deepEqual(upward(planted), ["host/systemd.ts (host) imports ops/switch.ts (ops)"]);
    assert.deepEqual(findCircle(planted), ["ops/switch.ts", "ops/guard.ts", "ops/switch.ts"]);
    assert.ok(
      graph.size > 30 && [...graph.values()].flat().length > 100,
      "the real imports were read",
    );
  });
});
