import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlan } from '../src/cli/plan.ts';
import { startRecord } from '../src/cli/record.ts';
import { importedChatRecord } from '../src/importers/common.ts';
import { readRunFile } from '../src/results/run-file.ts';
import { replayTrace } from '../src/replay/run.ts';
import { createRng } from '../src/rng.ts';
import { historySpecs, planSessions } from '../src/sessions/schedule.ts';
import { startSim, type SimServer } from '../src/sim/server.ts';
import { synthesizeWorkload } from '../src/synth/workload.ts';
import { textOfTokens } from '../src/synth/text.ts';
import { TraceReader } from '../src/trace/reader.ts';
import { TraceWriter } from '../src/trace/writer.ts';
import type { SessionLink, TraceRecord } from '../src/types.ts';
import { transform } from '../src/workload/pipeline.ts';
import { captureOutput, startUpstream, tempDir } from './helpers.ts';

/** Reads every record of a trace, in arrival order. */
function recordsOf(path: string): TraceRecord[] {
  const r = new TraceReader(path);
  try {
    return [...r.records()];
  } finally {
    r.close();
  }
}

describe('record: sessions found in multi-turn chats through the proxy', () => {
  const tmp = tempDir();
  const tracePath = join(tmp.dir, 'chats.trace.db');
  let sim: SimServer;
  /** For each request sent, in order: which conversation and turn (null: unrelated). */
  const sent: Array<{ conversation: string | null; turn: number }> = [];

  beforeAll(async () => {
    sim = await startSim({ decodeStepMs: 1, perSeqStepMs: 0, prefillUsPerToken: 1 });
    const session = await startRecord({ upstream: sim.url, host: '127.0.0.1', port: 0, out: tracePath, sessionKeys: [{ source: 'header', name: 'x-session-id' }] }, captureOutput());
    const client = new OpenAI({ baseURL: `${session.proxy.url}/v1`, apiKey: 'sk-test-not-a-secret', maxRetries: 0 });
    const rng = createRng(3);
    const system = textOfTokens(40, rng);
    const histories: Record<string, OpenAI.Chat.ChatCompletionMessageParam[]> = {
      a: [{ role: 'system', content: system }],
      b: [{ role: 'system', content: system }],
      c: [{ role: 'system', content: textOfTokens(30, rng) }],
    };
    // Three conversations, interleaved turn by turn, each turn sent after the answer it continues came back, as a
    // chat client keeping its history does.
    for (let turn = 0; turn < 3; turn++) {
      for (const conv of ['a', 'b', 'c']) {
        const h = histories[conv]!;
        h.push({ role: 'user', content: textOfTokens(20 + turn * 7, rng) });
        const answer = await client.chat.completions.create({ model: 'tracewarp-sim', messages: h, max_tokens: 6 + turn });
        sent.push({ conversation: conv, turn });
        h.push({ role: 'assistant', content: answer.choices[0]!.message.content ?? '' });
      }
      // Unrelated: the same system prompt as a and b, a user message of its own (not a follow-up of anything).
      await client.chat.completions.create({ model: 'tracewarp-sim', messages: [{ role: 'system', content: system }, { role: 'user', content: textOfTokens(25, rng) }], max_tokens: 4 });
      sent.push({ conversation: null, turn: 0 });
    }
    // A keyed session whose prompts share nothing: only the header says they belong together.
    for (let turn = 0; turn < 2; turn++) {
      await client.chat.completions.create({ model: 'tracewarp-sim', messages: [{ role: 'user', content: textOfTokens(15, rng) }], max_tokens: 3 }, { headers: { 'x-session-id': 'user-42-session-9' } });
      sent.push({ conversation: 'keyed', turn });
    }
    await session.stop();
  }, 60_000);

  afterAll(async () => {
    await sim?.close();
    tmp.cleanup();
  });

  it('links each conversation turn to the one it continued, and leaves the unrelated requests alone', () => {
    const recs = recordsOf(tracePath).sort((x, y) => x.seq - y.seq);
    expect(recs).toHaveLength(sent.length);
    const bySeq = new Map(recs.map((r) => [r.seq, r]));
    const sessionOf = new Map<string, number>();
    recs.forEach((r, i) => {
      const s = sent[i]!;
      if (s.conversation === null) {
        expect(r.session ?? null, `unrelated request ${r.seq}`).toBeNull();
        return;
      }
      const link = r.session as SessionLink;
      expect(link, `request ${r.seq} (${s.conversation} turn ${s.turn})`).toBeTruthy();
      expect(link.turn).toBe(s.turn);
      if (!sessionOf.has(s.conversation)) sessionOf.set(s.conversation, link.session);
      expect(link.session).toBe(sessionOf.get(s.conversation));
      if (s.turn === 0) {
        expect(link.parentSeq).toBeNull();
        return;
      }
      // Its parent is the previous turn of the same conversation, and it arrived after that answer ended.
      const parent = bySeq.get(link.parentSeq!)!;
      expect(sent[recs.indexOf(parent)]).toEqual({ conversation: s.conversation, turn: s.turn - 1 });
      expect(link.thinkUs).toBe(r.offsetUs - (parent.offsetUs + parent.latencyUs!));
      expect(link.thinkUs!).toBeGreaterThanOrEqual(0);
    });
    expect(new Set(sessionOf.values()).size).toBe(4);
  });

  it('keeps no key value and no message fingerprint in the trace', async () => {
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(tracePath);
    expect(bytes.includes(Buffer.from('user-42-session-9'))).toBe(false);
    for (const r of recordsOf(tracePath)) expect(Object.keys(r.features)).not.toContain('messagePrefixes');
  });
});

/** A trace with two sessions of three turns and requests on their own; think 20 ms; offsets much closer than answers take. */
function writeSessionTrace(path: string): void {
  const w = new TraceWriter(path, { source: 'test', anchorWallUs: 0, anonymization: null });
  const at = (ms: number) => ms * 1000;
  const rows: Array<[number, number, SessionLink | null]> = [
    [1, at(0), { session: 1, turn: 0, parentSeq: null, thinkUs: null }],
    [2, at(10), { session: 2, turn: 0, parentSeq: null, thinkUs: null }],
    [3, at(30), null],
    [4, at(60), { session: 1, turn: 1, parentSeq: 1, thinkUs: at(20) }],
    [5, at(70), { session: 2, turn: 1, parentSeq: 2, thinkUs: at(20) }],
    [6, at(90), null],
    [7, at(120), { session: 1, turn: 2, parentSeq: 4, thinkUs: at(20) }],
    [8, at(130), { session: 2, turn: 2, parentSeq: 5, thinkUs: at(20) }],
  ];
  for (const [seq, offsetUs, session] of rows) {
    // Each turn's prompt holds the previous prompt and answer (10 tokens each) plus 10 new tokens.
    const turn = session?.turn ?? 0;
    w.add({ ...importedChatRecord(seq, offsetUs, 30 + turn * 20, 10, { model: 'm', stream: false }), session });
  }
  w.close();
}

describe('replay: closed within a session, open across sessions', () => {
  const tmp = tempDir();
  const tracePath = join(tmp.dir, 'sessions.trace.db');
  const ANSWER_MS = 150;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;

  beforeAll(async () => {
    writeSessionTrace(tracePath);
    upstream = await startUpstream((_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'ok' } }], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
      }, ANSWER_MS);
    });
  });

  afterAll(async () => {
    await upstream?.close();
    tmp.cleanup();
  });

  it('sends every follow-up no earlier than its parent ended plus its think time; roots and lone requests keep their times', async () => {
    const runFile = join(tmp.dir, 'closed.run.db');
    const out = await replayTrace({ trace: tracePath, target: upstream.url, runFile, warmup: 0 });
    expect(out.summary.requests).toBe(8);
    const { results, meta } = readRunFile(runFile);
    expect(meta.sessions).toMatchObject({ mode: 'closed', thinkTime: 'recorded', sessions: 2, followUps: 4 });
    const byIndex = new Map(results.map((r) => [r.index, r]));
    for (const r of results) {
      if (r.parentIndex === null || r.parentIndex === undefined) {
        // Sent on the schedule (lateness within a few ms on a quiet machine; 30 ms leaves room for a loaded one).
        expect(r.sentUs! - r.scheduledUs).toBeLessThan(30_000);
        continue;
      }
      const parent = byIndex.get(r.parentIndex)!;
      expect(r.session).toBe(parent.session);
      expect(r.turn).toBe(parent.turn! + 1);
      // Its due time is its parent's end plus the recorded 20 ms, and it was not sent before.
      expect(r.scheduledUs).toBe(parent.endUs! + 20_000);
      expect(r.sentUs!).toBeGreaterThanOrEqual(parent.endUs! + 20_000);
    }
    // The last turn of a session ends after two answers and two think times at least: later than its recorded time.
    const last = results.filter((r) => r.turn === 2);
    for (const r of last) expect(r.endUs!).toBeGreaterThan(3 * ANSWER_MS * 1000 + 2 * 20_000);
  }, 30_000);

  it('in open mode sends every request at its own time, before the answer it continues; the bodies are the same', async () => {
    const runFile = join(tmp.dir, 'open.run.db');
    const open = await replayTrace({ trace: tracePath, target: upstream.url, runFile, warmup: 0, sessions: 'open' });
    const closed = await replayTrace({ trace: tracePath, target: upstream.url, runFile: null, warmup: 0 });
    // Same workload, same seed: one digest, whichever way the sessions are sent, and the one `plan` prints.
    expect(open.digest!.digest).toBe(closed.digest!.digest);
    const plan = runPlan(tracePath, [], { seed: 1 }, captureOutput());
    expect(plan.digest).toBe(open.digest!.digest);
    expect(plan.sessions).toEqual({ sessions: 2, followUps: 4 });
    const { results, meta } = readRunFile(runFile);
    expect(meta.sessions).toMatchObject({ mode: 'open' });
    for (const r of results) {
      expect(r.parentIndex ?? null).toBeNull();
      expect(r.sentUs! - r.scheduledUs).toBeLessThan(30_000);
    }
    // Turn 1 of session 1 was recorded 60 ms in: sent then, while turn 0 (150 ms) was still being answered.
    const turn1 = results.find((r) => r.traceSeq === 4)!;
    const turn0 = results.find((r) => r.traceSeq === 1)!;
    expect(turn1.turn).toBe(1);
    expect(turn1.sentUs!).toBeLessThan(turn0.endUs!);
  }, 30_000);

  it('history: a follow-up prompt begins with exactly its parent prompt plus a stand-in answer, the same for the same seed', () => {
    const reader = new TraceReader(tracePath);
    try {
      const arrivals = reader.arrivals();
      const plan = planSessions(arrivals)!;
      const prompts = (seed: number) => {
        const bodies = [...synthesizeWorkload(arrivals, (s) => reader.get(s), createRng(seed), undefined, undefined, undefined, historySpecs(arrivals, plan))];
        return bodies.map((b) => (JSON.parse(b.body!.toString()) as { messages: Array<{ content: string }> }).messages[0]!.content);
      };
      const p = prompts(1);
      // Session 1: requests 0 → 3 → 6 in schedule order.
      expect(p[3]!.startsWith(p[0]!)).toBe(true);
      expect(p[6]!.startsWith(p[3]!)).toBe(true);
      expect(p[3]!.length).toBeGreaterThan(p[0]!.length);
      // Lone requests and other sessions share nothing with it.
      expect(p[2]!.startsWith(p[0]!.slice(0, 40))).toBe(false);
      expect(p[4]!.startsWith(p[1]!)).toBe(true);
      expect(prompts(1)).toEqual(p);
      expect(prompts(2)[3]).not.toBe(p[3]);
    } finally {
      reader.close();
    }
  });

  it('a window keeps a session whole by where it starts, unless asked to cut it', () => {
    const reader = new TraceReader(tracePath);
    try {
      const arrivals = reader.arrivals();
      // 0–65 ms: both sessions start inside (0, 10 ms), so all their turns stay, even those at 70–130 ms; request 6 (90 ms) goes.
      const whole = transform(arrivals, [{ op: 'window', fromUs: 0, toUs: 65_000 }], createRng(1));
      expect(whole.map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 7, 8]);
      const cut = transform(arrivals, [{ op: 'window', fromUs: 0, toUs: 65_000, cutSessions: true }], createRng(1));
      expect(cut.map((a) => a.seq)).toEqual([1, 2, 3, 4]);
      // --duration 65ms (a loop cut at 65 ms) keeps them whole the same way.
      expect(transform(arrivals, [{ op: 'loop', durationUs: 65_000 }], createRng(1)).map((a) => a.seq)).toEqual([1, 2, 3, 4, 5, 7, 8]);
      expect(transform(arrivals, [{ op: 'loop', durationUs: 65_000, cutSessions: true }], createRng(1)).map((a) => a.seq)).toEqual([1, 2, 3, 4]);
      // 20–200 ms: the sessions began before it, so none of their turns is kept.
      expect(transform(arrivals, [{ op: 'window', fromUs: 20_000, toUs: 200_000 }], createRng(1)).map((a) => a.seq)).toEqual([3, 6]);
    } finally {
      reader.close();
    }
  });

  it('amplification clones whole sessions, each clone linked within itself', () => {
    const reader = new TraceReader(tracePath);
    try {
      const out = transform(reader.arrivals(), [{ op: 'amplify', k: 2.5, keepDuplicates: false }], createRng(9));
      const plan = planSessions(out)!;
      const members = new Map<number, number[]>();
      out.forEach((a, i) => {
        if (plan.session[i]! >= 0) (members.get(plan.session[i]!) ?? members.set(plan.session[i]!, []).get(plan.session[i]!)!).push(i);
      });
      // Every session of the workload has its three turns, and each follow-up waits for a request of its own session.
      for (const idx of members.values()) {
        expect(idx.map((i) => out[i]!.session!.turn).sort()).toEqual([0, 1, 2]);
        for (const i of idx) if (out[i]!.session!.turn > 0) expect(plan.session[plan.parent[i]!]).toBe(plan.session[i]);
      }
      expect(members.size).toBeGreaterThanOrEqual(4);
      expect(plan.followUps).toBe(members.size * 2);
    } finally {
      reader.close();
    }
  });
});
