import type { IncomingHttpHeaders } from 'node:http';
import { isTraceparent, randomTraceparent } from '../trace-context.ts';
import type { ErrorKind } from '../types.ts';
import type { Exchange } from './exchange.ts';

/**
 * What the recording proxy (`proxy.ts`, HTTP through @fastify/http-proxy) and its WebSocket relay (`websocket.ts`)
 * both do to what passes: drop hop-by-hop headers, keep or add W3C trace context, answer upstream failures.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy must not forward, besides those named in `Connection`. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * The headers without the hop-by-hop ones and those `Connection` names (`transfer-encoding` is left to the HTTP
 * layer, which frames the body). Returns the same object when there is nothing to drop, else a copy.
 */
export function stripHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  // Hot path (twice per exchange): copy only when there is something to drop.
  const named = typeof headers.connection === 'string' ? headers.connection.split(',').map((s) => s.trim().toLowerCase()) : null;
  let out: IncomingHttpHeaders | null = null;
  for (const h of named ? [...HOP_BY_HOP, ...named] : HOP_BY_HOP) {
    if (h !== 'transfer-encoding' && headers[h] !== undefined) {
      out ??= { ...headers };
      delete out[h];
    }
  }
  return out ?? headers;
}

/**
 * W3C trace context on a request going upstream: the client's `traceparent` is kept, or one is added so the
 * upstream's traces can be joined; the exchange records only which. Mutates and returns `headers` (a copy the caller
 * owns).
 */
export function withTraceContext<H extends Record<string, unknown>>(ex: Exchange, headers: H): H {
  if (isTraceparent(headers.traceparent)) ex.traceContext = 'incoming';
  else {
    ex.traceContext = 'added';
    (headers as Record<string, unknown>).traceparent = randomTraceparent();
  }
  return headers;
}

/** The proxy's own answer to an upstream failure: 504 for a timeout, else 502, with a JSON error body naming the kind. */
export function upstreamFailureAnswer(kind: ErrorKind): { status: 502 | 504; reason: string; body: string } {
  const status = kind === 'upstream_timeout' ? 504 : 502;
  return { status, reason: status === 504 ? 'Gateway Timeout' : 'Bad Gateway', body: proxyErrorBody(`upstream ${kind.replace('upstream_', '')}`, kind) };
}

/** A JSON error body of the proxy's own (OpenAI-style `{error: {message, type, code}}`). */
export function proxyErrorBody(message: string, code?: string): string {
  return JSON.stringify({ error: { message: `tracewarp proxy: ${message}`, type: 'proxy_error', ...(code ? { code } : {}) } });
}
