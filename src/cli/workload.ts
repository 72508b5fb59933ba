import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { TracewarpError } from '../errors.ts';
import { parseDurationUs } from '../units.ts';
import { parseAnomalies } from '../workload/anomalies.ts';
import { parseDrift } from '../workload/drift.ts';
import type { Step } from '../workload/pipeline.ts';
import type { TraceReader } from '../trace/reader.ts';
import type { ArrivalModel } from '../workload/warp.ts';

/** The transformation flags `plan` and `replay` share, each taking a value except `--amplify-keep-duplicates`. */
export const WORKLOAD_FLAGS = ['--speed', '--rate', '--window', '--max-gap', '--loop', '--duration', '--amplify', '--drift', '--anomaly', '--arrivals'] as const;

/** Registers the shared transformation options on a commander command (values are re-read in order from argv). */
export function workloadHelp(): Array<[string, string]> {
  return [
    ['--speed <factor>', 'time-warp: F× as fast (offsets scaled, never resampled)'],
    ['--rate <req/s>', 'time-warp so the mean arrival rate is R req/s'],
    ['--window <A..B>', 'keep the slice of the trace between offsets A and B (e.g. 60s..120s)'],
    ['--max-gap <duration>', 'compress idle gaps longer than this (e.g. 5s)'],
    ['--loop <n>', 'repeat the trace n times back to back'],
    ['--duration <duration>', 'repeat (and cut) the trace to fill this duration (e.g. 10m)'],
    ['--amplify <K>', 'K× the traffic (any real K ≥ 1), same shape over time'],
    ['--amplify-keep-duplicates', 'amplified clones keep the original fingerprints (caches see duplicates)'],
    ['--cut-sessions', '--window and --duration may cut a session in the middle (default: a session is kept whole, by where it starts)'],
    ['--drift <spec>', "drift mutation, e.g. 'prompt_tokens*1.5 ramp 0..100%' (repeatable)"],
    ['--anomaly <spec>', "anomaly injection, e.g. 'oversize:1%,burst:3x@60s-70s' (repeatable)"],
    ['--arrivals <model>', 'replace inter-arrival times: poisson, gamma:CV or constant'],
    ['--scenario <file>', 'YAML scenario: a list of steps (applied before the flags)'],
  ];
}

function parseArrivals(text: string): ArrivalModel {
  if (text === 'poisson') return { kind: 'poisson' };
  if (text === 'constant') return { kind: 'constant' };
  const m = /^gamma:(\d+(?:\.\d+)?)$/.exec(text);
  if (m && Number(m[1]) > 0) return { kind: 'gamma', cv: Number(m[1]) };
  throw new Error(`--arrivals: expected poisson, constant or gamma:CV (CV > 0), got '${text}'`);
}

/** Parses `--speed F`. @throws Error naming the flag unless 10⁻⁶ ≤ F ≤ 10⁶. */
export function parseSpeed(text: string): number {
  return positive('--speed', text);
}

function positive(name: string, text: string, min = 1e-6, max = 1e6): number {
  const v = Number(text);
  if (!(v > 0) || !Number.isFinite(v)) throw new Error(`${name} must be a number > 0, got '${text}'`);
  // Outside these bounds a schedule's µs offsets stop being exact integers (or a run would outlast its users).
  if (v < min || v > max) throw new Error(`${name} must be between ${min} and ${max}, got '${text}'`);
  return v;
}

/** One step from a flag and its value. @throws Error with a message naming the flag. */
function stepOf(flag: string, value: string, protocols: string[], keepDuplicates: boolean): Step {
  switch (flag) {
    case '--speed': return { op: 'speed', factor: parseSpeed(value) };
    case '--rate': return { op: 'rate', rate: positive('--rate', value, 1e-6, 1e7) };
    case '--window': {
      const sep = value.indexOf('..');
      if (sep < 0 || value.indexOf('..', sep + 2) >= 0) throw new Error(`--window: expected A..B, e.g. 60s..120s or 1.5m..2m, got '${value}'`);
      const [a, b] = [value.slice(0, sep).trim(), value.slice(sep + 2).trim()];
      const from = a ? parseDurationUs(a) : 0;
      const to = b ? parseDurationUs(b) : Number.MAX_SAFE_INTEGER;
      if (to <= from) throw new Error(`--window: the end must be after the start, got '${value}'`);
      return { op: 'window', fromUs: from, toUs: to };
    }
    case '--max-gap': return { op: 'max-gap', us: parseDurationUs(value) };
    case '--loop': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--loop must be a whole number ≥ 1, got '${value}'`);
      return { op: 'loop', times: n };
    }
    case '--duration': return { op: 'loop', durationUs: parseDurationUs(value) };
    case '--amplify': {
      const k = Number(value);
      if (!(k >= 1) || !Number.isFinite(k)) throw new Error(`--amplify must be a number ≥ 1, got '${value}'`);
      return { op: 'amplify', k, keepDuplicates };
    }
    case '--drift': return { op: 'drift', specs: parseDrift([value], protocols) };
    case '--anomaly': return { op: 'anomaly', specs: parseAnomalies([value], protocols) };
    case '--arrivals': return { op: 'arrivals', model: parseArrivals(value) };
  }
  throw new Error(`unknown transformation ${flag}`);
}

/** Steps of a YAML scenario file: `steps:` is a list of one-key maps (`- speed: 10`, `- drift: 'prompt_tokens*2'`, …). */
function scenarioSteps(path: string, protocols: string[], errors: string[]): Step[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    errors.push(`${path}: cannot read the scenario: ${(err as Error).message.split('\n')[0]}`);
    return [];
  }
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps)) {
    errors.push(`${path}: expected 'steps:' with a list of transformations`);
    return [];
  }
  const out: Step[] = [];
  steps.forEach((entry, i) => {
    const pairs = entry && typeof entry === 'object' ? Object.entries(entry as Record<string, unknown>) : [];
    if (pairs.length !== 1) {
      errors.push(`${path}: step ${i + 1}: expected one key such as 'speed: 10'`);
      return;
    }
    const [key, val] = pairs[0]!;
    const flag = `--${key.replace(/_/g, '-')}`;
    if (!(WORKLOAD_FLAGS as readonly string[]).includes(flag) && flag !== '--amplify-keep-duplicates') {
      errors.push(`${path}: step ${i + 1}: unknown transformation '${key}' (known: ${WORKLOAD_FLAGS.map((f) => f.slice(2)).join(', ')})`);
      return;
    }
    for (const v of Array.isArray(val) ? val : [val]) {
      try {
        out.push(stepOf(flag, String(v), protocols, false));
      } catch (err) {
        errors.push(`${path}: step ${i + 1}: ${(err as Error).message}`);
      }
    }
  });
  return out;
}

/**
 * The transformation steps in the order given: a scenario file's steps first, then the flags in their command-line
 * order (commander keeps values, not order, so `argv` is read again here). `--arrivals` with `--rate` generates at
 * that rate. Every problem is reported at once.
 * @throws TracewarpError `TW_USAGE` listing each problem.
 */
export function workloadSteps(argv: readonly string[], protocols: string[], scenario?: string): Step[] {
  const errors: string[] = [];
  const steps: Step[] = scenario ? scenarioSteps(scenario, protocols, errors) : [];
  const keepDuplicates = argv.includes('--amplify-keep-duplicates');
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    const eq = tok.indexOf('=');
    const flag = eq > 0 && tok.startsWith('--') ? tok.slice(0, eq) : tok;
    if (!(WORKLOAD_FLAGS as readonly string[]).includes(flag)) continue;
    const value = eq > 0 ? tok.slice(eq + 1) : argv[++i];
    if (value === undefined) {
      errors.push(`${flag} needs a value`);
      continue;
    }
    try {
      steps.push(stepOf(flag, value, protocols, keepDuplicates));
    } catch (err) {
      errors.push((err as Error).message.replace(/^--(drift|anomaly): \d+ problems?:\n {2}- /, '--$1: '));
    }
  }
  if (errors.length > 0) throw new TracewarpError('TW_USAGE', errors.length === 1 ? errors[0]! : `${errors.length} problems:\n  - ${errors.join('\n  - ')}`);
  if (argv.includes('--cut-sessions')) for (const s of steps) if (s.op === 'window' || s.op === 'loop') s.cutSessions = true;
  const arrivals = steps.find((s) => s.op === 'arrivals');
  const rate = steps.find((s) => s.op === 'rate');
  if (arrivals && rate && arrivals.op === 'arrivals' && rate.op === 'rate') {
    arrivals.rate = rate.rate;
    return steps.filter((s) => s !== rate);
  }
  return steps;
}

/** The transformation steps of a command line for a trace (flags are checked against its protocols). */
export function stepsFor(reader: TraceReader, argv: readonly string[], scenario?: string): Step[] {
  return workloadSteps(argv, [...reader.protocols(), ...(reader.hasImages() ? ['+images'] : [])], scenario);
}
