import type { Features, Params } from '../../types.ts';
import { DATATYPE_BYTES, MAX_EVENTS, MAX_HEADERS, MAX_HEADER_VALUE_CHARS, MAX_IMAGE_SIDE_PX, MAX_JSON_VALUES, MAX_LIST_ITEMS, MAX_MESSAGES, MAX_NAME_CHARS, MAX_PARAMS, MAX_PARAM_ARRAY, MAX_PROMPT_TOKENS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_SPAN_US, MAX_TENSOR_DIM, MAX_TENSOR_DIMS, SPAN_UNIT } from './caps.ts';
import { FIELD_VALUE, TOKEN, checkInt, checkList, checkString, fail, isMap, optInt, optString, show } from './problems.ts';

/**
 * Checks decoded `params`: a map of at most {@link MAX_PARAMS} entries whose values are null, booleans, finite numbers,
 * texts of at most {@link MAX_NAME_CHARS} characters or lists of at most {@link MAX_PARAM_ARRAY} finite numbers.
 * @returns the params and the longest value's JSON length (what one `p` node can put into a body).
 */
export function checkParams(v: unknown): { params: Params; maxBytes: number } {
  if (!isMap(v)) fail(`params is ${show(v)}, not a map`);
  const keys = Object.keys(v);
  if (keys.length > MAX_PARAMS) fail(`params has ${keys.length} entries, over the cap of ${MAX_PARAMS}`);
  let maxBytes = 4;
  for (const k of keys) {
    if (k.length > MAX_NAME_CHARS) fail(`a params key is ${k.length} characters long, over the cap of ${MAX_NAME_CHARS}`);
    const x = v[k];
    const what = `params[${JSON.stringify(k.slice(0, 60))}]`;
    if (x === null || typeof x === 'boolean') continue;
    if (typeof x === 'number') {
      if (!Number.isFinite(x)) fail(`${what} = ${x} is not finite`);
      maxBytes = Math.max(maxBytes, 24);
    } else if (typeof x === 'string') {
      checkString(x, what, MAX_NAME_CHARS);
      maxBytes = Math.max(maxBytes, JSON.stringify(x).length);
    } else if (Array.isArray(x)) {
      checkList(x, what, MAX_PARAM_ARRAY, 'elements');
      for (let i = 0; i < x.length; i++) if (typeof x[i] !== 'number' || !Number.isFinite(x[i])) fail(`${what}[${i}] = ${show(x[i])} is not a finite number`);
      maxBytes = Math.max(maxBytes, 2 + 25 * x.length);
    } else {
      fail(`${what} is ${show(x)}, not a number, text, boolean or list of numbers`);
    }
  }
  return { params: v as Params, maxBytes };
}

/**
 * Checks decoded event offset deltas (`[first, d1, d2, …]`) and returns the offsets: at most {@link MAX_EVENTS}, each
 * within `[0, MAX_SPAN_US]`, never decreasing.
 */
export function checkEventOffsets(v: unknown): number[] {
  const deltas = checkList(v, 'event_offsets', MAX_EVENTS, 'events per response');
  const out = new Array<number>(deltas.length);
  let acc = 0;
  for (let i = 0; i < deltas.length; i++) {
    const d = checkInt(deltas[i], i === 0 ? 'event_offsets[0]' : `event_offsets delta ${i}`, 0, MAX_SPAN_US, SPAN_UNIT);
    acc += d;
    if (acc > MAX_SPAN_US) fail(`event ${i} comes ${acc} µs after the request, over the cap of ${MAX_SPAN_US} ${SPAN_UNIT}`);
    out[i] = acc;
  }
  return out;
}

/** What the features of a record add to its synthesized size. */
export interface FeatureCosts {
  promptTokens: number;
  imageBytes: number;
  partBytes: number;
  binaryBytes: number;
}

/** Bytes of the working buffer synthesis uses for an image of these dimensions (clamped as `synth/image.ts` clamps them). */
export function imageWorkBytes(width: number, height: number): number {
  const w = Math.max(1, Math.min(width, 16384));
  const h = Math.max(1, Math.min(height, Math.floor(40_000_000 / w)));
  return w * h * 4;
}

export function checkImage(v: unknown, what: string): number {
  if (!isMap(v)) fail(`${what} is ${show(v)}, not a map`);
  const format = checkString(v.format, `${what}.format`, MAX_NAME_CHARS);
  const width = checkInt(v.width, `${what}.width`, 0, MAX_IMAGE_SIDE_PX, 'pixels');
  const height = checkInt(v.height, `${what}.height`, 0, MAX_IMAGE_SIDE_PX, 'pixels');
  checkInt(v.bytes, `${what}.bytes`, 0, MAX_REQUEST_BYTES, 'bytes per request body');
  return format === 'url' ? 0 : imageWorkBytes(width, height);
}

export function checkTensor(v: unknown, what: string, input: boolean): number {
  if (!isMap(v)) fail(`${what} is ${show(v)}, not a map`);
  checkString(v.name, `${what}.name`, MAX_NAME_CHARS);
  const datatype = checkString(v.datatype, `${what}.datatype`, MAX_NAME_CHARS);
  const shape = checkList(v.shape, `${what}.shape`, MAX_TENSOR_DIMS, 'dimensions');
  let elements = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = checkInt(shape[i], `${what}.shape[${i}]`, -1, MAX_TENSOR_DIM, 'elements');
    if (d >= 0) elements *= d;
  }
  if (!input) return 0;
  checkInt(v.elements, `${what}.elements`, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, '');
  const bytes = elements * (DATATYPE_BYTES[datatype] ?? 1);
  if (bytes > MAX_REQUEST_BYTES) fail(`${what}.shape = [${shape.join(',')}] ${datatype} is ${bytes} bytes, over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
  return bytes;
}

export function checkPairs(v: unknown, what: string, header: boolean): void {
  const list = checkList(v, what, MAX_HEADERS, 'entries per request');
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    if (!Array.isArray(e) || e.length !== 2) fail(`${what}[${i}] is ${show(e)}, not a [name, value] pair`);
    const n = checkString(e[0], `${what}[${i}] name`, header ? MAX_NAME_CHARS : MAX_HEADER_VALUE_CHARS);
    const val = optString(e[1], `${what}[${i}] value`, MAX_HEADER_VALUE_CHARS);
    // A name the trace keeps as a token (`{h:<fingerprint>}`; `{header}` in format 1) is not sent again.
    if (header && !TOKEN.test(n) && !/^\{h(?:eader|:[0-9a-f]{8})\}$/.test(n)) fail(`${what}[${i}] name ${show(n)} is not a header name`);
    if (header && val !== null && !FIELD_VALUE.test(val)) fail(`${what}[${i}] value is not a valid header value`);
  }
}

/**
 * Checks decoded `features` (every numeric field for type, integer-ness and range, every list for length) and returns
 * what they add to the synthesized size. Keys this version does not know are left as they are.
 */
export function checkFeatures(v: unknown, eventCount: number | null): { features: Features; costs: FeatureCosts } {
  if (!isMap(v)) fail(`features is ${show(v)}, not a map`);
  const f = v as Record<string, unknown>;
  const costs: FeatureCosts = { promptTokens: 0, imageBytes: 0, partBytes: 0, binaryBytes: 0 };
  if (f.messageTokens !== undefined) {
    const mt = checkList(f.messageTokens, 'messageTokens', MAX_MESSAGES, 'messages per request');
    let sum = 0;
    for (let i = 0; i < mt.length; i++) {
      sum += checkInt(mt[i], `messageTokens[${i}]`, 0, MAX_PROMPT_TOKENS, 'tokens per request');
      if (sum > MAX_PROMPT_TOKENS) fail(`messageTokens sum to ${sum} tokens by entry ${i}, over the cap of ${MAX_PROMPT_TOKENS} tokens per request`);
    }
    costs.promptTokens = sum;
  }
  if (f.prefixBlocks !== undefined) {
    const b = checkList(f.prefixBlocks, 'prefixBlocks', MAX_PROMPT_TOKENS, 'blocks per request');
    for (let i = 0; i < b.length; i++) checkInt(b[i], `prefixBlocks[${i}]`, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, '');
  }
  if (f.prefixBlockTokens !== undefined) checkInt(f.prefixBlockTokens, 'prefixBlockTokens', 1, MAX_PROMPT_TOKENS, 'tokens per block');
  if (f.promptFingerprint !== undefined) checkString(f.promptFingerprint, 'promptFingerprint', MAX_NAME_CHARS);
  if (f.prefixFingerprints !== undefined) {
    const p = checkList(f.prefixFingerprints, 'prefixFingerprints', MAX_PROMPT_TOKENS, 'blocks per request');
    for (let i = 0; i < p.length; i++) checkString(p[i], `prefixFingerprints[${i}]`, MAX_NAME_CHARS);
  }
  if (f.images !== undefined) {
    const imgs = checkList(f.images, 'images', MAX_LIST_ITEMS, 'images per request');
    for (let i = 0; i < imgs.length; i++) costs.imageBytes += checkImage(imgs[i], `images[${i}]`);
  }
  if (f.tensors !== undefined) {
    const ts = checkList(f.tensors, 'tensors', MAX_LIST_ITEMS, 'tensors per request');
    let bytes = 0;
    for (let i = 0; i < ts.length; i++) {
      bytes += checkTensor(ts[i], `tensors[${i}]`, true);
      if (bytes > MAX_REQUEST_BYTES) fail(`tensors hold ${bytes} bytes by tensors[${i}], over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
    }
  }
  if (f.outputTensors !== undefined) {
    const ts = checkList(f.outputTensors, 'outputTensors', MAX_LIST_ITEMS, 'tensors per answer');
    for (let i = 0; i < ts.length; i++) checkTensor(ts[i], `outputTensors[${i}]`, false);
  }
  if (f.binaryBytes !== undefined) costs.binaryBytes = checkInt(f.binaryBytes, 'binaryBytes', 0, MAX_REQUEST_BYTES, 'bytes per request body');
  if (f.batch !== undefined) checkInt(f.batch, 'batch', 0, MAX_JSON_VALUES, 'rows per request');
  if (f.traceContext !== undefined && f.traceContext !== 'incoming' && f.traceContext !== 'added') fail(`traceContext = ${show(f.traceContext)} is not incoming or added`);
  if (f.serverTiming !== undefined) {
    if (!isMap(f.serverTiming)) fail(`serverTiming is ${show(f.serverTiming)}, not a map`);
    const entries = Object.entries(f.serverTiming);
    if (entries.length > MAX_HEADERS) fail(`serverTiming has ${entries.length} entries, over the cap of ${MAX_HEADERS}`);
    for (const [k, x] of entries) {
      if (k.length > MAX_NAME_CHARS) fail(`a serverTiming name is ${k.length} characters long, over the cap of ${MAX_NAME_CHARS}`);
      if (typeof x !== 'number' || !Number.isFinite(x)) fail(`serverTiming[${JSON.stringify(k.slice(0, 60))}] = ${show(x)} is not a finite number`);
    }
  }
  if (f.nonContentEvents !== undefined) {
    const max = eventCount === null ? MAX_EVENTS : Math.max(0, eventCount - 1);
    const nc = checkList(f.nonContentEvents, 'nonContentEvents', MAX_EVENTS, 'events per response');
    for (let i = 0; i < nc.length; i++) checkInt(nc[i], `nonContentEvents[${i}]`, 0, max, 'as an event index');
  }
  if (f.eventsCapturedBytes !== undefined) checkInt(f.eventsCapturedBytes, 'eventsCapturedBytes', 0, MAX_RESPONSE_BYTES, 'bytes per response');
  if (f.websocket !== undefined) {
    const w = f.websocket;
    if (!isMap(w)) fail(`websocket is ${show(w)}, not a map`);
    for (const k of ['messagesFromClient', 'messagesFromServer', 'bytesFromClient', 'bytesFromServer'] as const) checkInt(w[k], `websocket.${k}`, 0, Number.MAX_SAFE_INTEGER, '');
    optInt(w.firstServerMessageUs, 'websocket.firstServerMessageUs', 0, MAX_SPAN_US, SPAN_UNIT);
    optInt(w.closeCode, 'websocket.closeCode', 0, 65_535, '');
    if (w.closedBy !== null && w.closedBy !== undefined && w.closedBy !== 'client' && w.closedBy !== 'server' && w.closedBy !== 'proxy') fail(`websocket.closedBy = ${show(w.closedBy)} is not client, server or proxy`);
  }
  if (f.headers !== undefined) checkPairs(f.headers, 'headers', true);
  if (f.query !== undefined) checkPairs(f.query, 'query', false);
  if (f.parts !== undefined) {
    const parts = checkList(f.parts, 'parts', MAX_LIST_ITEMS, 'parts per request');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      const what = `parts[${i}]`;
      if (!isMap(p)) fail(`${what} is ${show(p)}, not a map`);
      optString(p.name, `${what}.name`, MAX_NAME_CHARS);
      const ct = optString(p.contentType, `${what}.contentType`, MAX_NAME_CHARS);
      if (ct !== null && !FIELD_VALUE.test(ct)) fail(`${what}.contentType is not a valid header value`);
      if (p.filename !== undefined && typeof p.filename !== 'boolean') fail(`${what}.filename = ${show(p.filename)} is not a boolean`);
      const bytes = checkInt(p.bytes, `${what}.bytes`, 0, MAX_REQUEST_BYTES, 'bytes per request body');
      costs.partBytes += p.image !== undefined ? checkImage(p.image, `${what}.image`) : bytes;
      if (costs.partBytes > MAX_REQUEST_BYTES) fail(`parts hold ${costs.partBytes} bytes by ${what}, over the cap of ${MAX_REQUEST_BYTES} bytes per request body`);
    }
  }
  return { features: f as Features, costs };
}
