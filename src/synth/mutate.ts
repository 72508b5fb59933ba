import type { SynthesizedRequest } from '../protocols/index.ts';
import type { Params, SkeletonNode, TraceRecord } from '../types.ts';
import type { AnomalyKind, AppliedDrift } from '../workload/types.ts';

const apply = (x: number, d: AppliedDrift): number =>
  d.op === '*' ? x * (1 + (Number(d.value) - 1) * d.weight) : d.op === '+' ? x + Number(d.value) * d.weight : x;

/** Splits `total` over parts in proportion to `weights` (largest remainder), so the parts sum exactly to `total`. */
export function distribute(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  if (weights.length === 0) return [];
  if (sum === 0) return weights.map((_, i) => (i === weights.length - 1 ? total : 0));
  const raw = weights.map((w) => (w * total) / sum);
  const out = raw.map(Math.floor);
  let left = total - out.reduce((a, b) => a + b, 0);
  const order = raw.map((r, i) => [r - Math.floor(r), i] as const).sort((a, b) => b[0] - a[0]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    out[i]!++;
  }
  return out;
}

/**
 * Walks a skeleton with its sizes and multiplies the first uniform-array length found under `pathPrefix` (a tensor's
 * `data`, or TF Serving `instances`) by `factor`. Returns the new sizes (the input is not changed).
 */
function scaleFirstUniform(skeleton: SkeletonNode, sizes: readonly number[], pathPrefix: RegExp, factor: number): number[] {
  const out = [...sizes];
  let at = 0;
  let done = false;
  const walk = (n: SkeletonNode, path: string): void => {
    switch (n.t) {
      case 's': at++; return;
      case 'o': for (const [k, c] of n.k) walk(c, path ? `${path}.${k}` : k); return;
      case 'a': n.e.forEach((c, i) => walk(c, `${path}[${i}]`)); return;
      case 'u': {
        if (!done && pathPrefix.test(path)) {
          out[at] = Math.max(1, Math.round(out[at]! * factor));
          done = true;
        }
        at++;
        if (n.of) walk(n.of, `${path}[0]`);
        return;
      }
      default: return;
    }
  };
  walk(skeleton, '');
  return out;
}

/**
 * Applies drift mutations to a record before synthesis, so the bodies sent really change: prompt tokens (spread over
 * the messages in proportion), output tokens (`max_tokens`), model, image pixels (both sides × √factor), and batch
 * (first tensor dimension, its data length, binary tensor bytes; TF Serving rows). Pure: returns a new record.
 */
export function applyDriftToRecord(r: TraceRecord, drift: readonly AppliedDrift[]): TraceRecord {
  if (drift.length === 0) return r;
  const out: TraceRecord = { ...r, params: { ...r.params }, features: { ...r.features } };
  for (const d of drift) {
    switch (d.feature) {
      case 'prompt_tokens': {
        const mt = out.features.messageTokens;
        if (!mt || mt.length === 0) break;
        const target = Math.max(1, Math.round(apply(mt.reduce((a, b) => a + b, 0), d)));
        out.features.messageTokens = distribute(target, mt);
        out.promptTokens = target;
        break;
      }
      case 'output_tokens':
        if (out.outputTokens !== null) out.outputTokens = Math.max(1, Math.round(apply(out.outputTokens, d)));
        break;
      case 'model':
        if ('model' in out.params) out.params.model = String(d.value);
        out.model = String(d.value);
        break;
      case 'image_pixels': {
        const s = Math.sqrt(Math.max(0, apply(1, d)));
        const scale = <T extends { width: number; height: number }>(i: T): T => ({ ...i, width: Math.max(1, Math.round(i.width * s)), height: Math.max(1, Math.round(i.height * s)) });
        if (out.features.images) out.features.images = out.features.images.map(scale);
        if (out.features.parts) out.features.parts = out.features.parts.map((p) => (p.image ? { ...p, image: scale(p.image) } : p));
        break;
      }
      case 'batch':
        scaleBatch(out, apply(1, d));
        break;
    }
  }
  return out;
}

function scaleBatch(r: TraceRecord, factor: number): void {
  const skeleton = r.shape.skeleton;
  if (!skeleton || factor === 1) return;
  if (r.protocol === 'kserve-v2') {
    const params: Params = { ...r.params };
    let sizes = r.features.sizes ?? [];
    const tensors = r.features.tensors?.map((t) => ({ ...t, shape: [...t.shape] })) ?? [];
    tensors.forEach((t, i) => {
      if (t.shape.length === 0) return;
      const from = t.shape[0]!;
      t.shape[0] = Math.max(1, Math.round(from * factor));
      const f = t.shape[0] / from;
      t.elements = t.shape.reduce((a, b) => a * b, 1);
      const key = `inputs[${i}].shape`;
      if (Array.isArray(params[key])) params[key] = t.shape;
      sizes = scaleFirstUniform(skeleton, sizes, new RegExp(`^inputs\\[${i}\\]\\.data$`), f);
      const bin = `inputs[${i}].parameters.binary_data_size`;
      if (typeof params[bin] === 'number') params[bin] = Math.round((params[bin] as number) * f);
    });
    r.params = params;
    r.features.sizes = sizes;
    r.features.tensors = tensors;
    if (r.features.binaryBytes !== undefined) r.features.binaryBytes = Math.round(r.features.binaryBytes * factor);
  } else if (r.protocol === 'tf-serving') {
    r.features.sizes = scaleFirstUniform(skeleton, r.features.sizes ?? [], /^(instances|inputs)$/, factor);
    if (r.features.batch !== undefined) r.features.batch = Math.max(1, Math.round(r.features.batch * factor));
  }
}

/** Drift that an anomaly implies before synthesis (oversize = 10× the payload where the payload has a size knob). */
export function anomalyDrift(kind: AnomalyKind | null, r: TraceRecord): AppliedDrift[] {
  if (kind !== 'oversize') return [];
  if (r.features.messageTokens) return [{ feature: 'prompt_tokens', op: '*', value: 10, weight: 1 }];
  if (r.protocol === 'kserve-v2' || r.protocol === 'tf-serving') return [{ feature: 'batch', op: '*', value: 10, weight: 1 }];
  return [];
}

/**
 * Applies an anomaly to a synthesized request (after synthesis): see `workload/anomalies.ts` for the kinds. Kinds that
 * do not apply to a request's protocol leave it unchanged (it still carries the label).
 */
export function applyAnomaly(s: SynthesizedRequest, r: TraceRecord, kind: AnomalyKind | null): SynthesizedRequest {
  if (kind === null || kind === 'burst') return s;
  const body = s.body;
  switch (kind) {
    case 'oversize':
      // LLM and tensor requests grew before synthesis; other bodies become 10× as long (JSON padded with whitespace).
      if (r.features.messageTokens || r.protocol === 'kserve-v2' || r.protocol === 'tf-serving' || !body) return s;
      return { ...s, body: r.shape.kind === 'json' ? Buffer.concat([body, Buffer.alloc(body.length * 9, 0x20)]) : Buffer.concat(Array.from({ length: 10 }, () => body)) };
    case 'malformed-json':
      return body ? { ...s, body: body.subarray(0, Math.floor(body.length / 2)) } : s;
    case 'empty-body':
      return { ...s, body: Buffer.alloc(0) };
    case 'huge-max-tokens': {
      if (!body || r.shape.kind !== 'json') return s;
      try {
        const v = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
        if ('max_completion_tokens' in v) v.max_completion_tokens = 1_000_000;
        else v.max_tokens = 1_000_000;
        return { ...s, body: Buffer.from(JSON.stringify(v)) };
      } catch {
        return s;
      }
    }
    case 'nan-tensor': {
      if (!body || r.protocol !== 'kserve-v2') return s;
      const headerLen = s.headers['inference-header-content-length'];
      if (headerLen !== undefined) {
        const b = Buffer.from(body);
        if (b.length >= Number(headerLen) + 4) b.writeFloatLE(Number.NaN, Number(headerLen));
        return { ...s, body: b };
      }
      return { ...s, body: Buffer.from(body.toString('utf8').replace(/("data"\s*:\s*\[+)\s*-?[\d.eE+-]+/, '$1NaN')) };
    }
    case 'wrong-dtype': {
      if (!body || r.protocol !== 'kserve-v2') return s;
      const headerLen = s.headers['inference-header-content-length'];
      const text = body.toString('latin1');
      const changed = text.replace(/"datatype"\s*:\s*"([A-Z0-9]+)"/, (_m, dt: string) => `"datatype":"${dt === 'FP32' ? 'INT64' : dt === 'INT64' ? 'FP32' : 'FP32'}"`);
      const delta = changed.length - text.length;
      const headers = headerLen !== undefined ? { ...s.headers, 'inference-header-content-length': String(Number(headerLen) + delta) } : s.headers;
      return { ...s, headers, body: Buffer.from(changed, 'latin1') };
    }
  }
}
