import { TracewarpError } from '../errors.ts';
import type { RequestResult } from '../results/types.ts';
import { parseDurationUs } from '../units.ts';
import { parseObjective, type Objective } from './objectives.ts';

/**
 * Service-level objectives: per-request ones for goodput (µs per metric: a request meets them when every one that
 * applies to it holds) and run-level ones, the gates (`metrics/objectives.ts`).
 */
export interface Slo {
  ttftUs?: number;
  tpotUs?: number;
  itlUs?: number;
  e2eUs?: number;
  /** Run-level objectives (`p99<800ms`, `error_rate<1%`, `goodput>95%`): a run that misses one fails (exit 1). */
  objectives: Objective[];
  /** The text it was parsed from. */
  text: string;
}

/** True when an SLO has per-request objectives (goodput is defined). */
export function hasRequestObjectives(slo: Slo): boolean {
  return slo.ttftUs !== undefined || slo.tpotUs !== undefined || slo.itlUs !== undefined || slo.e2eUs !== undefined;
}

/**
 * Parses `--slo`, one language for both kinds, comma-separated:
 * - per-request objectives `ttft<500ms`, `tpot<50ms`, `itl<100ms` (every gap), `e2e<10s`: goodput is the rate of
 *   requests that met every one that applies to them, as in DistServe (Zhong et al., OSDI 2024) and vLLM's
 *   `bench serve --goodput`;
 * - run-level objectives (gates): `[METRIC_]pNN<DURATION` (`p99<800ms`, `ttft_p95<500ms`), `error_rate<1%`,
 *   `goodput>95%` (needs per-request objectives), `throughput>20/s`; operators `<`, `<=`, `>`, `>=`.
 * Durations need a unit.
 * @throws TracewarpError `TW_USAGE` listing every problem.
 */
export function parseSlo(text: string): Slo {
  const slo: Slo = { text, objectives: [] };
  const errors: string[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(ttft|tpot|itl|e2e)\s*<\s*(.+)$/.exec(part);
    if (!m) {
      try {
        const o = parseObjective(part);
        if (o) slo.objectives.push(o);
        else errors.push(`'${part}': expected a per-request objective METRIC<DURATION (ttft, tpot, itl, e2e; e.g. ttft<500ms) or a run objective such as p99<800ms, ttft_p95<500ms, error_rate<1%, goodput>95%, throughput>20/s`);
      } catch (err) {
        errors.push((err as Error).message);
      }
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
  if (slo.objectives.some((o) => o.metric === 'goodput') && !hasRequestObjectives(slo)) errors.push("'goodput' needs per-request objectives in the same --slo, e.g. 'ttft<500ms,goodput>95%'");
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
