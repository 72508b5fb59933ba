import type { Features, TraceRecord } from '../types.ts';
import { fillRoute, seededBytes, type ExtractContext, type ProtocolAdapter, type SynthesizedRequest, type SynthRngs } from './adapter.ts';
import { describeJsonBody, parseJson, synthesizeJsonBody } from './generic.ts';

/**
 * KServe v2 / Triton HTTP inference protocol (`POST /v2/models/{model}[/versions/{v}]/infer`), per the KServe
 * "Open Inference Protocol" REST spec, including Triton's binary tensor data extension: when the
 * `Inference-Header-Content-Length: N` header is present, the body is N bytes of JSON followed by raw tensor bytes.
 * Kept: tensor names, datatypes and shapes (schema, not data), requested outputs, `binary_data*` parameters; element
 * values become lengths (BYTES) or types (numbers).
 */
export const KSERVE_KEPT_KEYS: ReadonlySet<string> = new Set(['name', 'datatype', 'shape', 'binary_data', 'binary_data_size', 'binary_data_output', 'classification']);

/** Header of the binary tensor extension (Triton `binary_tensor_data` extension). */
export const INFERENCE_HEADER = 'inference-header-content-length';

const ROUTE = /^\/v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/infer$/;

type Tensor = { name?: unknown; datatype?: unknown; shape?: unknown };

function tensors(list: unknown): Array<{ name: string; datatype: string; shape: number[]; elements: number }> {
  if (!Array.isArray(list)) return [];
  return list.map((t: Tensor) => {
    const shape = Array.isArray(t?.shape) ? (t.shape as unknown[]).filter((x): x is number => Number.isInteger(x)) : [];
    return { name: typeof t?.name === 'string' ? t.name : '', datatype: typeof t?.datatype === 'string' ? t.datatype : '', shape, elements: shape.reduce((a, b) => a * b, 1) };
  });
}

function headerLength(headers: ExtractContext['headers']): number | null {
  const v = headers[INFERENCE_HEADER];
  const n = Number(Array.isArray(v) ? v[0] : v);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

export const kserveV2: ProtocolAdapter = {
  id: 'kserve-v2',
  detect: (method, route) => method === 'POST' && ROUTE.test(route),
  extract(ctx) {
    const n = headerLength(ctx.headers);
    if (n !== null && n > ctx.body.length) return null;
    if (n === null && !ctx.complete) return null;
    const parsed = parseJson(n === null ? ctx.body : ctx.body.subarray(0, n));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    const body = parsed as { inputs?: unknown; outputs?: unknown };
    const d = describeJsonBody('kserve-v2', ctx, body, { keep: KSERVE_KEPT_KEYS });
    d.features.tensors = tensors(body.inputs);
    d.model = /^\/v2\/models\/([^/]+)/.exec(ctx.route)?.[1] ?? null;
    if (n !== null) {
      d.shape.layout = 'kserve-binary';
      d.features.binaryBytes = ctx.totalBytes - n;
    }
    return d;
  },
  synthesize(r: TraceRecord, rngs: SynthRngs): SynthesizedRequest {
    const json = Buffer.from(JSON.stringify(synthesizeJsonBody(r, rngs)));
    const path = fillRoute(r.route, rngs.rng);
    if (r.shape.layout === 'kserve-binary') {
      const tail = seededBytes(r.features.binaryBytes ?? 0, rngs.rng);
      return { method: r.method, path, headers: { 'content-type': r.shape.contentType ?? 'application/octet-stream', [INFERENCE_HEADER]: String(json.length) }, body: Buffer.concat([json, tail]) };
    }
    return { method: r.method, path, headers: { 'content-type': r.shape.contentType ?? 'application/json' }, body: json };
  },
  extractResponse(body: unknown): { features?: Features } {
    const outs = tensors((body as { outputs?: unknown })?.outputs);
    return outs.length > 0 ? { features: { outputTensors: outs.map(({ name, datatype, shape }) => ({ name, datatype, shape })) } } : {};
  },
};
