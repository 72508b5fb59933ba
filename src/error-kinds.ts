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

