import { MAX_OUTPUT_TOKENS, MAX_PROMPT_TOKENS, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, MAX_SPAN_US } from './caps.ts';

/** Why a record (or a trace's meta) cannot be used, in words; the reader puts the file and the record in front. */
export class TraceProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TraceProblem';
  }
}

export function fail(message: string): never {
  throw new TraceProblem(message);
}

/** A stored value as a message shows it: short, one line, never more than a few dozen characters of a string. */
export function show(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `a blob of ${v.length} bytes`;
  if (Array.isArray(v)) return `a list of ${v.length}`;
  if (v instanceof Date) return 'a timestamp';
  if (typeof v !== 'object') return typeof v;
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) return 'a map';
  const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
  return `an object of type ${typeof name === 'string' && name ? name.slice(0, 40) : 'unknown'}`;
}

export const shortPath = (p: string) => (p === '' ? 'the root' : p.length > 120 ? `${p.slice(0, 120)}…` : p);

/** `v` as an integer in `[min, max]`, or a problem naming `what`, the value and the cap (`unit` says what is counted). */
export function checkInt(v: unknown, what: string, min: number, max: number, unit: string): number {
  if (typeof v !== 'number') fail(`${what} = ${show(v)} is not a number`);
  if (!Number.isFinite(v)) fail(`${what} = ${show(v)} is not finite`);
  if (!Number.isInteger(v)) fail(`${what} = ${v} is not an integer`);
  if (!Number.isSafeInteger(v)) fail(`${what} = ${v} is beyond the safe integer range`);
  if (v < min) fail(min === 0 ? `${what} = ${v} is negative` : `${what} = ${v} is below the minimum of ${min}${unit ? ` ${unit}` : ''}`);
  if (v > max) fail(`${what} = ${v} is over the cap of ${max}${unit ? ` ${unit}` : ''}`);
  return v;
}

export function optInt(v: unknown, what: string, min: number, max: number, unit: string): number | null {
  return v === null || v === undefined ? null : checkInt(v, what, min, max, unit);
}

export function checkString(v: unknown, what: string, maxChars: number): string {
  if (typeof v !== 'string') fail(`${what} = ${show(v)} is not a text`);
  if (v.length > maxChars) fail(`${what} is ${v.length} characters long, over the cap of ${maxChars}`);
  return v;
}

export function optString(v: unknown, what: string, maxChars: number): string | null {
  return v === null || v === undefined ? null : checkString(v, what, maxChars);
}

/** A header value (RFC 9110 field-value: visible characters, spaces and tabs; no CR, LF or NUL). */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** An HTTP token (RFC 9110 §5.6.2): methods and header names. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A request target as undici sends it (no spaces or control characters, Latin-1). */
export const ROUTE_CHARS = /^[\u0021-\u007e\u0080-\u00ff]+$/;
/** A protocol id or error kind: lower-case identifier. */
export const IDENT = /^[a-z][a-z0-9_-]{0,63}$/;

/** A protocol id or error kind as stored: a lower-case identifier of at most 64 characters. */
export function isIdentifier(v: unknown): v is string {
  return typeof v === 'string' && IDENT.test(v);
}

/**
 * The cap of each numeric column the reader aggregates with SQL (`span`, `column`): values outside `[0, cap]` or not
 * integers are left out of those summaries, as their records are refused when read.
 */
export const NUMERIC_COLUMN_CAPS = {
  offset_us: MAX_SPAN_US, prompt_tokens: MAX_PROMPT_TOKENS, output_tokens: MAX_OUTPUT_TOKENS, request_bytes: MAX_REQUEST_BYTES,
  response_bytes: MAX_RESPONSE_BYTES, latency_us: MAX_SPAN_US, ttft_us: MAX_SPAN_US, ttfb_us: MAX_SPAN_US,
} as const;

export function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || Buffer.isBuffer(v) || v instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function checkList(v: unknown, what: string, max: number, unit: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} = ${show(v)} is not a list`);
  if (v.length > max) fail(`${what} has ${v.length} entries, over the cap of ${max} ${unit}`);
  return v;
}
