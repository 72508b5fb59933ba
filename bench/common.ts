import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Starts `bench/upstream.ts` in its own process; resolves with its URL. */
export function startUpstreamProcess(): Promise<{ url: string; child: ChildProcess }> {
  return startProcess(['--import', 'tsx', fileURLToPath(new URL('./upstream.ts', import.meta.url))]);
}

/** Starts `tracewarp ARGS` (e.g. `record …`) in its own process; resolves once it prints its `listening on` line. */
export function startTracewarpProcess(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  return startProcess([fileURLToPath(new URL('../bin/tracewarp.js', import.meta.url)), ...args]);
}

function startProcess(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, child });
    });
    child.on('exit', (c) => reject(new Error(`upstream exited ${c}`)));
  });
}

/** Median and p99 (nearest rank) of numbers. */
export function stats(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)]!;
  return { n: v.length, p50: round(at(50)), p99: round(at(99)), max: round(v.at(-1)!) };
}

export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
