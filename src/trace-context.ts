import { createHash, randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): `traceparent: 00-<32 hex trace-id>-<16 hex parent-id>-01`.
 */
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** True for a well-formed `traceparent` value (version, non-zero ids). */
export function isTraceparent(value: unknown): boolean {
  return typeof value === 'string' && TRACEPARENT.test(value) && !/^..-0{32}-/.test(value) && !/-0{16}-..$/.test(value);
}

// Random ids come from one pooled buffer refilled 64 KiB at a time: one call into the system's random source per
// ~2,700 ids, not two per proxied request (which cost about a sixth of the proxy's CPU).
const pool = Buffer.alloc(65_536);
let at = pool.length;

function randomHex(bytes: number): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const hex = pool.toString('hex', at, at + bytes);
  at += bytes;
  return hex;
}

/** A fresh random `traceparent` (sampled). */
export function randomTraceparent(): string {
  return `00-${randomHex(16)}-${randomHex(8)}-01`;
}

/**
 * The `traceparent` of replayed request `index` of run `runId`: deterministic, so a result row can be joined with the
 * server's logs and traces by its trace id.
 */
export function replayTraceparent(runId: string, index: number): { traceparent: string; traceId: string } {
  const h = createHash('sha256').update(`${runId}/${index}`).digest('hex');
  const traceId = h.slice(0, 32);
  return { traceparent: `00-${traceId}-${h.slice(32, 48)}-01`, traceId };
}

/**
 * Parses a `Server-Timing` header (https://www.w3.org/TR/server-timing/): `name;dur=12.3;desc="…", other;dur=4` →
 * `{name: 12.3, other: 4}` (ms). Metrics without `dur` are left out.
 */
export function parseServerTiming(value: string | string[] | undefined): Record<string, number> | null {
  if (!value) return null;
  const out: Record<string, number> = {};
  for (const entry of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const [name, ...params] = entry.split(';').map((s) => s.trim());
    if (!name || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) continue;
    for (const p of params) {
      const m = /^dur\s*=\s*"?(\d+(?:\.\d+)?)"?$/.exec(p);
      if (m) out[name] = Number(m[1]);
    }
  }
  return Object.keys(out).length > 0 ? out : null;
}
