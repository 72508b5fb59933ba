import type { Features, Params, SessionLink, TraceRecord } from '../../types.ts';
import { JSON_SYNTH_PROTOCOLS, MAX_BLOB_BYTES, MAX_BYTES_PER_TOKEN, MAX_EVENTS, MAX_MAX_TOKENS, MAX_MESSAGES, MAX_NAME_CHARS, MAX_OUTPUT_TOKENS, MAX_PARAMS_BLOB_BYTES, MAX_PROMPT_TOKENS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_ROUTE_CHARS, MAX_SCALAR_CELL_BYTES, MAX_SKELETON_NODES, MAX_SPAN_US, MAX_SYNTH_BYTES, MAX_TURNS, SPAN_UNIT } from './caps.ts';
import { type FeatureCosts, checkEventOffsets, checkFeatures, checkParams } from './features.ts';
import { IDENT, ROUTE_CHARS, TOKEN, TraceProblem, checkInt, checkList, checkString, fail, optInt, optString, show } from './problems.ts';
import { type CheckedShape, checkSizes } from './skeleton.ts';

/** The `requests` columns of trace format 1 (`schema.ts`), each with the most bytes its cell may hold before it is read. */
export const REQUEST_COLUMNS: ReadonlyArray<readonly [name: string, maxBytes: number]> = [
  ['seq', MAX_SCALAR_CELL_BYTES], ['offset_us', MAX_SCALAR_CELL_BYTES], ['method', MAX_SCALAR_CELL_BYTES], ['route', MAX_ROUTE_CHARS * 2],
  ['protocol', MAX_SCALAR_CELL_BYTES], ['status', MAX_SCALAR_CELL_BYTES], ['error_kind', MAX_SCALAR_CELL_BYTES],
  ['request_bytes', MAX_SCALAR_CELL_BYTES], ['response_bytes', MAX_SCALAR_CELL_BYTES], ['ttfb_us', MAX_SCALAR_CELL_BYTES],
  ['ttft_us', MAX_SCALAR_CELL_BYTES], ['latency_us', MAX_SCALAR_CELL_BYTES], ['streamed', MAX_SCALAR_CELL_BYTES],
  ['event_count', MAX_SCALAR_CELL_BYTES], ['prompt_tokens', MAX_SCALAR_CELL_BYTES], ['output_tokens', MAX_SCALAR_CELL_BYTES],
  ['message_count', MAX_SCALAR_CELL_BYTES], ['model', MAX_NAME_CHARS * 4], ['max_tokens', MAX_SCALAR_CELL_BYTES],
  ['shape_id', MAX_SCALAR_CELL_BYTES], ['params', MAX_PARAMS_BLOB_BYTES], ['features', MAX_BLOB_BYTES], ['event_offsets', MAX_BLOB_BYTES],
  ['session', MAX_SCALAR_CELL_BYTES], ['turn', MAX_SCALAR_CELL_BYTES], ['parent_seq', MAX_SCALAR_CELL_BYTES], ['think_us', MAX_SCALAR_CELL_BYTES],
];

/** The columns format 3 added (`schema.ts` SESSION_COLUMNS_DDL): read as NULL from older traces. */
export const SESSION_COLUMNS: ReadonlySet<string> = new Set(['session', 'turn', 'parent_seq', 'think_us']);

/** Index of each column in {@link REQUEST_COLUMNS}, and so in a {@link GuardedRow}. */
export const COL = Object.fromEntries(REQUEST_COLUMNS.map(([c], i) => [c, i])) as Record<string, number>;

/** What a guarded `SELECT` reads in place of a cell over its byte cap: this, then the cell's length in bytes. */
export const OVERSIZE = '\u0000oversize:';

/**
 * The column list of a `SELECT` that reads a `requests` row without reading an oversized cell: a cell over its byte
 * cap reads as the text `\0oversize:<bytes>` instead (SQLite takes a blob's length from the record header, and only
 * the cells within their caps are read). Read the statement with `.raw()`: a {@link GuardedRow} is positional.
 */
export function guardedRequestColumns(hasSessions = true): string {
  return REQUEST_COLUMNS.map(([c, max]) => (!hasSessions && SESSION_COLUMNS.has(c) ? 'NULL' : `iif(octet_length(${c}) > ${max}, char(0) || 'oversize:' || octet_length(${c}), ${c})`)).join(', ');
}

/** A `requests` row as {@link guardedRequestColumns} reads it (`.raw()`): the columns of {@link REQUEST_COLUMNS} in order. */
export type GuardedRow = readonly unknown[];

/** The sequence number of a guarded row as a message shows it. */
export function rowSeq(row: GuardedRow): string {
  const v = row[0];
  return typeof v === 'number' ? String(v) : show(v);
}

/** How the reader gets what a row refers to: its shape by id, and blobs decoded. */
export interface RowContext {
  /** The checked shape of an id. @throws TraceProblem when it is missing or fails its checks. */
  shape(id: number): CheckedShape;
  /** Decodes a MessagePack blob. @throws on malformed bytes. */
  decode(blob: Uint8Array): unknown;
}

/** A cell of a guarded row: its value, or a problem when it was over its column's byte cap. */
export function cell(row: GuardedRow, i: number): unknown {
  const v = row[i];
  if (typeof v === 'string' && v.charCodeAt(0) === 0 && v.startsWith(OVERSIZE)) {
    const [c, max] = REQUEST_COLUMNS[i]!;
    fail(`${c} holds ${v.slice(OVERSIZE.length)} bytes, over the cap of ${max} bytes for that column`);
  }
  return v;
}

/** A blob cell decoded (undefined for NULL). */
export function blobOf(row: GuardedRow, i: number, ctx: RowContext): unknown {
  const v = cell(row, i);
  const c = REQUEST_COLUMNS[i]![0];
  if (v === null || v === undefined) return undefined;
  if (!(v instanceof Uint8Array)) fail(`${c} = ${show(v)} is not a blob`);
  try {
    return ctx.decode(v);
  } catch (err) {
    fail(`${c} cannot be decoded: ${(err as Error).message}`);
  }
}

export const NO_COSTS: FeatureCosts = { promptTokens: 0, imageBytes: 0, partBytes: 0, binaryBytes: 0 };

/**
 * Checks one `requests` row as read with {@link guardedRequestColumns} and builds its record: every column for type,
 * integer-ness and range, every blob for size before it is decoded and for content after, the features against the
 * shape's skeleton, and the whole request's synthesized size. Nothing is allocated from a stored size.
 * @throws TraceProblem naming the field, its value and the cap.
 */
export function checkRow(row: GuardedRow, ctx: RowContext): TraceRecord {
  // No closures here: this runs once per record, and helpers made per call cost more than the checks.
  const seq = checkInt(cell(row, COL.seq!), 'seq', 0, Number.MAX_SAFE_INTEGER, '');
  const offsetUs = checkInt(cell(row, COL.offset_us!), 'offset_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const method = checkString(cell(row, COL.method!), 'method', MAX_SCALAR_CELL_BYTES);
  if (!TOKEN.test(method)) fail(`method = ${show(method)} is not an HTTP method`);
  const route = checkString(cell(row, COL.route!), 'route', MAX_ROUTE_CHARS);
  if (!ROUTE_CHARS.test(route)) fail(`route = ${show(route)} is not a request path (empty, or spaces or control characters)`);
  const protocol = checkString(cell(row, COL.protocol!), 'protocol', MAX_SCALAR_CELL_BYTES);
  if (!IDENT.test(protocol)) fail(`protocol = ${show(protocol)} is not a protocol id`);
  const status = optInt(cell(row, COL.status!), 'status', 100, 999, '(an HTTP status)');
  const errorKind = optString(cell(row, COL.error_kind!), 'error_kind', MAX_SCALAR_CELL_BYTES);
  if (errorKind !== null && !IDENT.test(errorKind)) fail(`error_kind = ${show(errorKind)} is not an error kind`);
  const requestBytes = checkInt(cell(row, COL.request_bytes!), 'request_bytes', 0, MAX_REQUEST_BYTES, 'bytes per request body');
  const responseBytes = optInt(cell(row, COL.response_bytes!), 'response_bytes', 0, MAX_RESPONSE_BYTES, 'bytes per response');
  const ttfbUs = optInt(cell(row, COL.ttfb_us!), 'ttfb_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const ttftUs = optInt(cell(row, COL.ttft_us!), 'ttft_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const latencyUs = optInt(cell(row, COL.latency_us!), 'latency_us', 0, MAX_SPAN_US, SPAN_UNIT);
  const streamed = cell(row, COL.streamed!);
  if (streamed !== 0 && streamed !== 1) fail(`streamed = ${show(streamed)} is not 0 or 1`);
  const eventCount = optInt(cell(row, COL.event_count!), 'event_count', 0, MAX_EVENTS, 'events per response');
  const promptTokens = optInt(cell(row, COL.prompt_tokens!), 'prompt_tokens', 0, MAX_PROMPT_TOKENS, 'tokens per request');
  const outputTokens = optInt(cell(row, COL.output_tokens!), 'output_tokens', 0, MAX_OUTPUT_TOKENS, 'tokens per request');
  const messageCount = optInt(cell(row, COL.message_count!), 'message_count', 0, MAX_MESSAGES, 'messages per request');
  const model = optString(cell(row, COL.model!), 'model', MAX_NAME_CHARS);
  const maxTokens = optInt(cell(row, COL.max_tokens!), 'max_tokens', 0, MAX_MAX_TOKENS, 'tokens');
  const shapeId = checkInt(cell(row, COL.shape_id!), 'shape_id', 0, Number.MAX_SAFE_INTEGER, '');
  const { shape, plan } = ctx.shape(shapeId);
  if (shape.kind === 'binary' && JSON_SYNTH_PROTOCOLS.has(protocol)) fail(`a ${protocol} request is described as binary, without the JSON shape its body is rebuilt from`);

  const rawParams = blobOf(row, COL.params!, ctx);
  const { params, maxBytes: paramBytes } = rawParams === undefined ? { params: {} as Params, maxBytes: 4 } : checkParams(rawParams);
  const rawEvents = blobOf(row, COL.event_offsets!, ctx);
  const eventOffsetsUs = rawEvents === undefined ? null : checkEventOffsets(rawEvents);
  const rawFeatures = blobOf(row, COL.features!, ctx);
  const { features, costs } = rawFeatures === undefined ? { features: {} as Features, costs: NO_COSTS } : checkFeatures(rawFeatures, eventOffsetsUs?.length ?? eventCount);

  // What synthesis will build, before it is built.
  // Only a JSON body is rebuilt from the skeleton (`protocols/index.ts` synthesizeRequest); other kinds ignore it.
  const jsonBytes = plan && shape.kind === 'json' ? checkSizes(plan, features.sizes, paramBytes) : 0;
  if (jsonBytes === 0 && features.sizes !== undefined) checkList(features.sizes, 'sizes', MAX_SKELETON_NODES, 'entries (skeleton nodes)');
  const promptBytes = costs.promptTokens * MAX_BYTES_PER_TOKEN;
  let total = jsonBytes + promptBytes + costs.imageBytes + costs.partBytes + costs.binaryBytes;
  if (shape.kind === 'unparseable' || shape.kind === 'binary') total = Math.max(total, requestBytes);
  if (total > MAX_SYNTH_BYTES) {
    const parts = [['JSON', jsonBytes], ['prompt text', promptBytes], ['images', costs.imageBytes], ['parts', costs.partBytes], ['binary data', costs.binaryBytes]]
      .filter(([, n]) => (n as number) > 0).map(([k, n]) => `${k} ${Math.round(n as number)}`).join(', ');
    fail(`the request would be synthesized as about ${Math.round(total)} bytes${parts ? ` (${parts})` : ''}, over the cap of ${MAX_SYNTH_BYTES} bytes per request`);
  }

  const session = sessionOf(row, seq);
  return {
    seq, offsetUs, method, route, protocol: protocol as TraceRecord['protocol'], status, errorKind: errorKind as TraceRecord['errorKind'],
    requestBytes, responseBytes, ttfbUs, ttftUs, latencyUs, streamed: streamed === 1, eventCount, eventOffsetsUs,
    promptTokens, outputTokens, messageCount, model, maxTokens, shape, params, features, ...(session ? { session } : {}),
  };
}

/** The session columns of a row, checked: all null (a request on its own), or a session, a turn and a parent that came before. */
function sessionOf(row: GuardedRow, seq: number): SessionLink | null {
  const session = optInt(cell(row, COL.session!), 'session', 1, Number.MAX_SAFE_INTEGER, '');
  const turn = optInt(cell(row, COL.turn!), 'turn', 0, MAX_TURNS, 'turns per session');
  const parentSeq = optInt(cell(row, COL.parent_seq!), 'parent_seq', 0, Number.MAX_SAFE_INTEGER, '');
  const thinkUs = optInt(cell(row, COL.think_us!), 'think_us', -MAX_SPAN_US, MAX_SPAN_US, SPAN_UNIT);
  if (session === null) {
    if (turn !== null || parentSeq !== null || thinkUs !== null) fail('turn, parent_seq or think_us is set without a session');
    return null;
  }
  if (turn === null) fail(`session = ${session} without a turn`);
  if (parentSeq !== null && parentSeq >= seq) fail(`parent_seq = ${parentSeq} is not an earlier request than ${seq}`);
  if ((parentSeq === null) !== (thinkUs === null)) fail('parent_seq and think_us are set together or not at all');
  return { session, turn, parentSeq, thinkUs };
}
