import type { Percentiles, RunSummary } from '../metrics/summary.ts';
import type { ReplayerHealth } from '../results/types.ts';

const fmt = (v: number | null, digits = 1): string => (v === null ? '—' : v.toFixed(digits));

function row(name: string, p: Percentiles): string {
  if (p.count === 0) return `  ${name.padEnd(26)} (none)`;
  return `  ${name.padEnd(26)} ${[p.p50, p.p90, p.p99, p.p999, p.max].map((v) => fmt(v).padStart(9)).join('')}   n=${p.count}`;
}

/** Renders a run summary as the human-readable report `replay` and `report` print. Times in ms, rates in req/s. */
export function formatSummary(s: RunSummary, title?: string): string {
  const lines: string[] = [];
  const h = s.replayerHealth;
  // A run the tool itself may have distorted says so before anything else.
  if (h && h.verdict !== 'ok') lines.push(`${h.verdict === 'distorted' ? 'WARNING: the replayer itself distorted this run' : 'NOTE: the replayer itself may have shaped some figures'}: ${h.reasons.join('; ')}. ${h.fix ?? ''}`.trimEnd());
  if (title) lines.push(title);
  lines.push(`requests ${s.requests}   ${s.attempted !== undefined && s.attempted !== s.sent ? `attempted ${s.attempted}   ` : ''}sent ${s.sent}   completed ${s.completed}   errors ${s.errors}   duration ${fmt(s.durationS, 1)} s`);
  lines.push(`rate: target ${fmt(s.targetRate, 2)} req/s   achieved ${fmt(s.achievedRate, 2)} req/s   throughput ${fmt(s.throughput, 2)} req/s`);
  const kinds = Object.entries(s.errorsByKind);
  if (kinds.length > 0) lines.push(`errors by kind: ${kinds.map(([k, n]) => `${k}=${n}`).join('  ')}`);
  lines.push(`statuses: ${Object.entries(s.statuses).map(([k, n]) => `${k}=${n}`).join('  ') || '—'}`);
  lines.push(`  ${'(ms)'.padEnd(26)} ${['p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => h.padStart(9)).join('')}`);
  lines.push(row('latency (from send)', s.latencyMs));
  lines.push(row('latency (from schedule)', s.latencyFromScheduledMs));
  lines.push(row('TTFB', s.ttfbMs));
  lines.push(row('TTFT (from send)', s.ttftMs));
  lines.push(row('TTFT (from schedule)', s.ttftFromScheduledMs));
  lines.push(row('ITL (every gap)', s.itlMs));
  lines.push(row('TPOT', s.tpotMs));
  lines.push(row('send lateness', s.latenessMs));
  for (const [name, p] of Object.entries(s.serverTimingMs ?? {})) lines.push(row(`Server-Timing ${name}`, p));
  if (h) lines.push(healthLine(h));
  if (s.outputTokensPerSecond.count > 0) {
    const t = s.outputTokensPerSecond;
    lines.push(`output tokens/s per request: p50 ${fmt(t.p50)}  p90 ${fmt(t.p90)}  p99 ${fmt(t.p99)}; in total ${fmt(s.totalOutputTokensPerSecond)} tokens/s`);
  }
  if (s.goodput) {
    // Objectives apply where they are defined: TTFT, TPOT and ITL to streamed answers, E2E to all (metrics/slo.ts).
    const apart = s.recordedFailures > 0 ? `; ${s.recordedFailures} request${s.recordedFailures === 1 ? '' : 's'} that had failed when recorded left out` : '';
    lines.push(`goodput (${s.goodput.slo}, from the scheduled send; ttft/tpot/itl judge streamed answers only): ${s.goodput.met} of ${s.goodput.eligible} requests (${(s.goodput.fraction * 100).toFixed(1)} %), ${fmt(s.goodput.reqPerS, 2)} req/s${apart}`);
  } else if (s.recordedFailures > 0) lines.push(`${s.recordedFailures} request${s.recordedFailures === 1 ? '' : 's'} had failed when recorded (replayed as recorded)`);
  if (s.objectives) {
    const missed = s.objectives.filter((o) => !o.met).length;
    lines.push(missed === 0 ? `SLO met: all ${s.objectives.length} objectives` : `SLO MISSED: ${missed} of ${s.objectives.length} objectives`);
    for (const o of s.objectives) lines.push(`  ${o.met ? 'met   ' : 'MISSED'} ${o.objective.padEnd(22)} ${o.value === null ? 'no value (no such requests)' : `${fmt(o.value)} ${o.unit}`} (limit ${o.limit} ${o.unit})`);
  }
  const notes: string[] = [];
  if (s.capDelayed > 0) notes.push(`${s.capDelayed} requests waited for the in-flight cap`);
  if (s.shorterThanRecorded > 0) notes.push(`${s.shorterThanRecorded} answers were shorter than recorded`);
  if (s.outputTokens > 0) notes.push(`${s.outputTokens} output tokens`);
  if (notes.length > 0) lines.push(notes.join('; '));
  if (s.byLabel) {
    lines.push('by anomaly label:');
    for (const [label, g] of Object.entries(s.byLabel)) {
      const errs = Object.entries(g.errorsByKind).map(([k, n]) => `${k}=${n}`).join(' ');
      lines.push(`  ${label.padEnd(16)} requests ${String(g.requests).padStart(6)}  completed ${String(g.completed).padStart(6)}  latency p50 ${fmt(g.latencyMs.p50)} ms p99 ${fmt(g.latencyMs.p99)} ms  statuses ${Object.entries(g.statuses).map(([k, n]) => `${k}=${n}`).join(' ') || '—'}${errs ? `  errors ${errs}` : ''}`);
    }
  }
  return lines.join('\n');
}

const n = (k: number, word: string) => `${k} ${word}${k === 1 ? '' : 's'}`;

/**
 * The tool's own floor, printed with every report: whether its own delays stayed within the bound, and how large they
 * were next to the figures above.
 */
function healthLine(h: ReplayerHealth): string {
  const synth = h.synthesis ? `; synthesis ${n(h.synthesis.threads, 'thread')}, ${h.notReadyAtDue} late${h.synthesis.cacheHitTokens > 0 ? `, ${Math.round((100 * h.synthesis.cacheHitTokens) / Math.max(1, h.synthesis.cacheHitTokens + h.synthesis.cacheMissTokens))} % of prompt tokens from the prefix cache` : ''}` : '';
  const marked = h.resultsDuringStall > 0 ? ` (${h.resultsDuringStall} marked toolStall)` : '';
  return `replayer health ${h.verdict}: its own delays against a ${h.boundMs} ms bound — loop delay p99 ${fmt(h.loopDelayMs.p99, 2)} ms (max ${fmt(h.loopDelayMs.max, 1)}), send lateness p99 ${fmt(h.sendLatenessMs.p99, 2)} ms, ${n(h.stalls, 'stall')}${marked}${synth}; ${n(h.senders, 'sending loop')}, CPU ${fmt(h.cpuPercent, 0)} % of one core`;
}
