/**
 * Core data shapes shared by capture, import, trace and replay. Times are integer µs; sizes are bytes; token counts
 * are tokens of the project tokenizer (see `tokens.ts`).
 */

/**
 * The anonymized structure of a JSON body: keys and types, never values (DESIGN decision 2).
 * - `o`: object with its keys in order; `a`: array with one node per element;
 * - `u`: uniform array (every element has the same node and sizes) — its length is the next entry of `sizes`;
 * - `s`: string — its length in UTF-16 code units is the next entry of `sizes`;
 * - `b`: boolean — its value only where it is a protocol flag (`echo`, a tool's `strict`, …; traces recorded before
 *   this rule kept every boolean's value), else the type alone;
 * - `i`/`f`: integer / other number; as the element of a uniform array of numbers, `c` is the elements' mean length as
 *   JSON text in characters (one decimal), so a replayed tensor has the recorded byte size; `b`: boolean (kept: one bit, and flags such as `include_usage` change load); `z`: null;
 * - `p`: a kept load-driving parameter (e.g. `max_tokens`); its value is in the record's `params` under `name`;
 * - `l`: a literal from a closed vocabulary kept verbatim (e.g. chat `role` values such as `user`).
 * Lengths live outside the node (in `sizes`, depth-first order) so that equal structures share one stored shape.
 */
export type SkeletonNode =
  | { t: 'o'; k: Array<[string, SkeletonNode]> }
  | { t: 'a'; e: SkeletonNode[] }
  | { t: 'u'; of: SkeletonNode | null }
  | { t: 's' }
  | { t: 'i'; c?: number }
  | { t: 'f'; c?: number }
  | { t: 'b'; v?: boolean }
  | { t: 'z' }
  | { t: 'p'; name: string }
  | { t: 'l'; v: string };

/** How a request body was described. */
export type BodyKind = 'none' | 'json' | 'unparseable' | 'binary';

/** The shape of a request: what the synthesizer needs to rebuild a body of the same structure. Stored once per distinct value. */
export interface RequestShape {
  /** How the body was understood. */
  kind: BodyKind;
  /** KServe binary tensor extension: a JSON header followed by raw tensor bytes. */
  layout?: 'kserve-binary';
  /** Content type of the request (media type only, no parameters), or null. */
  contentType: string | null;
  /** JSON structure (kind `json` only). */
  skeleton: SkeletonNode | null;
}

/** Kept load-driving parameter values (`model`, `max_tokens`, `stream`, `n`, `temperature`, …), by JSON key. */
export type Params = Record<string, string | number | boolean | null | number[]>;

/**
 * Per-request features: the numbers that vary between requests of one shape.
 * Token counts use the project tokenizer; `sizes` are the string lengths / uniform-array lengths of the skeleton.
 */
export interface Features {
  /** Depth-first lengths for the skeleton's `s` and `u` nodes. */
  sizes?: number[];
  /** Prompt tokens per chat message (OpenAI chat) or per prompt (completions). */
  messageTokens?: number[];
  /** Prefix block ids (Mooncake `hash_ids`): equal ids mean a shared prompt prefix block. */
  prefixBlocks?: number[];
  /** Tokens per prefix block (Mooncake: 512; fingerprints: the recorder's block size, default 64). */
  prefixBlockTokens?: number;
  /** Keyed fingerprint of the whole prompt (HMAC-SHA256, 64 bits hex): equal prompts have equal fingerprints. */
  promptFingerprint?: string;
  /** Chained keyed fingerprints of each complete prefix block of the prompt. */
  prefixFingerprints?: string[];
  /** Images in the request, in order: format and pixel dimensions (never pixels). */
  images?: Array<{ format: string; width: number; height: number; bytes: number }>;
  /** Input tensors (KServe v2): name, datatype, shape, element count, and for BYTES the total element bytes. */
  tensors?: Array<{ name: string; datatype: string; shape: number[]; elements: number }>;
  /** Output tensors of the answer (KServe v2). */
  outputTensors?: Array<{ name: string; datatype: string; shape: number[] }>;
  /** Bytes after the JSON header in the KServe binary tensor extension. */
  binaryBytes?: number;
  /** Rows in a batch (TF Serving / KServe v1 `instances`, or the first dimension of columnar `inputs`). */
  batch?: number;
  /** W3C trace context: `incoming` when the client sent a `traceparent` (kept as is), `added` when the proxy added one. Never the value. */
  traceContext?: 'incoming' | 'added';
  /** `Server-Timing` durations of the answer, ms by metric name (e.g. `queue`). */
  serverTiming?: Record<string, number>;
  /**
   * Indexes into `eventOffsetsUs` of the events of a streamed answer that carried no generated content (a role-only
   * first chunk, a final `usage` chunk, `[DONE]`, keep-alives), so inter-token latency is taken between content
   * events only. Absent when every event carried content, and in traces recorded before tracewarp 0.1.1.
   */
  nonContentEvents?: number[];
  /** The stream was longer than the capture bound: its events are known for its first this many bytes only. */
  eventsCapturedBytes?: number;
  /** A WebSocket session relayed by the proxy (protocol `websocket`): message counts and sizes, never their data. */
  websocket?: WebSocketSession;
  /** Request header names, with the value where the policy keeps it (else null). */
  headers?: Array<[string, string | null]>;
  /** Query keys, with the value where the policy keeps it (else null). */
  query?: Array<[string, string | null]>;
  /** Parts of a multipart or form body: field name (when schema-like), content type, size; images with dimensions. */
  parts?: Array<{ name: string | null; contentType: string | null; bytes: number; filename?: boolean; image?: { format: string; width: number; height: number; bytes: number } }>;
}

/** Protocol adapters (see `src/protocols/`); `other` is a body described only by length and content type. */
export type ProtocolId =
  | 'openai-chat'
  | 'openai-completions'
  | 'openai-embeddings'
  | 'kserve-generate'
  | 'kserve-v2'
  | 'ollama'
  | 'tgi'
  | 'tf-serving'
  | 'torchserve'
  | 'multipart'
  | 'form'
  | 'generic-json'
  | 'websocket'
  | 'other';

/**
 * What the trace keeps of a WebSocket session (the record's `latencyUs` is the session's duration, its status 101).
 * Sizes are of message payloads in bytes; the close code is RFC 6455 §7.4's (1000 normal, 1001 going away, 1005 none
 * given, 1006 closed without a close frame, 1011 server error).
 */
export interface WebSocketSession {
  messagesFromClient: number;
  messagesFromServer: number;
  bytesFromClient: number;
  bytesFromServer: number;
  /** Offsets from the upgrade request's arrival, µs, of the server's first message (null when it sent none). */
  firstServerMessageUs: number | null;
  closeCode: number | null;
  /** Which side closed first: `client`, `server` (the upstream), or `proxy` (shutdown). */
  closedBy: 'client' | 'server' | 'proxy' | null;
}

/** Why an exchange failed; null when an HTTP answer came back whole. */
export type ErrorKind =
  | 'upstream_timeout'
  | 'upstream_timeout_body'
  | 'upstream_reset'
  | 'upstream_refused'
  | 'upstream_error'
  | 'client_aborted'
  | 'proxy_shutdown'
  | 'stream_truncated';

/** One exchange in a trace (one row of the `requests` table). */
export interface TraceRecord {
  /** Sequence number, 1-based, in order of arrival. */
  seq: number;
  /** Arrival time in µs since the trace's offset 0 (monotonic). */
  offsetUs: number;
  method: string;
  /** Path with IDs templated (`/v1/models/{id}`), never a query value. */
  route: string;
  protocol: ProtocolId;
  /** HTTP status sent to the client, or null if none was (error before headers). */
  status: number | null;
  errorKind: ErrorKind | null;
  requestBytes: number;
  responseBytes: number | null;
  /** Time from arrival to the upstream's response headers, µs. */
  ttfbUs: number | null;
  /** Time from arrival to the first content event of a streamed answer, µs. */
  ttftUs: number | null;
  /** Time from arrival to the last byte sent to the client, µs. */
  latencyUs: number | null;
  /** True when the answer was an event stream (SSE/NDJSON). */
  streamed: boolean;
  /** Events of a streamed answer. */
  eventCount: number | null;
  /** Offsets of each event from arrival, µs (streamed answers only). */
  eventOffsetsUs: number[] | null;
  /** Prompt tokens (OpenAI chat/completions). */
  promptTokens: number | null;
  /** Output tokens (from `usage` or counted from the answer). */
  outputTokens: number | null;
  messageCount: number | null;
  model: string | null;
  maxTokens: number | null;
  shape: RequestShape;
  params: Params;
  features: Features;
  /** Where the request stands in a session (a conversation, an agent's run); null or absent for a request on its own. */
  session?: SessionLink | null;
}

/**
 * A request's place in a session (trace format 3 columns `session`, `turn`, `parent_seq`, `think_us`; see
 * `sessions/infer.ts` for how sessions are found).
 */
export interface SessionLink {
  /** The session's number in its trace, 1-based in order of its first request: never a key the client sent. */
  session: number;
  /** 0-based position in the session, by arrival. */
  turn: number;
  /** The request this one continued (it waited for that answer), null for the session's first turn. */
  parentSeq: number | null;
  /** Arrival minus the end of the parent's answer, µs: the user's or the agent's think time; null without a parent. */
  thinkUs: number | null;
}
