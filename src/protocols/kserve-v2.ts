import type { Features, TraceRecord } from '../types.ts';
import { fillRoute, seededBytes, sentContentType, type ExtractContext, type ProtocolAdapter, type SynthesizedRequest, type SynthOptions, type SynthRngs } from './adapter.ts';
import { describeJsonBody, parseJson, synthesizeJsonBody } from './generic.ts';
import { credentialShaped, MODEL_PLACEHOLDER, modelIdsOf } from './routes.ts';
import { looksLikeData } from '../anonymize/names.ts';
import type { KeyLayout } from '../anonymize/keys.ts';

/** The protocol's keys are its vocabulary everywhere (`parameters` included: Triton's names; any other is a token). */
const KSERVE_LAYOUT: KeyLayout = { root: 'vocab' };

/**
 * KServe v2 / Triton HTTP inference protocol (`POST /v2/models/{model}[/versions/{v}]/infer`), per the KServe
 * "Open Inference Protocol" REST spec, including Triton's binary tensor data extension: when the
 * `Inference-Header-Content-Length: N` header is present, the body is N bytes of JSON followed by raw tensor bytes.
 * Kept: tensor names, datatypes and shapes (schema, not data), requested outputs, `binary_data*` parameters; element
 * values become lengths (BYTES) or types (numbers).
 */
export const KSERVE_SCHEMA: ReadonlyMap<string, (value: unknown, path: string) => boolean> = new Map<string, (value: unknown, path: string) => boolean>([
  // Tensor names, datatypes and shapes are the model's schema: the target rejects a request whose names or shapes differ.
  ['name', (v, path) => /^(inputs|outputs)\[\d+\]\.name$/.test(path) && isTensorName(v)],
  ['shape', (v, path) => /^(inputs|outputs)\[\d+\]\.shape$/.test(path) && isShape(v)],
  // Only where the binary tensor extension puts them (an input's size, an output's options, the request's option),
  // never the same key elsewhere in a body: a `binary_data_size` under some other object is somebody's data.
  ['binary_data_size', (v, path) => /^inputs\[\d+\]\.parameters\.binary_data_size$/.test(path) && Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 36],
  ['classification', (v, path) => /^outputs\[\d+\]\.parameters\.classification$/.test(path) && Number.isInteger(v) && (v as number) >= 0 && (v as number) < 10_000],
  ['binary_data', (v, path) => /^outputs\[\d+\]\.parameters\.binary_data$/.test(path) && typeof v === 'boolean'],
  ['binary_data_output', (v, path) => path === 'parameters.binary_data_output' && typeof v === 'boolean'],
]);

/**
 * A tensor name kept as recorded (the model's schema: a target rejects other names): an identifier of letters, digits
 * and `_.:/-` of at most 128 characters that reads as a name (`input_1`, `conv2d_1/BiasAdd:0`) or is a UUID (KServe's
 * TorchServe samples name their inputs so); never one shaped like a credential, a long number or a random token
 * (those are `{name}`, and replay asks the target's model metadata for them).
 */
export function isTensorName(v: unknown): v is string {
  if (typeof v !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$/.test(v) || credentialShaped(v)) return false;
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v) || (!looksLikeData(v) && !/^[A-Z0-9_-]{12,}$/.test(v));
}

/** A tensor shape: up to 16 dimensions, each an integer ≥ −1 (−1: variable), or one such integer (a scalar shape, as in KServe's samples). */
function isShape(v: unknown): v is number[] | number {
  const dim = (x: unknown) => Number.isInteger(x) && (x as number) >= -1 && (x as number) < 2 ** 31;
  return Array.isArray(v) ? v.length <= 16 && v.every(dim) : dim(v);
}

/**
 * The model a route names at its first model position (`protocols/routes.ts`), as the trace keeps it: a public id, or
 * one with a fingerprinted part (`{model:…}`); null when the route names none or the trace kept none (`{model}`).
 */
export function routeModel(route: string): string | null {
  const id = modelIdsOf(route)[0];
  return id === undefined || id === MODEL_PLACEHOLDER ? null : id;
}

/** Strings for the synthesizer: the target's names for input tensors the trace did not keep (see `SynthOptions.tensorNames`). */
export function tensorNameAt(r: TraceRecord, opts?: SynthOptions): ((path: string) => string | undefined) | undefined {
  const names = opts?.tensorNames?.[r.route];
  if (!names) return undefined;
  return (path) => {
    const m = /^inputs\[(\d+)\]\.name$/.exec(path);
    return m ? names[Number(m[1])] : undefined;
  };
}

/** Datatypes of the Open Inference Protocol (any other value is not kept). */
const DATATYPES = new Set(['BOOL', 'UINT8', 'UINT16', 'UINT32', 'UINT64', 'INT8', 'INT16', 'INT32', 'INT64', 'FP16', 'FP32', 'FP64', 'BYTES', 'BF16']);

/** Header of the binary tensor extension (Triton `binary_tensor_data` extension). */
export const INFERENCE_HEADER = 'inference-header-content-length';

const ROUTE = /^\/v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/infer$/;

type Tensor = { name?: unknown; datatype?: unknown; shape?: unknown };

/** Input or output tensors of a KServe v2 body: name (or `{name}` when not kept), datatype, shape, element count. */
export function tensors(list: unknown): Array<{ name: string; datatype: string; shape: number[]; elements: number }> {
  if (!Array.isArray(list)) return [];
  return list.map((t: Tensor) => {
    const shape = isShape(t?.shape) ? (Array.isArray(t.shape) ? t.shape : [t.shape]) : [];
    return {
      name: isTensorName(t?.name) ? t.name : '{name}',
      datatype: typeof t?.datatype === 'string' && DATATYPES.has(t.datatype) ? t.datatype : '{other}',
      shape,
      elements: shape.reduce((a, b) => a * b, 1),
    };
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
    const d = describeJsonBody('kserve-v2', ctx, body, { keep: KSERVE_SCHEMA, layout: KSERVE_LAYOUT });
    d.features.tensors = tensors(body.inputs);
    d.model = routeModel(ctx.route);
    if (n !== null) {
      d.shape.layout = 'kserve-binary';
      d.features.binaryBytes = ctx.totalBytes - n;
    }
    return d;
  },
  synthesize(r: TraceRecord, rngs: SynthRngs, opts?: SynthOptions): SynthesizedRequest {
    const json = Buffer.from(JSON.stringify(synthesizeJsonBody(r, rngs, tensorNameAt(r, opts))));
    const path = fillRoute(r.route, rngs.rng);
    if (r.shape.layout === 'kserve-binary') {
      const tail = seededBytes(r.features.binaryBytes ?? 0, rngs.rng);
      return { method: r.method, path, headers: { 'content-type': sentContentType(r.shape.contentType, 'application/octet-stream'), [INFERENCE_HEADER]: String(json.length) }, body: Buffer.concat([json, tail]) };
    }
    return { method: r.method, path, headers: { 'content-type': sentContentType(r.shape.contentType, 'application/json') }, body: json };
  },
  extractResponse(body: unknown): { features?: Features } {
    const outs = tensors((body as { outputs?: unknown })?.outputs);
    return outs.length > 0 ? { features: { outputTensors: outs.map(({ name, datatype, shape }) => ({ name, datatype, shape })) } } : {};
  },
};
