import type { Fingerprinter } from '../anonymize/fingerprint.ts';
import type { TraceRecord } from '../types.ts';
import type { SessionEvidence } from './infer.ts';

/**
 * An explicit session key of `record --session-key`: a request header (`header:x-session-id`) or a value in the JSON
 * body at a dotted path (`body:user`, `body:metadata.conversation_id`). The first key a request has names its session;
 * the value is only ever fingerprinted in memory (keyed), never stored.
 */
export type SessionKeySpec = { source: 'header'; name: string } | { source: 'body'; path: string[] };

/** Body paths are this deep at most (`a.b.c.d`). */
const MAX_PATH_DEPTH = 8;
/** Key values longer than this are cut before they are fingerprinted (an id is short; a cap on work per request). */
const MAX_KEY_CHARS = 1024;

/**
 * Parses `header:NAME` or `body:PATH`.
 * @throws Error saying what a key looks like (callers turn it into a usage error naming the flag).
 */
export function parseSessionKey(text: string): SessionKeySpec {
  const m = /^(header|body):(.+)$/.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a session key: give header:NAME (header:x-session-id) or body:PATH (body:user, body:metadata.conversation_id)`);
  if (m[1] === 'header') {
    const name = m[2]!.trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new Error(`'${text}': '${m[2]}' is not a header name`);
    return { source: 'header', name };
  }
  const path = m[2]!.split('.');
  if (path.some((p) => p === '') || path.length > MAX_PATH_DEPTH) throw new Error(`'${text}': a body path is up to ${MAX_PATH_DEPTH} keys separated by dots`);
  return { source: 'body', path };
}

/**
 * The fingerprint of the first of `specs` the request has (a string or number value), or null. The body is parsed
 * only when a body key is asked for and no header key matched.
 */
export function sessionKeyOf(specs: readonly SessionKeySpec[], headers: Record<string, string | string[] | undefined>, body: Uint8Array | null, fp: Fingerprinter): string | null {
  let parsed: unknown;
  for (const spec of specs) {
    let value: unknown;
    if (spec.source === 'header') {
      const h = headers[spec.name];
      value = Array.isArray(h) ? h[0] : h;
    } else {
      if (parsed === undefined) parsed = parseBody(body);
      value = spec.path.reduce<unknown>((v, k) => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[k] : undefined), parsed);
    }
    if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
    if (typeof value === 'string' && value !== '') return fp.sessionKey(spec.source === 'header' ? `h:${spec.name}` : `b:${spec.path.join('.')}`, value.slice(0, MAX_KEY_CHARS));
  }
  return null;
}

function parseBody(body: Uint8Array | null): unknown {
  if (!body || body.length === 0) return null;
  try {
    return JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * What the tracker needs of a recorded exchange: its times, whether it was answered, its token counts, and the
 * in-memory evidence (a key fingerprint, message prefixes) that never reaches the trace.
 */
export function captureEvidence(r: TraceRecord, key: string | null, messagePrefixes: readonly string[] | undefined): SessionEvidence {
  return {
    seq: r.seq,
    arrivalUs: r.offsetUs,
    endUs: r.latencyUs === null ? null : r.offsetUs + r.latencyUs,
    answered: r.errorKind === null && r.status !== null && r.status >= 200 && r.status < 300,
    promptTokens: r.promptTokens,
    outputTokens: r.outputTokens,
    key,
    messagePrefixes,
  };
}
