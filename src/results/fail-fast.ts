import type { RequestResult } from './types.ts';

/** How the fail-fast verdict is made (see `replay/defaults.ts` for the values the CLI uses). */
export interface FailFastRule {
  /** Stop once this many results came back, every one a transport failure (or all planned ones, when fewer). */
  requests: number;
  /** … or once at least `minRequests` did and the latest of them ended `windowUs` or more after the run's start. */
  minRequests: number;
  windowUs: number;
  /** Requests in the workload. */
  planned: number;
}

/** Why a replay stopped early: how many results, all transport failures, and their kinds and causes. */
export interface FailFastVerdict {
  failed: number;
  /** Count by kind and cause (`{ upstream_refused: { ECONNREFUSED: 10 } }`; a missing cause is `''`). */
  causes: Record<string, Record<string, number>>;
}

/** A result that failed below HTTP: no status came back, and not because the replay itself dropped or cut it. */
export function isTransportFailure(r: Pick<RequestResult, 'status' | 'errorKind'>): boolean {
  return r.status === null && r.errorKind !== null && r.errorKind !== 'dropped' && r.errorKind !== 'client_aborted';
}

/**
 * Watches the first results of a replay (in the results thread, in the order they come back) for a target that
 * cannot be replayed against: armed until the first HTTP answer (any status, a 500 too: the target speaks HTTP).
 * Results the replay dropped or cut itself count neither way.
 */
export class FailFastWatch {
  private armed = true;
  private failed = 0;
  private readonly causes: Record<string, Record<string, number>> = {};

  constructor(private readonly rule: FailFastRule) {}

  /** Takes one result; returns the verdict once (when the replay should stop), else null. */
  add(r: RequestResult): FailFastVerdict | null {
    if (!this.armed) return null;
    if (r.status !== null) {
      this.armed = false;
      return null;
    }
    if (!isTransportFailure(r)) return null;
    this.failed++;
    countCause(this.causes, r);
    const enough = this.failed >= Math.min(this.rule.requests, this.rule.planned)
      || (this.failed >= this.rule.minRequests && (r.endUs ?? 0) >= this.rule.windowUs);
    if (!enough) return null;
    this.armed = false;
    return { failed: this.failed, causes: this.causes };
  }
}

/** Failed results by kind and cause, e.g. `{ timeout: { headers_timeout: 3 }, upstream_reset: { ECONNRESET: 1 } }`. */
export function errorDetailsOf(results: readonly RequestResult[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const r of results) if (r.errorKind !== null) countCause(out, r);
  return out;
}

/** Counts a failed result into `{kind: {cause: n}}` (a missing cause is `''`). */
function countCause(into: Record<string, Record<string, number>>, r: Pick<RequestResult, 'errorKind' | 'errorDetail'>): void {
  const byKind = (into[r.errorKind!] ??= {});
  const cause = r.errorDetail ?? '';
  byKind[cause] = (byKind[cause] ?? 0) + 1;
}
