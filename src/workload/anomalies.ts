import { TracewarpError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import type { AnomalyKind, Arrival } from './types.ts';

/**
 * Anomaly specs (`--anomaly`, repeatable or comma-separated): `KIND:P%` marks a seeded fraction P of the requests
 * with that anomaly, and `burst:Nx@A-B` adds a traffic spike (the arrivals between A and B seconds, N× in total).
 * Kinds and what the synthesizer does to a marked request:
 * - `oversize` — 10× the payload (prompt tokens ×10 for LLM requests, tensor batch ×10, body bytes ×10 otherwise)
 * - `malformed-json` — the JSON body cut in half
 * - `empty-body` — no body at all (headers kept)
 * - `nan-tensor` — a NaN in the first numeric tensor element (KServe)
 * - `huge-max-tokens` — `max_tokens` = 1,000,000
 * - `wrong-dtype` — the first tensor's datatype changed (FP32 ↔ INT64, others → FP32) (KServe)
 * Every marked request carries its kind as a label, kept in the run file and shown separately by the report.
 */
export interface AnomalySpec {
  kind: AnomalyKind;
  /** Fraction of requests (0..1) for per-request kinds. */
  rate?: number;
  burst?: { factor: number; fromUs: number; toUs: number };
}

export const ANOMALY_KINDS: readonly AnomalyKind[] = ['oversize', 'malformed-json', 'empty-body', 'nan-tensor', 'huge-max-tokens', 'wrong-dtype', 'burst'];

/** Kinds that only apply to KServe v2 tensors. */
const TENSOR_KINDS: ReadonlySet<AnomalyKind> = new Set(['nan-tensor', 'wrong-dtype']);

/**
 * Parses anomaly specs; every problem is reported at once (tensor kinds are refused for a trace without KServe v2
 * requests; per-request rates may not add up to more than 100 %).
 * @throws TracewarpError `TW_USAGE`.
 */
export function parseAnomalies(texts: readonly string[], protocols: Iterable<string> = ['kserve-v2']): AnomalySpec[] {
  const hasTensors = new Set(protocols).has('kserve-v2');
  const errors: string[] = [];
  const out: AnomalySpec[] = [];
  for (const raw of texts.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean)) {
    let m: RegExpExecArray | null;
    if ((m = /^burst:(\d+(?:\.\d+)?)x@(\d+(?:\.\d+)?)s?-(\d+(?:\.\d+)?)s$/.exec(raw))) {
      const factor = Number(m[1]);
      const from = Number(m[2]);
      const to = Number(m[3]);
      if (factor < 1 || to <= from) errors.push(`'${raw}': need factor ≥ 1 and start < end`);
      else out.push({ kind: 'burst', burst: { factor, fromUs: from * 1e6, toUs: to * 1e6 } });
      continue;
    }
    if ((m = /^([a-z-]+):(\d+(?:\.\d+)?)%$/.exec(raw))) {
      const kind = m[1] as AnomalyKind;
      const rate = Number(m[2]) / 100;
      if (!ANOMALY_KINDS.includes(kind) || kind === 'burst') errors.push(`'${raw}': unknown anomaly '${m[1]}' (known: ${ANOMALY_KINDS.filter((k) => k !== 'burst').join(', ')}, burst:Nx@A-Bs)`);
      else if (rate > 1) errors.push(`'${raw}': a rate is at most 100%`);
      else if (TENSOR_KINDS.has(kind) && !hasTensors) errors.push(`'${raw}': ${kind} changes KServe v2 tensors and this trace has no KServe v2 requests`);
      else out.push({ kind, rate });
      continue;
    }
    errors.push(`'${raw}': not an anomaly spec (expected KIND:P% such as oversize:1%, or burst:3x@60s-70s)`);
  }
  const total = out.reduce((a, s) => a + (s.rate ?? 0), 0);
  if (total > 1 + 1e-9) errors.push(`the per-request rates add up to ${(total * 100).toFixed(1)} %: a request carries one anomaly, so at most 100 %`);
  if (errors.length > 0) throw new TracewarpError('TW_USAGE', `--anomaly: ${errors.length} problem${errors.length > 1 ? 's' : ''}:\n  - ${errors.join('\n  - ')}`);
  return out;
}

/**
 * Marks anomalies (pure, seeded): each per-request kind marks about its rate of the (applicable) requests, among those
 * no earlier kind marked (a request carries one label); a burst clones the arrivals in its window (new fingerprints) so the window
 * carries `factor`× its traffic, the extra requests labelled `burst`.
 * @throws RangeError when a burst's window holds no arrival (it would do nothing).
 */
export function applyAnomalies(arrivals: readonly Arrival[], specs: readonly AnomalySpec[], rng: Rng): Arrival[] {
  let out = arrivals.map((a) => ({ ...a }));
  for (const spec of specs) {
    const r = rng.child(spec.kind);
    if (spec.burst) {
      const { factor, fromUs, toUs } = spec.burst;
      if (!out.some((a) => a.atUs >= fromUs && a.atUs < toUs)) {
        const span = out.length > 0 ? out[out.length - 1]!.atUs / 1e6 : 0;
        throw new RangeError(`anomaly burst:${factor}x@${fromUs / 1e6}s-${toUs / 1e6}s: no arrival falls in that window (the workload at that step spans 0–${Math.round(span * 10) / 10} s)`);
      }
      const extra: Arrival[] = [];
      out.forEach((a, i) => {
        if (a.atUs < fromUs || a.atUs >= toUs) return;
        const more = factor - 1;
        const copies = Math.floor(more) + (r.next() < more - Math.floor(more) ? 1 : 0);
        for (let c = 1; c <= copies; c++) extra.push({ ...a, atUs: a.atUs + 1 + r.int(Math.max(1, Math.min(10_000, toUs - a.atUs - 1))), clone: a.clone + c, fingerprintSalt: `b${i}.${c}`, anomaly: 'burst' });
      });
      out = [...out, ...extra].sort((x, y) => x.atUs - y.atUs);
      continue;
    }
    // Each kind gets its rate of all (applicable) requests: it picks among the requests no earlier kind took, with the
    // probability raised to make up for those.
    const eligible = out.filter((a) => !TENSOR_KINDS.has(spec.kind) || a.protocol === 'kserve-v2');
    const free = eligible.filter((a) => a.anomaly === null).length;
    const p = free > 0 ? Math.min(1, (spec.rate! * eligible.length) / free) : 0;
    for (const a of eligible) if (a.anomaly === null && r.next() < p) a.anomaly = spec.kind;
  }
  return out;
}
