// Sessions replayed open vs closed against sim (issue 13), side by side in one run: TTFT by turn, the prefix-cache hit
// rate sim reports, and the offered load (requests sent per second of the run) when the server saturates.
//   npx tsx bench/sessions.ts [--smoke] [--mooncake [--mooncake-speed 5] [--mooncake-window 0s..200s]] [--skip-chats]
// 1. A recorded multi-turn workload: chats through the recording proxy in front of sim (the OpenAI client keeping each
//    conversation's history, a think time between turns), then replayed against a fresh sim per run.
// 2. With --mooncake, the Mooncake synthetic trace (../shared/traces/synthetic_trace.jsonl, sessions from its hash_ids).
// Every sim runs in its own process; each replay gets a fresh one (a cold prefix cache).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import OpenAI from 'openai';
import { startRecord } from '../src/cli/record.ts';
import { runImport } from '../src/cli/import.ts';
import { buildReport } from '../src/report/build.ts';
import { replayTrace, type ReplayTraceOptions } from '../src/replay/run.ts';
import { createRng } from '../src/rng.ts';
import { startSimProcess } from '../src/sim/process.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { parseMetricsText } from '../src/scrape/prometheus.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseDurationUs } from '../src/units.ts';
import { quiet, round, SHARED_TRACES } from './common.ts';

const { values } = parseArgs({
  options: { smoke: { type: 'boolean' }, mooncake: { type: 'boolean' }, 'mooncake-speed': { type: 'string', default: '5' }, 'mooncake-window': { type: 'string', default: '0s..200s' }, 'skip-chats': { type: 'boolean' } },
});
const smoke = Boolean(values.smoke);
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-sessions-'));
/** sim for the recorded chats: a small batch so a 3× replay saturates it. */
const SIM_ARGS = ['--max-batch', '8', '--prefill-us-per-token', '40'];

/** Records `conversations` chats of `turns` turns through the proxy, one every `gapMs`, `thinkMs` between turns. */
async function recordChats(path: string, conversations: number, turns: number, gapMs: number, thinkMs: number): Promise<void> {
  const sim = await startSimProcess(SIM_ARGS);
  const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: path, force: true }, quiet);
  const client = new OpenAI({ baseURL: `${session.proxy.url}/v1`, apiKey: 'sk-bench', maxRetries: 0 });
  const rng = createRng(11);
  const systems = [textOfTokens(1500, rng), textOfTokens(1500, rng)];
  const chat = async (c: number) => {
    await new Promise((r) => setTimeout(r, c * gapMs));
    const r = rng.child(`c${c}`);
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'system', content: systems[c % 2]! }];
    for (let t = 0; t < turns; t++) {
      messages.push({ role: 'user', content: textOfTokens(200 + r.int(400), r) });
      const a = await client.chat.completions.create({ model: 'tracewarp-sim', messages, max_tokens: 48, stream: true, stream_options: { include_usage: true } });
      let text = '';
      for await (const chunk of a) text += chunk.choices[0]?.delta?.content ?? '';
      messages.push({ role: 'assistant', content: text });
      await new Promise((res) => setTimeout(res, thinkMs * (0.5 + r.next())));
    }
  };
  await Promise.all(Array.from({ length: conversations }, (_, c) => chat(c)));
  await session.stop();
  await sim.close();
}

/** sim's prefix-cache hit rate (hits / queries, tokens) from its /metrics. */
async function hitRate(url: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const { families } = parseMetricsText(text);
  const total = (name: string) => families.find((f) => f.name === name)?.samples.reduce((a, s) => a + s.value, 0) ?? 0;
  const q = total('vllm:prefix_cache_queries_total');
  return q > 0 ? round(total('vllm:prefix_cache_hits_total') / q, 3) : null;
}

/** One replay against a fresh sim: TTFT p50 by turn, hit rate, offered load, lateness of follow-ups. */
async function replayOnce(trace: string, name: string, simArgs: string[], opts: Partial<ReplayTraceOptions>): Promise<Record<string, unknown>> {
  const sim = await startSimProcess(simArgs);
  const runFile = join(dir, `${name}.run.db`);
  try {
    const out = await replayTrace({ trace, target: sim.url, runFile, force: true, warmup: 0, ...opts });
    const rep = buildReport([runFile]);
    const detail = rep.detail!;
    const byTurn = Object.fromEntries(detail.breakdowns.turn.map((r) => [r.key, { requests: r.requests, ttftP50Ms: r.ttftMs.p50, latencyFromScheduleP50Ms: r.latencyFromScheduledMs.p50 }]));
    const s = out.summary;
    const spanS = Math.max(...detail.timeline.tS) + detail.timeline.binS;
    return {
      run: name, requests: s.requests, errors: s.errors, sentPerS: round(s.requests / spanS, 2), runSpanS: round(spanS, 1),
      ttftP50Ms: s.ttftMs.p50, ttftP99Ms: s.ttftMs.p99, prefixCacheHitRate: await hitRate(sim.url), byTurn,
      peakSessionsInFlight: detail.timeline.sessionsInFlight ? Math.max(...detail.timeline.sessionsInFlight) : null,
      replayerHealth: s.replayerHealth?.verdict ?? null,
    };
  } finally {
    await sim.close();
  }
}

const rows: Array<Record<string, unknown>> = [];
if (!values['skip-chats']) {
  const chats = join(dir, 'chats.trace.db');
  await recordChats(chats, smoke ? 4 : 16, smoke ? 3 : 5, smoke ? 200 : 700, smoke ? 300 : 1500);
  for (const speed of smoke ? [1] : [1, 4]) {
    for (const mode of ['open', 'closed'] as const) {
      rows.push({ trace: 'recorded chats', speed, mode, ...(await replayOnce(chats, `chats-${speed}x-${mode}`, SIM_ARGS, { sessions: mode, steps: [{ op: 'speed', factor: speed }] })) });
    }
  }
  if (!smoke) rows.push({ trace: 'recorded chats', speed: 4, mode: 'closed, --history none', ...(await replayOnce(chats, 'chats-4x-closed-nohistory', SIM_ARGS, { sessions: 'closed', history: 'none', steps: [{ op: 'speed', factor: 4 }] })) });
}

if (values.mooncake) {
  const mc = join(dir, 'mooncake.trace.db');
  await runImport('mooncake', join(SHARED_TRACES, 'synthetic_trace.jsonl'), { out: mc, force: true }, quiet);
  // 15k-token prompts on average: a faster prefill than the chats' sim; a window of the trace (its sessions whole),
  // faster by the speed, think times too.
  const simArgs = ['--max-batch', '32', '--prefill-us-per-token', '2'];
  const speed = Number(values['mooncake-speed']);
  const [from, to] = values['mooncake-window']!.split('..').map((x) => parseDurationUs(x));
  for (const mode of ['open', 'closed'] as const) {
    const steps = [{ op: 'window' as const, fromUs: from!, toUs: to! }, { op: 'speed' as const, factor: speed }];
    rows.push({ trace: 'mooncake synthetic', window: values['mooncake-window'], speed, mode, ...(await replayOnce(mc, `mooncake-${mode}`, simArgs, { sessions: mode, thinkTime: { kind: 'scaled' }, steps })) });
  }
}
console.log(JSON.stringify(rows, null, 2));
