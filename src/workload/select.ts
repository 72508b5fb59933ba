import { PROTOCOL_IDS } from '../protocols/ids.ts';
import type { Arrival } from './types.ts';

/**
 * The selector language of `--only` and `--exclude` (and the keys of `mix(…)`): conditions separated by commas, all of
 * which must hold.
 *
 * ```
 * selector  := condition (',' condition)*
 * condition := key '=' value
 * key       := route | model | protocol | method | status | error | streamed
 * ```
 * `route` and `model` match exactly, or with `*` standing for any characters (`route=/v2/models/*`); `status` is a
 * code (`404`), a class (`2xx`) or `none` (no answer); `error` is an error kind (`client_aborted`, `upstream_timeout`,
 * …), `any` or `none`; `streamed` is `true` or `false`; `method` is matched without regard to case.
 * Examples: `status=2xx,protocol=openai-chat`, `route=/v1/models`, `error=none`.
 */
export interface Selector {
  text: string;
  conditions: Array<{ key: SelectorKey; value: string; test: (a: Arrival) => boolean }>;
}

/** Keys a selector condition may name. */
export const SELECTOR_KEYS = ['route', 'model', 'protocol', 'method', 'status', 'error', 'streamed'] as const;
export type SelectorKey = (typeof SELECTOR_KEYS)[number];

/** Error kinds a trace records (`types.ts` ErrorKind). */
const RECORDED_ERROR_KINDS = ['upstream_timeout', 'upstream_timeout_body', 'upstream_reset', 'upstream_refused', 'upstream_error', 'client_aborted', 'proxy_shutdown', 'stream_truncated'];
/** Protocols a trace's requests can have: the adapters, `websocket` and `other`. */
const PROTOCOLS = [...PROTOCOL_IDS, 'websocket', 'other'];

/** A matcher for a value that may hold `*` (any characters). */
export function glob(pattern: string): (v: string | null | undefined) => boolean {
  if (!pattern.includes('*')) return (v) => v === pattern;
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (v) => v !== null && v !== undefined && re.test(v);
}

function statusTest(value: string): ((a: Arrival) => boolean) | null {
  if (value === 'none') return (a) => a.status === null || a.status === undefined;
  if (/^[1-5]xx$/.test(value)) return (a) => typeof a.status === 'number' && Math.floor(a.status / 100) === Number(value[0]);
  if (/^[1-5]\d\d$/.test(value)) return (a) => a.status === Number(value);
  return null;
}

function conditionTest(key: SelectorKey, value: string): ((a: Arrival) => boolean) | string {
  switch (key) {
    case 'route': { const m = glob(value); return (a) => m(a.route); }
    case 'model': { const m = glob(value); return (a) => m(a.model); }
    case 'protocol': return PROTOCOLS.includes(value) ? (a) => a.protocol === value : `unknown protocol '${value}' (${PROTOCOLS.join(', ')})`;
    case 'method': return (a) => (a.method ?? '').toUpperCase() === value.toUpperCase();
    case 'status': return statusTest(value) ?? `status is a code (404), a class (2xx) or none, got '${value}'`;
    case 'error':
      if (value === 'none') return (a) => !a.errorKind;
      if (value === 'any') return (a) => Boolean(a.errorKind);
      return RECORDED_ERROR_KINDS.includes(value) ? (a) => a.errorKind === value : `unknown error kind '${value}' (any, none, ${RECORDED_ERROR_KINDS.join(', ')})`;
    case 'streamed':
      if (value !== 'true' && value !== 'false') return `streamed is true or false, got '${value}'`;
      return (a) => Boolean(a.streamed) === (value === 'true');
  }
}

/**
 * Parses a selector. @throws Error naming the selector and what is wrong (an unknown key, a bad value); the message
 * names no flag, so callers can say which flag it came from.
 */
export function parseSelector(text: string): Selector {
  const conditions: Selector['conditions'] = [];
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '') && text.trim() !== '') throw new Error(`'${text}': an empty condition between commas`);
  for (const part of parts.filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = part.slice(0, Math.max(0, eq)).trim();
    const value = part.slice(eq + 1).trim();
    if (eq <= 0 || value === '') throw new Error(`'${text}': each condition is key=value (keys: ${SELECTOR_KEYS.join(', ')})`);
    if (!(SELECTOR_KEYS as readonly string[]).includes(key)) throw new Error(`'${text}': unknown key '${key}' (keys: ${SELECTOR_KEYS.join(', ')})`);
    const test = conditionTest(key as SelectorKey, value);
    if (typeof test === 'string') throw new Error(`'${text}': ${test}`);
    conditions.push({ key: key as SelectorKey, value, test });
  }
  if (conditions.length === 0) throw new Error(`'${text}': an empty selector (expected e.g. status=2xx,protocol=openai-chat)`);
  return { text, conditions };
}

/** True when every condition of the selector holds for the arrival. */
export function selects(s: Selector, a: Arrival): boolean {
  return s.conditions.every((c) => c.test(a));
}

/**
 * Keeps the arrivals that match any of `only` (all of them when `only` is empty) and none of `exclude`.
 * @returns the kept arrivals, in order, and how many were left out.
 */
export function filterArrivals(arrivals: readonly Arrival[], only: readonly Selector[], exclude: readonly Selector[]): { kept: Arrival[]; excluded: number } {
  const kept = arrivals.filter((a) => (only.length === 0 || only.some((s) => selects(s, a))) && !exclude.some((s) => selects(s, a)));
  return { kept, excluded: arrivals.length - kept.length };
}
