import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { Output } from '../src/cli/output.ts';
import type { PlannedRequest } from '../src/replay/types.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = fileURLToPath(new URL('../bin/tracewarp.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures', import.meta.url));
/** The workspace's shared real traces (beside the clone); benchmarks fall back to the bundled slices without them. */
export const SHARED_TRACES = fileURLToPath(new URL('../../shared/traces', import.meta.url));
/** An Output that prints nothing. */
export const quiet: Output = { out: () => undefined, err: () => undefined, tty: false };

/** Starts `bench/upstream.ts` in its own process; resolves with its URL. */
export function startUpstreamProcess(): Promise<{ url: string; child: ChildProcess }> {
  return startProcess(['--import', 'tsx', fileURLToPath(new URL('./upstream.ts', import.meta.url))]);
}

/** Starts the external arrival probe (`bench/probe.ts`) in its own process. */
export function startProbe(): Promise<{ url: string; child: ChildProcess }> {
  return startProcess(['--import', 'tsx', fileURLToPath(new URL('./probe.ts', import.meta.url))]);
}

/** Starts `tracewarp ARGS` (e.g. `record …`) in its own process; resolves once it prints its `listening on` line. */
export function startTracewarpProcess(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  return startProcess([BIN, ...args]);
}

/** Starts `node ARGS`; resolves once it prints `listening on URL`. */
export function startProcess(args: string[], cwd?: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], cwd });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, child });
    });
    child.on('exit', (c) => reject(new Error(`${args.join(' ')} exited ${c}`)));
  });
}

/** Runs `node ARGS` to the end. */
export function runNode(args: string[], cwd?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Median and p99 (nearest rank) of numbers. */
export function stats(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!;
  return { n: v.length, p50: round(at(50)), p99: round(at(99)), max: round(v.at(-1)!) };
}

/** p50/p90/p99/max (nearest rank) of µs values, in ms. */
export function exact(valuesUs: number[]): { p50: number; p90: number; p99: number; max: number } {
  const v = [...valuesUs].sort((a, b) => a - b);
  const at = (p: number) => round(v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]! / 1000);
  return { p50: at(50), p90: at(90), p99: at(99), max: round(v.at(-1)! / 1000) };
}

/** Sends `requests` one at a time with a bare undici Pool and returns the latency (request → last byte) p50/p99, ms. */
export async function timeBareClient(url: string, requests: readonly PlannedRequest[]): Promise<{ p50: number; p99: number }> {
  const pool = new Pool(url, { connections: 1 });
  const ms: number[] = [];
  for (const r of requests) {
    const t0 = performance.now();
    const res = await pool.request({ method: r.method as 'POST', path: r.path, headers: r.headers, body: r.body });
    await res.body.dump();
    ms.push(performance.now() - t0);
  }
  await pool.close();
  const s = stats(ms);
  return { p50: s.p50, p99: s.p99 };
}

export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Median of numbers. */
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
