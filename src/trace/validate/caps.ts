import { PROTOCOL_IDS } from '../../protocols/ids.ts';

const MiB = 1024 * 1024;

/**
 * Prompt tokens per request: `prompt_tokens`, each `messageTokens` entry and their sum (2,000,000). Above the largest
 * context windows served today (1–2M tokens), so no real request is refused; a prompt this long synthesizes in well
 * under a second into about 20 MB.
 */
export const MAX_PROMPT_TOKENS = 2_000_000;

/** Output tokens per request (`output_tokens`, 2,000,000): no server generates more than its context window. */
export const MAX_OUTPUT_TOKENS = 2_000_000;

/**
 * `max_tokens` as the client sent it (0 … 2³¹ − 1): the int32 range servers parse it into. It is passed on, never
 * allocated from.
 */
export const MAX_MAX_TOKENS = 2 ** 31 - 1;

/**
 * Bytes per request body (256 MiB): `request_bytes` (an opaque body is replayed as that many seeded bytes),
 * `binaryBytes` (KServe binary tensor data), each part of a form and their sum, an image's encoded size, and the bytes
 * of a request's input tensors (elements × datatype size). The same as the synthesis threads' default budget of bodies
 * made ahead (`synth/pool.ts`): a larger body would fill it on its own.
 */
export const MAX_REQUEST_BYTES = 256 * MiB;

/**
 * Bytes synthesized for one request, estimated from the record before anything is built (256 MiB): JSON strings and
 * values, prompt text (at most {@link MAX_BYTES_PER_TOKEN} bytes a token), images (4 bytes a pixel: the working
 * buffer), binary tensor data and parts. The same budget as {@link MAX_REQUEST_BYTES}.
 */
export const MAX_SYNTH_BYTES = 256 * MiB;

/** Longest synthesized prompt token in bytes (a space and at most 9 letters, see `synth/text.ts`), for the estimate. */
export const MAX_BYTES_PER_TOKEN = 10;

/**
 * Bytes per response (`response_bytes`, `eventsCapturedBytes`: 1 TiB). Answers are never synthesized; the cap keeps
 * sums of them exact in doubles.
 */
export const MAX_RESPONSE_BYTES = 2 ** 40;

/**
 * Messages (chat) or prompts/inputs (completions, embeddings) per request: `message_count` and the length of
 * `messageTokens` (100,000; OpenAI accepts 2,048 embedding inputs, long agent conversations hold a few thousand
 * messages).
 */
export const MAX_MESSAGES = 100_000;

/**
 * Turns per session (`turn` of trace format 3): 100,000, as many as messages per request (each turn of a chat adds at
 * least one message; an agent's run of a few thousand calls is long).
 */
export const MAX_TURNS = 100_000;

/**
 * Characters of JSON strings synthesized for one request (32 Mi): each `sizes` entry of a string, and their sum with
 * every uniform array's repetitions. Twice the recorder's default capture bound (16 MiB, `--max-capture-bytes`): with
 * default settings no recorded JSON body holds more. Synthesizing 32 Mi characters takes about 5 s in a synthesis
 * thread on the reference machine.
 */
export const MAX_STRING_CHARS = 32 * MiB;

/**
 * JSON values synthesized for one request (4,194,304 = 2²²): each uniform array's length (`sizes` entry), and every
 * value of the body counted with its repetitions (a 1×3×1024×1024 tensor sent as JSON is 3.1M values). Measured here: 4M
 * values synthesize in about 1 s into 37 MB of JSON, with about 300 MB of transient memory; 16M took 10 s and 900 MB.
 */
export const MAX_JSON_VALUES = 4_194_304;

/** Depth of a request skeleton (256 levels): far deeper than any inference API body; keeps synthesis's recursion shallow. */
export const MAX_SKELETON_DEPTH = 256;

/**
 * Nodes of one request skeleton (1,000,000), and entries of a record's `sizes`: a uniform array is one node whatever
 * its length, so only bodies with a million distinct members reach it.
 */
export const MAX_SKELETON_NODES = 1_000_000;

/**
 * Longest span of a trace, and of any duration in it (366 days in µs = 31,622,400,000,000): every `offset_us`,
 * `ttfb_us`, `ttft_us`, `latency_us`, stream event offset and WebSocket timing is at most this. Public production traces
 * span a week (Azure LLM 2023/2024) to a few months (BurstGPT); a year keeps them all, and with it a replay never waits
 * for an arrival decades away. Integer µs this size are exact in doubles (below 2⁵³ by a factor of 280).
 */
export const MAX_SPAN_US = 366 * 24 * 3600 * 1_000_000;

/** Events of one streamed answer (4,000,000): one per generated token ({@link MAX_OUTPUT_TOKENS}) and as many others (role, usage, keep-alives). */
export const MAX_EVENTS = 4_000_000;

/** Pixels on an image's side (65,535): the most JPEG and GIF can encode (WebP: 16,383). Synthesis clamps to 16,384 × 2,441 anyway. */
export const MAX_IMAGE_SIDE_PX = 65_535;

/** Entries of one request's list features: images, parts, input and output tensors (100,000). */
export const MAX_LIST_ITEMS = 100_000;

/** Dimensions of one tensor shape (64; the Open Inference Protocol sets none, real models use up to 8). */
export const MAX_TENSOR_DIMS = 64;

/** Largest tensor dimension (2³¹ − 1, the range the recorder keeps); -1 (a dynamic dimension) is allowed too. */
export const MAX_TENSOR_DIM = 2 ** 31 - 1;

/**
 * Kept header and query entries per request (256 each): a header name at most {@link MAX_NAME_CHARS}, a query name and
 * any value at most {@link MAX_HEADER_VALUE_CHARS}.
 */
export const MAX_HEADERS = 256;

/** Characters of a kept header or query value (8,192: the request-line/header limit of common servers). */
export const MAX_HEADER_VALUE_CHARS = 8192;

/** Characters of a route (8,192: the longest request line common servers accept). */
export const MAX_ROUTE_CHARS = 8192;

/**
 * Characters of a name-like string (1,024): a model, a kept string parameter, an object key or literal of a skeleton,
 * a tensor name or datatype, an image format, a content type, a part name, a fingerprint, a `meta` text.
 */
export const MAX_NAME_CHARS = 1024;

/** Kept parameter entries per request (10,000) and elements of one kept array parameter (1,024). */
export const MAX_PARAMS = 10_000;
export const MAX_PARAM_ARRAY = 1024;

/**
 * Bytes of one stored blob (shape, features, event offsets: 16 MiB; params: 1 MiB), checked with SQLite's
 * `octet_length` before the blob is read at all: a MessagePack blob decodes to at most about 8× its size in memory.
 */
export const MAX_BLOB_BYTES = 16 * MiB;
export const MAX_PARAMS_BLOB_BYTES = 1 * MiB;

/** Bytes of one `meta` value (1 MiB) and rows of the `meta` table (10,000). */
export const MAX_META_VALUE_BYTES = 1 * MiB;
export const MAX_META_ROWS = 10_000;

/** Bytes of a scalar cell (a number or a short text such as `method`, `protocol`, `error_kind`), read before its value. */
export const MAX_SCALAR_CELL_BYTES = 64;

/**
 * Mean characters of a number as JSON text, the `c` of a uniform array's numeric element (24: the longest a double
 * prints, as `anonymize/skeleton.ts` MAX_NUMBER_CHARS caps it when recording).
 */
export const MAX_NUMBER_TEXT_CHARS = 24;

/** Every cap by name, for messages, documentation and tests. */
export const TRACE_CAPS = {
  MAX_PROMPT_TOKENS, MAX_OUTPUT_TOKENS, MAX_MAX_TOKENS, MAX_REQUEST_BYTES, MAX_SYNTH_BYTES, MAX_RESPONSE_BYTES, MAX_MESSAGES, MAX_TURNS,
  MAX_STRING_CHARS, MAX_JSON_VALUES, MAX_SKELETON_DEPTH, MAX_SKELETON_NODES, MAX_SPAN_US, MAX_EVENTS, MAX_IMAGE_SIDE_PX,
  MAX_LIST_ITEMS, MAX_TENSOR_DIMS, MAX_TENSOR_DIM, MAX_HEADERS, MAX_HEADER_VALUE_CHARS, MAX_ROUTE_CHARS, MAX_NAME_CHARS,
  MAX_PARAMS, MAX_PARAM_ARRAY, MAX_BLOB_BYTES, MAX_PARAMS_BLOB_BYTES, MAX_META_VALUE_BYTES, MAX_META_ROWS, MAX_SCALAR_CELL_BYTES,
  MAX_NUMBER_TEXT_CHARS,
} as const;

export const SPAN_UNIT = 'µs (366 days, the longest span a trace may cover)';

/**
 * Protocols whose adapter rebuilds a body the trace describes as `binary` from its features (parts, images) or as
 * seeded bytes, without a skeleton (`protocols/form.ts`, `torchserve.ts`). Every other adapter of
 * `protocols/ids.ts` rebuilds its body from the JSON skeleton, so a record of it described as binary (no skeleton)
 * could not be synthesized; ids without an adapter (`other`, `websocket`) are replayed as seeded bytes.
 * A new adapter that synthesizes binary bodies without a skeleton belongs in this list.
 */
export const BINARY_SYNTH_PROTOCOLS: ReadonlySet<string> = new Set(['multipart', 'form', 'torchserve']);
export const JSON_SYNTH_PROTOCOLS: ReadonlySet<string> = new Set(PROTOCOL_IDS.filter((id) => !BINARY_SYNTH_PROTOCOLS.has(id)));

/** Bytes per element of each Open Inference Protocol datatype (BYTES: at least its 4-byte length prefix; others: 1). */
export const DATATYPE_BYTES: Record<string, number> = {
  BOOL: 1, UINT8: 1, INT8: 1, UINT16: 2, INT16: 2, FP16: 2, BF16: 2, UINT32: 4, INT32: 4, FP32: 4, UINT64: 8, INT64: 8, FP64: 8, BYTES: 4,
};
