import type { ErrorKind } from './types.ts';

/**
 * Maps a network failure (Node or undici error, possibly wrapped by @fastify/reply-from) to a stable
 * {@link ErrorKind} as written into traces and run files.
 */
export function upstreamErrorKind(err: unknown): ErrorKind {
  const e = err as { code?: string; cause?: { code?: string } } | undefined;
  const codes = [e?.code, e?.cause?.code, (e?.cause as { cause?: { code?: string } } | undefined)?.cause?.code];
  if (codes.includes('ECONNREFUSED')) return 'upstream_refused';
  if (codes.includes('UND_ERR_BODY_TIMEOUT')) return 'upstream_timeout_body';
  if (codes.some((c) => c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_CONNECT_TIMEOUT' || c === 'FST_REPLY_FROM_GATEWAY_TIMEOUT' || c === 'ETIMEDOUT')) return 'upstream_timeout';
  if (codes.some((c) => c === 'ECONNRESET' || c === 'UND_ERR_SOCKET' || c === 'EPIPE' || c === 'UND_ERR_ABORTED')) return 'upstream_reset';
  return 'upstream_error';
}

/**
 * Why a replayed request failed, as written into run files (`results.error_kind`): the trace's kinds, plus
 * - `dropped`: not sent, the in-flight cap was reached (`--cap-policy drop`);
 * - `timeout`: one of the replay's timeouts fired; its `error_detail` says which (`headers_timeout`, `idle_timeout`,
 *   `request_timeout`, `connect_timeout`);
 * - `bad_response`: the target answered with bytes that are not an HTTP/1.1 response (e.g. `hello\r\n\r\n`), or
 *   with a body that does not match its framing (`content-length`).
 * A replay never records `upstream_timeout` or `upstream_timeout_body` (those are the recording proxy's).
 */
export type ReplayErrorKind = ErrorKind | 'dropped' | 'timeout' | 'bad_response';

/** Which replay timeout fired (the `error_detail` of an error kind `timeout`). */
export type TimeoutDetail = 'headers_timeout' | 'idle_timeout' | 'request_timeout' | 'connect_timeout';

/** A replayed request's failure: its kind and its cause (an error code, never any payload). */
export interface ReplayFailure {
  kind: ReplayErrorKind;
  /**
   * The cause: the Node, OpenSSL or undici error code (`ECONNREFUSED`, `ENOTFOUND`, `ERR_SSL_WRONG_VERSION_NUMBER`,
   * `UND_ERR_SOCKET`, …), which timeout fired, or for an answer that is not HTTP the parser's own reason
   * (`HPE: Expected HTTP/`; a fixed text of llhttp, never the bytes received). Null when nothing says more.
   */
  detail: string | null;
}

/** Longest `detail` kept (codes are short; this bounds the parser reasons). */
const MAX_DETAIL_CHARS = 80;

/** The errors of `err`'s chain (`cause`, and the first of an AggregateError's `errors`), outermost first, at most 5. */
function chain(err: unknown): Array<{ name?: string; code?: unknown; message?: string }> {
  const out: Array<{ name?: string; code?: unknown; message?: string }> = [];
  let e = err as { name?: string; code?: unknown; message?: string; cause?: unknown; errors?: unknown[] } | undefined;
  while (e && typeof e === 'object' && out.length < 5) {
    out.push(e);
    e = (e.cause ?? (Array.isArray(e.errors) ? e.errors[0] : undefined)) as typeof e;
  }
  return out;
}

/**
 * Maps a failure of a replayed request (an undici or Node error from the dispatch handler's `onError`) to its
 * {@link ReplayFailure}. Never throws; an unknown error is `upstream_error` with its code if it has one.
 */
export function replayFailureOf(err: unknown): ReplayFailure {
  const errs = chain(err);
  const codes = errs.map((e) => (typeof e.code === 'string' ? e.code : undefined));
  const has = (...cs: string[]) => codes.some((c) => c !== undefined && cs.includes(c));
  if (has('UND_ERR_HEADERS_TIMEOUT')) return { kind: 'timeout', detail: 'headers_timeout' };
  if (has('UND_ERR_BODY_TIMEOUT')) return { kind: 'timeout', detail: 'idle_timeout' };
  if (has('UND_ERR_CONNECT_TIMEOUT')) return { kind: 'timeout', detail: 'connect_timeout' };
  const parser = errs.find((e) => e.name === 'HTTPParserError');
  if (parser) {
    // llhttp's reason, e.g. "Response does not match the HTTP/1.1 protocol (Expected HTTP/, RTSP/ or ICE/)": fixed text.
    const reason = /\(([^)]*)\)\s*$/.exec(parser.message ?? '')?.[1];
    const code = typeof parser.code === 'string' ? parser.code : 'HPE';
    return { kind: 'bad_response', detail: (reason ? `${code}: ${reason}` : code).slice(0, MAX_DETAIL_CHARS) };
  }
  if (has('UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_RES_EXCEEDED_MAX_SIZE')) return { kind: 'bad_response', detail: codes.find((c) => c?.startsWith('UND_ERR_RES'))! };
  // The most specific code: the innermost system code (ECONNRESET under UND_ERR_SOCKET), else the outermost.
  const detail = [...codes].reverse().find((c) => c !== undefined && /^E[A-Z]+$/.test(c)) ?? codes.find((c) => c !== undefined) ?? null;
  if (has('ECONNREFUSED')) return { kind: 'upstream_refused', detail: 'ECONNREFUSED' };
  if (has('ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'UND_ERR_ABORTED', 'UND_ERR_CLOSED')) return { kind: 'upstream_reset', detail };
  return { kind: 'upstream_error', detail: detail?.slice(0, MAX_DETAIL_CHARS) ?? null };
}

/**
 * Says in words what a transport failure means for a target, for the messages of the target check and of the fail-fast
 * stop: e.g. `connection refused (ECONNREFUSED) at 127.0.0.1:8000: is the server up and listening there?`.
 */
export function describeFailure(f: ReplayFailure, where: string, timeouts?: Partial<Record<TimeoutDetail, string>>): string {
  const d = f.detail ?? '';
  if (f.kind === 'upstream_refused') return `connection refused (${d || 'ECONNREFUSED'}) at ${where}: is the server up and listening there?`;
  if (d === 'ENOTFOUND' || d === 'EAI_AGAIN' || d === 'EAI_FAIL' || d === 'EAI_NONAME') return `cannot resolve the host of ${where} (DNS: ${d})`;
  if (d === 'ERR_SSL_WRONG_VERSION_NUMBER' || d === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || d === 'EPROTO') {
    return `TLS handshake with ${where} failed (${d}): the port does not speak TLS — use http:// for a plain-HTTP server`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(d)) return `TLS with ${where} failed (${d}): the server's certificate is not trusted or does not match the host`;
  if (f.kind === 'timeout') {
    const limit = timeouts?.[d as TimeoutDetail];
    if (d === 'connect_timeout') return `connecting to ${where} timed out (${d}): is the address reachable from here?`;
    if (d === 'headers_timeout') return `${where} accepted the connection but sent no answer headers within ${limit ?? 'the headers timeout'} (${d})`;
    if (d === 'idle_timeout') return `${where} sent headers, then nothing for ${limit ?? 'the idle timeout'} (${d})`;
    return `requests to ${where} did not end within ${limit ?? 'the request timeout'} (${d}; --timeout)`;
  }
  if (f.kind === 'bad_response') return `${where} answered with something that is not HTTP/1.1 (${d}): is this the right port, or does it speak TLS (use https://)?`;
  if (f.kind === 'upstream_reset') return `${where} closed the connection without an answer (${d || 'reset'})`;
  return `${where}: ${d || 'transport error'}`;
}
