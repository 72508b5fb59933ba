import { coldStartLines, workloadDigests } from './text-detail.ts';
import type { Percentiles } from '../metrics/summary.ts';
import { chartsOf, DRAW_SCRIPT, pointsOf, uplotAssets, type ChartData } from './html-charts.ts';
import { PERCENTILE_ROWS } from './markdown.ts';
import { BREAKDOWN_DIMENSIONS, type ReportDetail } from './model.ts';
import { sessionsLine, type Reporter, type RunReport } from './run-report.ts';

/** Escapes text for HTML element content and attribute values. */
export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** JSON safe inside a `<script>` element: no `<` (so no `</script>`), no U+2028/2029. */
export const scriptJson = (v: unknown): string => JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

export const fmt = (v: number | null | undefined, digits = 1) => (v === null || v === undefined ? '—' : v.toFixed(digits));
export const table = (head: string[], rows: string[][], numericFrom = 1) => `<table><thead><tr>${head.map((h, i) => `<th${i >= numericFrom ? ' class="n"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c, i) => `<td${i >= numericFrom ? ' class="n"' : ''}>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;margin:0;background:#f6f7f9}
main{max-width:1240px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #d9dde3;padding-bottom:4px}
.facts{color:#4a5263;margin:0 0 12px}.facts code{background:#eceef2;padding:0 4px;border-radius:3px}
.banner{padding:10px 14px;border-radius:6px;margin:10px 0;font-weight:600}
.ok{background:#e3f4e8;color:#135c2b}.bad{background:#fde4e4;color:#8a1414}.warn{background:#fff3d6;color:#7a5200}
table{border-collapse:collapse;background:#fff;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid #e6e8ec;text-align:left;white-space:nowrap}th{background:#eef0f4;font-weight:600}
td.n,th.n{text-align:right}.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 24px}
.chart{background:#fff;border:1px solid #e1e4e9;border-radius:6px;padding:10px 12px;margin:12px 0}
.chart h3{font-size:14px;margin:0 0 2px}.chart p{margin:0 0 6px;color:#4a5263;font-size:13px}
.muted{color:#6b7280}`;

function header(r: RunReport): string {
  const { summary: s, facts: f, detail } = r;
  const h = s.replayerHealth;
  const parts = [`<h1>tracewarp report: run ${esc(f.runId)}</h1>`,
    `<p class="facts">trace <code>${esc(f.tracePath)}</code> (${esc(f.workload)}) against <code>${esc(f.target)}</code>, seed ${esc(f.seed)}, output length ${esc(f.outputLength)}${f.digest && !f.interrupted ? `, workload digest <code>${esc(f.digest.digest)}</code>` : ''}</p>`,
    ...(f.sessions ? [`<p class="facts">${esc(sessionsLine(f.sessions))}</p>`] : [])];
  if (detail && detail.runs.length > 1) parts.push(`<p class="facts">merged ${detail.runs.length} run files: ${detail.runs.map((x) => `<code>${esc(x.runFile)}</code> (${x.requests})`).join(', ')}</p>`);
  if (detail) for (const l of coldStartLines(detail.coldStart)) parts.push(`<p class="facts">${esc(l)}</p>`);
  if (detail && workloadDigests(detail).length > 1) parts.push(`<div class="banner warn">These run files replayed ${workloadDigests(detail).length} different workloads; the figures pool them.</div>`);
  if (h && h.verdict !== 'ok') parts.push(`<div class="banner health ${h.verdict === 'distorted' ? 'bad' : 'warn'}">${h.verdict === 'distorted' ? 'The replayer itself distorted this run' : 'The replayer itself may have shaped some figures'}: ${esc(h.reasons.join('; '))}. ${esc(h.fix ?? '')}</div>`);
  if (s.objectives) {
    const missed = s.objectives.filter((o) => !o.met);
    parts.push(`<div class="banner slo ${missed.length ? 'bad' : 'ok'}">${missed.length ? `SLO MISSED: ${missed.map((o) => `${esc(o.objective)} (${o.value === null ? 'no value' : `${fmt(o.value)} ${esc(o.unit)}`}, limit ${o.limit} ${esc(o.unit)})`).join(', ')}` : `SLO met: all ${s.objectives.length} objectives`}</div>`);
  }
  if (f.interrupted) parts.push('<div class="banner warn">Interrupted: the figures cover the requests scheduled before the stop.</div>');
  if (h) parts.push(`<p class="facts">Replayer health <b>${esc(h.verdict)}</b> (the tool's own floor): loop delay p99 ${fmt(h.loopDelayMs.p99, 2)} ms, send lateness p99 ${fmt(h.sendLatenessMs.p99, 2)} ms, ${h.stalls} stalls, against a ${h.boundMs} ms bound; ${h.senders} sending loop${h.senders === 1 ? '' : 's'}, CPU ${fmt(h.cpuPercent, 0)} % of one core.</p>`);
  return parts.join('\n');
}

function summaryTables(r: RunReport): string {
  const s = r.summary;
  const pct = PERCENTILE_ROWS.map(([label, key]) => {
    const p = s[key] as Percentiles;
    return [esc(label), ...[p.p50, p.p90, p.p95, p.p99, p.p999, p.max].map((v) => fmt(v)), String(p.count)];
  });
  const rates = [
    ['requests / sent / completed / errors', `${s.requests} / ${s.sent} / ${s.completed} / ${s.errors}`],
    ['rate: target / achieved / throughput (req/s)', `${fmt(s.targetRate, 2)} / ${fmt(s.achievedRate, 2)} / ${fmt(s.throughput, 2)}`],
    ['duration (s)', fmt(s.durationS)], ['output tokens/s (total)', fmt(s.totalOutputTokensPerSecond)],
    ...(s.goodput ? [[`goodput (${esc(s.goodput.slo)})`, `${s.goodput.met} of ${s.goodput.eligible} (${(s.goodput.fraction * 100).toFixed(1)} %), ${fmt(s.goodput.reqPerS, 2)} req/s`]] : []),
    ['errors by kind', esc(Object.entries(s.errorsByKind).map(([k, n]) => `${k} ${n}`).join(', ') || '—')],
    ['statuses', esc(Object.entries(s.statuses).map(([k, n]) => `${k} ${n}`).join(', ') || '—')],
  ];
  const objectives = s.objectives ? `<h2>Objectives</h2>${table(['objective', 'value', 'limit', ''], s.objectives.map((o) => [esc(o.objective), o.value === null ? '—' : `${fmt(o.value)} ${esc(o.unit)}`, `${o.limit} ${esc(o.unit)}`, o.met ? 'met' : '<b>MISSED</b>']))}` : '';
  return `<h2>Percentiles (ms)</h2>${table(['', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max', 'n'], pct)}<div class="grid"><div><h2>Rates</h2>${table(['', ''], rates, 2)}</div><div>${objectives}</div></div>`;
}

function detailTables(d: ReportDetail): string {
  const out: string[] = [];
  for (const dim of BREAKDOWN_DIMENSIONS) {
    const rows = d.breakdowns[dim];
    if (rows.length < 2 && dim !== 'route') continue;
    out.push(`<h2>By ${esc(dim)}</h2>`, table([dim, 'requests', 'errors', 'latency p50', 'latency p99', 'TTFT p50', 'TTFT p99', 'TPOT p50'],
      rows.map((b) => [esc(b.key), String(b.requests), String(b.errors), fmt(b.latencyMs.p50), fmt(b.latencyMs.p99), fmt(b.ttftMs.p50), fmt(b.ttftMs.p99), fmt(b.tpotMs.p50)])));
  }
  if (d.scrape.length > 0) {
    out.push('<h2>Scraped from the target</h2>', table(['series', 'source', 'type', 'samples', 'last', 'max'],
      d.scrape.slice(0, 200).map((s) => [esc(`${s.name}${Object.keys(s.labels).length ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : ''}`), esc(s.source), esc(s.type), String(s.values.length), fmt(s.values.at(-1) ?? null, 3), fmt(s.values.length ? Math.max(...s.values) : null, 3)]), 3));
  }
  return out.join('\n');
}

/**
 * The report as one self-contained HTML file: tables rendered in the page (readable without JavaScript), charts drawn
 * by uPlot inlined in the file from the data embedded as JSON; nothing is loaded from the network when it is opened.
 */
export const htmlReporter: Reporter = (r: RunReport) => {
  const charts = r.detail ? chartsOf(r.detail) : [];
  const body = `${header(r)}
${charts.length ? `<h2>Over time and distributions</h2>${chartSections(charts)}` : ''}
${summaryTables(r)}
${r.detail ? detailTables(r.detail) : ''}`;
  return htmlPage(`tracewarp report ${r.facts.runId}`, body, charts);
};

/** The charts' sections (drawn by {@link DRAW_SCRIPT} from the page's data), with a note for readers without JavaScript. */
export function chartSections(charts: readonly ChartData[]): string {
  return '<noscript><p class="muted">The charts need JavaScript; every figure is also in the tables.</p></noscript>'
    + charts.map((c) => `<section class="chart" data-chart="${esc(c.id)}" data-points="${pointsOf(c)}"><h3>${esc(c.title)}</h3><p>${esc(c.caption)}</p><div class="plot"></div></section>`).join('\n');
}

/**
 * One self-contained HTML page: `body` (already escaped HTML), uPlot and its CSS inlined, `charts` embedded as
 * escaped JSON, a Content-Security-Policy that forbids every load.
 */
export function htmlPage(title: string, body: string, charts: readonly ChartData[]): string {
  const { js, css } = uplotAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${css}${CSS}</style></head>
<body><main>
${body}
<p class="muted">Written by tracewarp. Charts: uPlot (MIT), inlined.</p>
</main>
<script type="application/json" id="tw-data">${scriptJson({ charts })}</script>
<script>${js.replace(/<\/script/gi, '<\\/script')}</script>
<script>${DRAW_SCRIPT}</script>
</body></html>
`;
}
