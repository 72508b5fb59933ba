import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ReportDetail, ScrapeSeries, Timeline } from './model.ts';
import { queueSeries } from './text-detail.ts';

/**
 * uPlot (npm `uplot`, MIT, a small and well-kept charting library, as vegeta's `plot` uses) as text to inline into a
 * report, read once: its minified IIFE build and its stylesheet.
 */
let assets: { js: string; css: string } | null = null;
export function uplotAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    assets = {
      js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  }
  return assets;
}

/** Scraped gauges drawn with the timeline: the server's own queue, batch and cache (vLLM, TGI and Triton-style names). */
export const SERVER_GAUGES = /num_requests_waiting|num_requests_running|queue_size|batch_current_size|kv_cache_usage|cache_usage_perc|inference_queue|pending_request_count/;

/** One chart's data, as uPlot takes it: x values, then each series (null where there is no value). */
export interface ChartData {
  id: string;
  title: string;
  /** What the chart shows, in words (also the text shown without JavaScript). */
  caption: string;
  xLabel: string;
  kind: 'time' | 'spectrum' | 'bars';
  x: number[];
  series: Array<{ label: string; values: Array<number | null>; scale: string; color: string; dash?: boolean }>;
  scales: Array<{ id: string; label: string }>;
}

/** The last value of a scraped series at or before each bin's end, on the timeline's bins. */
export function resample(s: ScrapeSeries, t: Timeline): Array<number | null> {
  const out: Array<number | null> = [];
  let i = 0;
  let v: number | null = null;
  for (const tS of t.tS) {
    while (i < s.tS.length && s.tS[i]! < tS + t.binS) v = s.values[i++]!;
    out.push(v);
  }
  return out;
}

const labelOf = (s: ScrapeSeries) => `${s.name}${Object.entries(s.labels).filter(([k]) => k !== 'model_name' && k !== 'engine').map(([k, v]) => ` ${k}=${v}`).join('')}`;
export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function timeCharts(d: ReportDetail): ChartData[] {
  const t = d.timeline;
  const perS = (a: number[]) => a.map((x) => x / t.binS);
  const gauges = d.scrape.filter((s) => SERVER_GAUGES.test(s.name));
  const waiting = queueSeries(gauges);
  const charts: ChartData[] = [
    {
      id: 'rate', title: 'Rate: scheduled, sent and completed per second', xLabel: 's', kind: 'time', x: t.tS,
      caption: 'Requests due (scheduled), sent and completed in each second, and errors: sent below scheduled is the replayer falling behind; completed below sent is the server falling behind.',
      scales: [{ id: 'rps', label: 'req/s' }],
      series: [
        { label: 'scheduled', values: perS(t.scheduled), scale: 'rps', color: '#7f7f7f', dash: true },
        { label: 'sent', values: perS(t.sent), scale: 'rps', color: COLORS[0]! },
        { label: 'completed', values: perS(t.completed), scale: 'rps', color: COLORS[2]! },
        { label: 'errors', values: perS(t.errors), scale: 'rps', color: COLORS[1]! },
      ],
    },
    {
      id: 'queue', title: waiting ? 'TTFT and the server queue' : 'TTFT and requests in flight', xLabel: 's', kind: 'time', x: t.tS,
      caption: waiting
        ? `TTFT p50/p99 of the first tokens that arrived in each second (left), and the server's own count of waiting requests (${waiting.name}, scraped from ${waiting.source}) with the requests in flight (right): TTFT rising with the queue is requests waiting for a batch slot.`
        : 'TTFT p50/p99 of the first tokens that arrived in each second (left) and the most requests in flight (right). Replay with --scrape URL/metrics to draw the server\'s queue here too.',
      scales: [{ id: 'ms', label: 'ms' }, { id: 'n', label: 'requests' }],
      series: [
        { label: 'TTFT p50', values: t.ttftP50Ms, scale: 'ms', color: COLORS[0]! },
        { label: 'TTFT p99', values: t.ttftP99Ms, scale: 'ms', color: COLORS[1]! },
        { label: 'in flight', values: t.inFlight, scale: 'n', color: '#7f7f7f', dash: true },
        ...(t.sessionsInFlight ? [{ label: 'sessions in flight', values: t.sessionsInFlight, scale: 'n', color: COLORS[2]!, dash: true }] : []),
        ...(waiting ? [{ label: `server queue (${waiting.name})`, values: resample(waiting, t), scale: 'n', color: COLORS[3]! }] : []),
      ],
    },
    {
      id: 'latency', title: 'Latency per second', xLabel: 's', kind: 'time', x: t.tS,
      caption: 'Latency (from the send to the last byte) p50 and p99 of the requests that completed in each second.',
      scales: [{ id: 'ms', label: 'ms' }],
      series: [{ label: 'latency p50', values: t.latencyP50Ms, scale: 'ms', color: COLORS[0]! }, { label: 'latency p99', values: t.latencyP99Ms, scale: 'ms', color: COLORS[1]! }],
    },
  ];
  const others = gauges.filter((s) => s !== waiting);
  if (others.length > 0) {
    charts.push({
      id: 'server', title: 'The server\'s own gauges', xLabel: 's', kind: 'time', x: t.tS,
      caption: `Gauges scraped from the target during the run, on the run's clock: ${others.map(labelOf).join(', ')} (fractions such as KV-cache usage on the right).`,
      scales: [{ id: 'n', label: 'count' }, { id: 'frac', label: 'fraction' }],
      series: others.slice(0, 8).map((s, i) => ({ label: labelOf(s), values: resample(s, t), scale: /perc|usage/.test(s.name) ? 'frac' : 'n', color: COLORS[(i + 2) % COLORS.length]! })),
    });
  }
  return charts;
}

/** x of a percentile on the spectrum's axis: −log10(1 − q), so 90, 99, 99.9 are evenly spaced (HdrHistogram's plot). */
export const spectrumX = (q: number): number => -Math.log10(Math.max(1e-5, 1 - q / 100));

/** Every chart of a report: the time charts, the latency/TTFT percentile spectrum, the token histograms. */
export function chartsOf(d: ReportDetail): ChartData[] {
  const charts = timeCharts(d);
  const lat = d.distributions.latencySpectrum;
  const ttft = d.distributions.ttftSpectrum;
  const q = lat.q.length > 0 ? lat.q : ttft.q;
  if (q.length > 0) {
    charts.push({
      id: 'spectrum', title: 'Percentile spectrum', xLabel: 'percentile', kind: 'spectrum', x: q.map(spectrumX),
      caption: 'Latency and TTFT (from the send) at each percentile, from the HDR histograms: the tail on the right.',
      scales: [{ id: 'ms', label: 'ms' }],
      series: [
        { label: 'latency', values: lat.ms.length ? lat.ms : q.map(() => null), scale: 'ms', color: COLORS[0]! },
        { label: 'TTFT', values: ttft.ms.length ? ttft.ms : q.map(() => null), scale: 'ms', color: COLORS[1]! },
      ],
    });
  }
  const p = d.distributions.promptTokens;
  const o = d.distributions.outputTokens;
  const bins = Math.max(p.counts.length, o.counts.length);
  if (bins > 0) {
    charts.push({
      id: 'tokens', title: 'Tokens of what was sent', xLabel: 'tokens (power-of-two bins)', kind: 'bars', x: Array.from({ length: bins }, (_, i) => i),
      caption: 'Requests by prompt tokens and by the output tokens asked for (as recorded), in bins [1, 2), [2, 4), [4, 8), …',
      scales: [{ id: 'req', label: 'requests' }],
      series: [
        { label: 'prompt tokens', values: Array.from({ length: bins }, (_, i) => p.counts[i] ?? 0), scale: 'req', color: COLORS[0]! },
        { label: 'output tokens', values: Array.from({ length: bins }, (_, i) => o.counts[i] ?? 0), scale: 'req', color: COLORS[3]! },
      ],
    });
  }
  return charts;
}

/** Points a chart draws (non-null values over its series). */
export const pointsOf = (c: ChartData): number => c.series.reduce((a, s) => a + s.values.filter((v) => v !== null).length, 0);

/**
 * The inline script that draws every chart from the embedded data (`#tw-data`) with uPlot. Plain browser JavaScript,
 * no network; it never writes report text into the page as HTML (labels go through uPlot's text nodes).
 */
export const DRAW_SCRIPT = String.raw`
(function () {
  var data = JSON.parse(document.getElementById('tw-data').textContent);
  // Spectrum x is -log10(1 - q/100): 0, 1, 2, 3, … are p0, p90, p99, p99.9, …
  var fmtPct = function (x) { var q = 100 * (1 - Math.pow(10, -x)); var t = q.toFixed(Math.max(0, Math.round(x) - 1)); return t.indexOf('.') >= 0 ? t.replace(/0+$/, '').replace(/\.$/, '') : t; };
  data.charts.forEach(function (c) {
    var el = document.querySelector('.chart[data-chart="' + c.id + '"] .plot');
    if (!el) return;
    var bars = c.kind === 'bars' ? uPlot.paths.bars({ size: [0.4, 40] }) : null;
    var axes = [{ label: c.xLabel, splits: c.kind === 'spectrum' ? function () { return [0, 1, 2, 3, 4, 5]; } : undefined, values: c.kind === 'spectrum' ? function (u, vals) { return vals.map(fmtPct); } : c.kind === 'bars' ? function (u, vals) { return vals.map(function (v) { return Number.isInteger(v) ? String(Math.pow(2, v)) : ''; }); } : null }];
    c.scales.forEach(function (s, i) { axes.push({ scale: s.id, label: s.label, side: i === 0 ? 3 : 1, size: 72, grid: { show: i === 0 } }); });
    var scales = { x: c.kind === 'spectrum' ? { time: false, range: [0, 5] } : { time: false } };
    c.scales.forEach(function (s) { scales[s.id] = { auto: true, range: function (u, min, max) { return [Math.min(0, min), max > 0 ? max * 1.05 : 1]; } }; });
    var series = [{ label: c.xLabel, value: c.kind === 'spectrum' ? function (u, v) { return v == null ? '' : 'p' + fmtPct(v); } : null }];
    c.series.forEach(function (s, i) {
      series.push({ label: s.label, scale: s.scale, stroke: s.color, width: 2, dash: s.dash ? [6, 4] : undefined, spanGaps: false,
        fill: bars ? s.color + '99' : undefined, paths: bars || undefined, points: { show: c.kind !== 'time' || c.x.length < 40 } });
    });
    var width = Math.max(480, el.clientWidth || 1000);
    new uPlot({ width: width, height: 280, series: series, axes: axes, scales: scales, legend: { live: true } },
      [c.x].concat(c.series.map(function (s) { return s.values; })), el);
  });
})();
`;
