import type { RunSummary } from '../metrics/summary.ts';
import type { ReportDetail } from './model.ts';
import { formatSummary } from './text.ts';
import { formatDetail, timelineCsv } from './text-detail.ts';

/** What a run was, besides its figures: the same whether it is reported as it ends (`replay`) or later (`report`). */
export interface RunFacts {
  tracePath: string;
  target: string;
  runFile: string;
  runId: string;
  speed: number;
  seed: number | string;
  /** The transformation flags in one line (`--speed 10 --amplify 2`), or `as recorded`. */
  workload: string;
  outputLength: string;
  interrupted: boolean;
  /** Requests the workload planned (more than `requests` when interrupted). */
  plannedRequests?: number;
  /** The workload digest, when every request was synthesized. */
  digest?: { digest: string; schedule: string };
  /** Transport failures by kind and cause (replay only: the run file keeps them per request). */
  errorDetails?: Record<string, Record<string, number>>;
  /** How the workload's sessions were sent (`meta.sessions`, run format 6), absent when it had none. */
  sessions?: { mode: string; thinkTime: string; history: string; sessions: number; followUps: number };
}

/** One line on how a run sent its sessions. */
export function sessionsLine(s: NonNullable<RunFacts['sessions']>): string {
  const how = s.mode === 'closed'
    ? `closed loop: each follow-up sent its think time (${s.thinkTime}) after its parent's answer ended, its lateness counted from then`
    : 'open loop: every request at its recorded (warped) time';
  return `sessions: ${s.sessions} (${s.followUps} follow-up turns), ${how}; history ${s.history}`;
}

/**
 * A run's report: its summary and its facts, built once; each format is a {@link Reporter} of it. `detail` (breakdowns,
 * timeline, distributions, scraped metrics) is there when the report was built from run files (`report/build.ts`).
 */
export interface RunReport {
  summary: RunSummary;
  facts: RunFacts;
  detail?: ReportDetail;
}

/** A report format: a run report as text to print. */
export type Reporter = (report: RunReport) => string;

/** `timeout (headers_timeout) 3, upstream_refused (ECONNREFUSED) 1`, most first; '' when nothing failed with a cause. */
export function formatErrorDetails(details: Record<string, Record<string, number>>): string {
  const rows = Object.entries(details).flatMap(([kind, by]) => Object.entries(by).filter(([d]) => d !== '').map(([d, n]) => ({ text: `${kind} (${d})`, n })));
  return rows.sort((a, b) => b.n - a.n).map((x) => `${x.text} ${x.n}`).join(', ');
}

/**
 * The JSON form (`replay --json`, `report --json`; keys in the README): the summary's keys, then `errorDetails`,
 * `plannedRequests`, `workload`, `outputLength`, `runFile`, `runId`, `speed`, `seed`, `target`, `interrupted`, and
 * `digest`/`scheduleDigest` when the workload was synthesized whole; from run files also the {@link ReportDetail}
 * keys (`schemaVersion`, `runs`, `breakdowns`, `timeline`, `distributions`, `scrape`).
 */
export const jsonReporter: Reporter = ({ summary, facts: f, detail }) => JSON.stringify({
  ...summary,
  ...(f.errorDetails ? { errorDetails: f.errorDetails } : {}),
  ...(f.plannedRequests !== undefined ? { plannedRequests: f.plannedRequests } : {}),
  workload: f.workload, outputLength: f.outputLength, runFile: f.runFile, runId: f.runId, speed: f.speed, seed: f.seed, target: f.target,
  interrupted: f.interrupted,
  ...(f.digest && !f.interrupted ? { digest: f.digest.digest, scheduleDigest: f.digest.schedule } : {}),
  ...detail,
});

/** The text a person reads: the summary's table, then the causes of failures, the digest, and an interruption. */
export const textReporter: Reporter = ({ summary, facts: f, detail }) => {
  const lines = [formatSummary(summary, `run ${f.runId}: ${f.tracePath} (${f.workload}) against ${f.target} (seed ${f.seed}, output length ${f.outputLength}) → ${f.runFile}`)];
  if (f.sessions) lines.push(sessionsLine(f.sessions));
  const causes = f.errorDetails ? formatErrorDetails(f.errorDetails) : '';
  if (causes) lines.push(`failures by cause: ${causes}`);
  const gaveUp = f.errorDetails?.client_aborted?.client_patience ?? 0;
  if (gaveUp > 0) lines.push(`${gaveUp} request${gaveUp === 1 ? ' was' : 's were'} cut as long after the send as the recorded client waited before giving up (client_aborted, client_patience); --no-client-aborts replays them whole`);
  if (f.digest && !f.interrupted) lines.push(`workload digest ${f.digest.digest} (schedule ${f.digest.schedule})`);
  if (detail) lines.push(formatDetail(detail));
  if (f.interrupted) lines.push(`INTERRUPTED: ${summary.requests}${f.plannedRequests !== undefined ? ` of ${f.plannedRequests} planned` : ''} requests were scheduled; the summary covers those only`);
  return lines.join('\n');
};

/** The timeline as CSV (one row per second); without a report built from run files, just the header. */
export const csvReporter: Reporter = ({ detail }) => (detail ? timelineCsv(detail) : '');
