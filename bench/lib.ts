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
    `${name}: ${r.candidateMs.toFixed(1)} ms vs ${r.baselineMs.toFixed(1)} ms baseline -> ratio ${r.ratio.toFixed(2)}`,
  );
  return r;
}
