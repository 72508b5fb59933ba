import { TracewarpError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { glob } from './select.ts';
import type { Arrival, DriftFeature } from './types.ts';

/**
 * The drift spec language (`--drift`, repeatable, or `;`-separated; also `drift:` in a scenario file):
 *
 * ```
 * spec      := mutation [ramp] | mix [ramp]
 * mutation  := feature ('*' number | '+' number | '-' number) | 'model' '=' name
 * feature   := prompt_tokens | output_tokens | image_pixels | batch
 * mix       := 'mix(' ('route' | 'model' | 'protocol') '=' value ')' '*' number   -- that traffic × number (< 1 thins it, 0 drops it)
 * ramp      := 'ramp' A '..' B '%'    -- change grows linearly from A % to B % of full over the run
 *            | 'from' A '%'           -- no change before A % of the run, full change after
 * ```
 * Examples: `prompt_tokens*1.5`, `output_tokens+200`, `image_pixels*4`, `batch*2`, `mix(route=/v1/embeddings)*3`,
 * `model=new-model`, `prompt_tokens*2 ramp 0..100%`, `model=v2 from 30%`.
 * A multiplicative change is applied as `1 + (factor − 1) × weight`, an additive one as `amount × weight`; `model=` and
 * `mix` switch on when the weight reaches 0.5 (model) or act as a selection probability (mix).
 */
export interface DriftSpec {
  text: string;
  kind: 'mutation' | 'mix';
  feature: DriftFeature | null;
  op: '*' | '+' | '=';
  value: number | string;
  mix?: { key: 'route' | 'model' | 'protocol'; value: string };
  ramp: Ramp | null;
}

/** A ramp: linear from `from` to `to` (fractions of full change) over the run, or a step at `at` (fraction of the run). */
export type Ramp = { kind: 'linear'; from: number; to: number } | { kind: 'step'; at: number };

export const DRIFT_FEATURES: readonly DriftFeature[] = ['prompt_tokens', 'output_tokens', 'image_pixels', 'batch', 'model'];

/** Which protocols each feature applies to (for the error that names the features valid for a trace). */
const FEATURE_PROTOCOLS: Record<DriftFeature, readonly string[]> = {
  prompt_tokens: ['openai-chat', 'openai-completions', 'openai-embeddings'],
  output_tokens: ['openai-chat', 'openai-completions'],
  image_pixels: ['openai-chat', 'torchserve', 'multipart'],
  batch: ['kserve-v2', 'tf-serving'],
  model: ['openai-chat', 'openai-completions', 'openai-embeddings'],
};

/**
 * Features that make sense for a trace containing these protocols (the pseudo-protocol `+images` says the trace has
 * requests with images; without it `image_pixels` is not valid).
 */
export function validFeatures(protocols: Iterable<string>): DriftFeature[] {
  const ps = new Set(protocols);
  return DRIFT_FEATURES.filter((f) => (f !== 'image_pixels' || ps.has('+images')) && FEATURE_PROTOCOLS[f].some((p) => ps.has(p)));
}

/**
 * Parses drift specs. Every problem is reported at once.
 * @throws TracewarpError `TW_USAGE` naming each bad spec, and the features valid for the trace's protocols.
 */
export function parseDrift(texts: readonly string[], protocols: Iterable<string>): DriftSpec[] {
  const valid = validFeatures(protocols);
  const errors: string[] = [];
  const specs: DriftSpec[] = [];
  for (const raw of texts.flatMap((t) => t.split(';')).map((t) => t.trim()).filter(Boolean)) {
    const m = /^(.*?)(?:\s+(?:ramp\s+(\d+(?:\.\d+)?)\s*%?\s*\.\.\s*(\d+(?:\.\d+)?)\s*%|from\s+(\d+(?:\.\d+)?)\s*%))?\s*$/.exec(raw)!;
    const body = m[1]!.replace(/\s+/g, '');
    const ramp: Ramp | null = m[2] !== undefined ? { kind: 'linear', from: Number(m[2]) / 100, to: Number(m[3]) / 100 } : m[4] !== undefined ? { kind: 'step', at: Number(m[4]) / 100 } : null;
    if (ramp?.kind === 'linear' && (ramp.from > 1 || ramp.to > 1)) { errors.push(`'${raw}': ramp percentages must be within 0..100`); continue; }
    if (ramp?.kind === 'step' && ramp.at > 1) { errors.push(`'${raw}': 'from' must be within 0..100 %`); continue; }
    let mm: RegExpExecArray | null;
    if ((mm = /^mix\((route|model|protocol)=([^)]+)\)\*(\d+(?:\.\d+)?)$/.exec(body))) {
      // A factor of 0 drops that traffic; below 1 thins it; above 1 adds to it.
      specs.push({ text: raw, kind: 'mix', feature: null, op: '*', value: Number(mm[3]), mix: { key: mm[1] as 'route', value: mm[2]! }, ramp });
      continue;
    }
    if ((mm = /^model=(.+)$/.exec(body))) {
      if (!valid.includes('model')) errors.push(`'${raw}': this trace has no requests with a model (valid features: ${valid.join(', ') || 'none'})`);
      else specs.push({ text: raw, kind: 'mutation', feature: 'model', op: '=', value: mm[1]!, ramp });
      continue;
    }
    if ((mm = /^([a-z_]+)([*+-])(\d+(?:\.\d+)?)$/.exec(body))) {
      const feature = mm[1] as DriftFeature;
      if (!DRIFT_FEATURES.includes(feature) || feature === 'model') {
        errors.push(`'${raw}': unknown feature '${mm[1]}' (valid for this trace: ${valid.join(', ') || 'none'})`);
        continue;
      }
      if (!valid.includes(feature)) {
        errors.push(`'${raw}': no request in this trace has '${feature}' (valid for this trace: ${valid.join(', ') || 'none'})`);
        continue;
      }
      const n = Number(mm[3]);
      if (mm[2] === '*' && !(n > 0)) { errors.push(`'${raw}': a factor must be > 0`); continue; }
      specs.push({ text: raw, kind: 'mutation', feature, op: mm[2] === '*' ? '*' : '+', value: mm[2] === '-' ? -n : n, ramp });
      continue;
    }
    errors.push(`'${raw}': not a drift spec (expected e.g. prompt_tokens*1.5, output_tokens+200, model=name, mix(route=/v1/embeddings)*3, optionally 'ramp 0..100%' or 'from 30%')`);
  }
  if (errors.length > 0) throw new TracewarpError('TW_USAGE', `--drift: ${errors.length} problem${errors.length > 1 ? 's' : ''}:\n  - ${errors.join('\n  - ')}`);
  return specs;
}

/** The weight (0..1) of a ramped change at position `p` (0..1) of the run. */
export function rampWeight(ramp: Ramp | null, p: number): number {
  if (!ramp) return 1;
  if (ramp.kind === 'step') return p >= ramp.at ? 1 : 0;
  return ramp.from + (ramp.to - ramp.from) * Math.min(1, Math.max(0, p));
}

/** Whether an arrival is of a mix's traffic; `*` in a route or model stands for any characters, as in `--only`. */
function matches(a: Arrival, mix: NonNullable<DriftSpec['mix']>): boolean {
  const v = mix.key === 'route' ? a.route : mix.key === 'model' ? a.model : a.protocol;
  if (mix.key === 'protocol') return v === mix.value;
  let m = matchers.get(mix);
  if (!m) matchers.set(mix, (m = glob(mix.value)));
  return m(v);
}
const matchers = new WeakMap<NonNullable<DriftSpec['mix']>, (v: string | null | undefined) => boolean>();

/**
 * Applies drift specs to a workload (pure, seeded). Mutations are recorded on each arrival (the synthesizer applies
 * them to the bodies) and reflected in its cheap features; `mix` clones matching arrivals so their share grows by the
 * factor (new fingerprints). Position in the run is `atUs / last atUs`.
 */
export function applyDrift(arrivals: readonly Arrival[], specs: readonly DriftSpec[], rng: Rng): Arrival[] {
  if (specs.length === 0 || arrivals.length === 0) return [...arrivals];
  const last = Math.max(1, arrivals[arrivals.length - 1]!.atUs);
  let out: Arrival[] = arrivals.map((a) => ({ ...a, drift: [...a.drift] }));
  for (const spec of specs) {
    if (spec.kind === 'mix') {
      if (!out.some((a) => matches(a, spec.mix!))) {
        throw new TracewarpError('TW_USAGE', `--drift '${spec.text}': no request of this workload has ${spec.mix!.key} ${spec.mix!.value} (e.g. ${[...new Set(out.map((a) => (spec.mix!.key === 'route' ? a.route : spec.mix!.key === 'model' ? a.model : a.protocol)))].slice(0, 5).join(', ')})`);
      }
      const next: Arrival[] = [];
      out.forEach((a, i) => {
        const factor = 1 + (Number(spec.value) - 1) * rampWeight(spec.ramp, a.atUs / last);
        if (matches(a, spec.mix!) && factor < 1) {
          // Thinning: keep each matching request with probability = factor.
          if (rng.next() < factor) next.push(a);
          return;
        }
        next.push(a);
        if (!matches(a, spec.mix!)) return;
        const extra = factor - 1;
        const copies = Math.floor(extra) + (rng.next() < extra - Math.floor(extra) ? 1 : 0);
        for (let c = 1; c <= copies; c++) next.push({ ...a, atUs: a.atUs + 1 + rng.int(10_000), clone: a.clone + c, fingerprintSalt: `m${i}.${c}`, drift: [...a.drift] });
      });
      out = next.sort((x, y) => x.atUs - y.atUs);
      continue;
    }
    for (const a of out) {
      const w = rampWeight(spec.ramp, a.atUs / last);
      if (w <= 0) continue;
      if (spec.feature === 'model') {
        if (w >= 0.5 && a.model !== null) {
          a.drift.push({ feature: 'model', op: '=', value: spec.value, weight: 1 });
          a.model = String(spec.value);
        }
        continue;
      }
      if (!FEATURE_PROTOCOLS[spec.feature!].includes(a.protocol)) continue;
      a.drift.push({ feature: spec.feature!, op: spec.op, value: spec.value, weight: w });
      const apply = (x: number | null) => (x === null ? null : Math.max(1, Math.round(spec.op === '*' ? x * (1 + (Number(spec.value) - 1) * w) : x + Number(spec.value) * w)));
      if (spec.feature === 'prompt_tokens') a.promptTokens = apply(a.promptTokens);
      if (spec.feature === 'output_tokens') a.outputTokens = apply(a.outputTokens);
    }
  }
  return out;
}
