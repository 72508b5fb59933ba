import { TracewarpError } from '../errors.ts';
import type { RequestResult } from '../results/types.ts';
import { parseDurationUs } from '../units.ts';

/** Service-level objectives for goodput, µs per metric: a request meets them when every one holds. */
export interface Slo {
  ttftUs?: number;
  tpotUs?: number;
  itlUs?: number;
  e2eUs?: number;
  /** The text it was parsed from. */
  text: string;
}

/**
 * Parses `--slo 'ttft<500ms,tpot<50ms,e2e<10s'` (metrics `ttft`, `tpot`, `itl` (every gap), `e2e`; durations with a
 * unit). Goodput is the rate of requests that met every objective, as in DistServe (Zhong et al., OSDI 2024) and
 * vLLM's `bench serve --goodput`.
 * @throws TracewarpError `TW_USAGE` listing every problem.
 */
export function parseSlo(text: string): Slo {
  const slo: Slo = { text };
  const errors: string[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(ttft|tpot|itl|e2e)\s*<\s*(.+)$/.exec(part);
    if (!m) {
      errors.push(`'${part}': expected METRIC<DURATION with METRIC one of ttft, tpot, itl, e2e (e.g. ttft<500ms)`);
      continue;
    }
    if (!/[a-zµ]\s*$/i.test(m[2]!)) {
      errors.push(`'${part}': give the unit (ms or s), e.g. ${m[1]}<500ms`);
      continue;
    }
    try {
      const us = parseDurationUs(m[2]!);
      if (us <= 0) errors.push(`'${part}': the limit must be > 0`);
      else slo[`${m[1] as 'ttft'}Us`] = us;
    } catch (err) {
      errors.push(`'${part}': ${(err as Error).message}`);
    }
  }
  if (errors.length > 0 || text.trim() === '') throw new TracewarpError('TW_USAGE', `--slo: ${errors.join('; ') || 'empty'}`);
  return slo;
}

/**
 * Per-request LLM timing from the *scheduled* send (what a user who arrived on schedule felt): E2E for every request;
 * for a streamed answer also TTFT (its first content event; null when none came) and TPOT = (E2E − TTFT) / (output
 * tokens − 1). A non-streamed answer has no first token a user saw before the whole answer, so no TTFT or TPOT.
 */
export function requestTiming(r: RequestResult): { ttftUs: number | null; tpotUs: number | null; e2eUs: number } | null {
  if (r.endUs === null || r.sentUs === null) return null;
  const e2e = r.endUs - r.scheduledUs;
  if (!r.streamed) return { ttftUs: null, tpotUs: null, e2eUs: e2e };
  const ttft = r.ttftAtUs !== null ? r.ttftAtUs - r.scheduledUs : null;
  const tpot = r.outputTokens !== null && r.outputTokens > 1 && r.ttftAtUs !== null ? (r.endUs - r.ttftAtUs) / (r.outputTokens - 1) : null;
  return { ttftUs: ttft, tpotUs: tpot, e2eUs: e2e };
}

/**
 * True when a completed request met every objective of the SLO that applies to it: `e2e` to every request; `ttft`,
 * `tpot` and `itl` to streamed answers only (an embedding or a non-streamed completion is judged on `e2e` alone, not
 * against a TTFT limit with its whole answer time). A streamed answer without a content event misses a TTFT objective.
 */
export function meetsSlo(r: RequestResult, slo: Slo): boolean {
  const t = requestTiming(r);
  if (!t) return false;
  if (slo.e2eUs !== undefined && t.e2eUs >= slo.e2eUs) return false;
  if (!r.streamed) return true;
  if (slo.ttftUs !== undefined && (t.ttftUs === null || t.ttftUs >= slo.ttftUs)) return false;
  if (slo.tpotUs !== undefined && t.tpotUs !== null && t.tpotUs >= slo.tpotUs) return false;
  if (slo.itlUs !== undefined && (r.itlUs ?? []).some((g) => g >= slo.itlUs!)) return false;
  return true;
}
