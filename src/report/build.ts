import { Metrics, type EncodedMetrics } from '../metrics/metrics.ts';
import { parseSlo, type Slo } from '../metrics/slo.ts';
import { metricsOf, summarize, type RunSummary } from '../metrics/summary.ts';
import { readRunFile, type ScrapeRow } from '../results/run-file.ts';
import type { ReplayerHealth, RequestResult, RunMeta } from '../results/types.ts';
import { TracewarpError } from '../errors.ts';
import { REPORT_SCHEMA_VERSION, type ReportDetail, type ReportRun, type ScrapeSeries } from './model.ts';
import type { RunFacts, RunReport } from './run-report.ts';
import { coldStartOf } from './cold-start.ts';
import { breakdowns, distributions, timeline } from './views.ts';

type Meta = RunMeta & Record<string, unknown>;

/** The facts of a run as its run file's meta states them. */
export function factsOf(meta: Meta, path: string): RunFacts {
  const digest = meta.digest as { digest?: string; schedule?: string } | undefined;
  return {
    tracePath: String(meta.tracePath), target: String(meta.target), runFile: path, runId: String(meta.runId), speed: Number(meta.speed),
    seed: Number.isFinite(Number(meta.seed)) ? Number(meta.seed) : String(meta.seed),
    workload: typeof meta.workload === 'string' ? meta.workload : `--speed ${meta.speed}`,
    outputLength: typeof meta.outputLength === 'string' ? meta.outputLength : 'recorded',
    interrupted: meta.interrupted === true,
    ...(typeof meta.plannedRequests === 'number' ? { plannedRequests: meta.plannedRequests } : {}),
    ...(digest?.digest && digest.schedule ? { digest: { digest: digest.digest, schedule: digest.schedule } } : {}),
    ...(meta.sessions && typeof meta.sessions === 'object' ? { sessions: meta.sessions as NonNullable<RunFacts['sessions']> } : {}),
  };
}

/**
 * The run's metrics: read from the run file (`meta.metrics`, format 5 on) when they were counted against the SLO
 * asked for, else counted again from its per-request rows.
 */
function runMetrics(meta: Meta, results: readonly RequestResult[], slo: Slo | undefined, path: string): Metrics {
  const stored = meta.metrics as EncodedMetrics | undefined;
  if (stored && (stored.slo ?? null) === (slo?.text ?? null)) {
    try {
      return Metrics.decode(stored, slo ?? null);
    } catch (err) {
      throw new TracewarpError('TW_RUN_INVALID', `${path}: its stored metrics cannot be read: ${(err as Error).message}`, { cause: err });
    }
  }
  return metricsOf(results, slo);
}

const VERDICT_RANK = { ok: 0, degraded: 1, distorted: 2 } as const;

/** The scraped samples as series (grouped by source, name and labels; seconds on the run's clock). */
export function scrapeSeries(rows: readonly ScrapeRow[]): ScrapeSeries[] {
  const by = new Map<string, ScrapeSeries>();
  for (const r of rows) {
    const labels = Object.fromEntries(Object.entries(r.labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    const id = JSON.stringify([r.source, r.name, labels]);
    let s = by.get(id);
    if (!s) by.set(id, (s = { source: r.source, name: r.name, labels, type: r.type, tS: [], values: [] }));
    s.tS.push(Math.round(r.tUs / 1000) / 1000);
    s.values.push(r.value);
  }
  return [...by].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, s]) => s);
}

/**
 * Builds the report of one or more run files (shards or repeats of a run, merged as if on one clock: every run's
 * offset 0 at the same instant): the summary from their merged metrics (exact: counts add, HDR histograms add), the
 * per-request views (breakdowns, timeline, distributions) over all their rows, and the target's scraped metrics. The
 * facts are the first run's; the replayer health is the worst run's.
 * @throws TracewarpError `TW_RUN_INVALID` naming the file that cannot be read; `TW_USAGE` for a malformed `slo`.
 */
export function buildReport(paths: readonly string[], opts: { slo?: string; warmupUs?: number } = {}): RunReport {
  if (paths.length === 0) throw new TracewarpError('TW_USAGE', 'report: give at least one run file');
  const runs = paths.map((path) => {
    const file = readRunFile(path);
    // The warm-up (`replay --warmup D`, or asked for here) is left out of every headline figure and objective.
    const warmupUs = opts.warmupUs ?? (typeof file.meta.warmupUs === 'number' ? file.meta.warmupUs : 0);
    return { path, ...file, warmupUs, measured: warmupUs > 0 ? file.results.filter((r) => r.scheduledUs >= warmupUs) : file.results };
  });
  const first = runs[0]!;
  const sloText = opts.slo ?? (typeof first.meta.slo === 'string' ? first.meta.slo : undefined);
  const slo = sloText ? parseSlo(sloText) : undefined;
  const merged = new Metrics(slo ?? null);
  for (const r of runs) merged.merge(r.warmupUs > 0 ? metricsOf(r.measured, slo) : runMetrics(r.meta, r.results, slo, r.path));
  const everything = runs.length === 1 ? first.results : runs.flatMap((r) => r.results);
  const all = runs.length === 1 ? first.measured : runs.flatMap((r) => r.measured);
  const summary = summarize(all, slo, merged);
  const healths = runs.map((r) => r.meta.replayerHealth as ReplayerHealth | undefined).filter((h): h is ReplayerHealth => Boolean(h));
  // How far the replayer itself shaped a run was judged while it ran (from its loops' own measurements).
  if (healths.length > 0) summary.replayerHealth = healths.reduce((a, b) => (VERDICT_RANK[b.verdict] > VERDICT_RANK[a.verdict] ? b : a));
  const facts = factsOf(first.meta, runs.length === 1 ? first.path : runs.map((r) => r.path).join(', '));
  if (runs.length > 1) facts.interrupted = runs.some((r) => r.meta.interrupted === true);
  const reportRuns: ReportRun[] = runs.map((r) => ({
    runFile: r.path, runId: String(r.meta.runId), requests: r.results.length, digest: (r.meta.digest as { digest?: string } | undefined)?.digest ?? null,
  }));
  return {
    summary: summary as RunSummary,
    facts,
    detail: {
      schemaVersion: REPORT_SCHEMA_VERSION, runs: reportRuns, breakdowns: breakdowns(all), timeline: timeline(everything),
      distributions: distributions(merged, all), scrape: scrapeSeries(runs.flatMap((r) => r.scrape)),
      scrapeHealth: runs.flatMap((r) => (r.meta.scrape as { health?: ReportDetail['scrapeHealth'] } | undefined)?.health ?? []),
      coldStart: coldStartOf(everything, first.warmupUs),
    },
  };
}
