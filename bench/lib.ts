// Shared by the benchmarks: time commands in alternation so that drift in
// the machine's load hits the candidate and its baseline alike, and report
// medians and their ratio.
import { spawnSync } from "node:child_process";

export function timeOnce(argv: string[]): number {
  const [cmd, ...args] = argv;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd as string, args, { stdio: "ignore" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}`);
  return ms;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function quartiles(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => (s[Math.floor(q * (s.length - 1))] as number).toFixed(0);
  return `${at(0.25)}-${at(0.75)}`;
}

export interface Comparison {
  name: string;
  candidateMs: number;
  baselineMs: number;
  ratio: number;
}

/** Runs candidate and baseline alternately `runs` times each, after a warm-up. */
export async function compare(
  name: string,
  candidate: () => number | Promise<number>,
  baseline: () => number | Promise<number>,
  runs = 15,
): Promise<Comparison> {
  await candidate();
  await baseline();
  const c: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < runs; i++) {
    c.push(await candidate());
    b.push(await baseline());
  }
  const r = { name, candidateMs: median(c), baselineMs: median(b), ratio: median(c) / median(b) };
  console.log(
    `${name}: ${r.candidateMs.toFixed(1)} ms vs ${r.baselineMs.toFixed(1)} ms baseline -> ratio ${r.ratio.toFixed(2)} (quartiles ${quartiles(c)} vs ${quartiles(b)} ms; ${runs} runs each)`,
  );
  return r;
}

/**
 * Like compare, for several candidates against one baseline: every round
 * runs each candidate followed by the baseline, so that all ratios rest on
 * baseline runs taken in the same stretch of time (a boot's length drifts
 * by more than 10 % over minutes on a shared machine).
 */
export async function compareInterleaved(
  candidates: Record<string, () => Promise<number>>,
  baseline: () => Promise<number>,
  runs: number,
): Promise<Comparison[]> {
  const c: Record<string, number[]> = Object.fromEntries(
    Object.keys(candidates).map((k) => [k, []]),
  );
  const b: number[] = [];
  for (const run of Object.values(candidates)) {
    await run();
    await baseline();
  }
  for (let i = 0; i < runs; i++) {
    for (const [name, run] of Object.entries(candidates)) {
      c[name]?.push(await run());
      b.push(await baseline());
    }
  }
  return Object.entries(c).map(([name, xs]) => {
    const r = {
      name,
      candidateMs: median(xs),
      baselineMs: median(b),
      ratio: median(xs) / median(b),
    };
    console.log(
      `${name}: ${r.candidateMs.toFixed(1)} ms vs ${r.baselineMs.toFixed(1)} ms baseline -> ratio ${r.ratio.toFixed(2)} (quartiles ${quartiles(xs)} vs ${quartiles(b)} ms; ${xs.length} vs ${b.length} runs)`,
    );
    return r;
  });
}
