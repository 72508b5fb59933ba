import { LLM_LAYOUT } from '../anonymize/keys.ts';
import { describeJson } from '../anonymize/skeleton.ts';
import type { Features, TraceRecord } from '../types.ts';

/** Settings shared by the importers. */
export interface ImportOptions {
  /** Model name written into each request (the source traces have none). Default `default`. */
  model?: string;
  /** Whether the imported requests ask for a streamed answer. Default true (TTFT and ITL can then be measured). */
  stream?: boolean;
}

/** Counts an importer reports. */
export interface ImportStats {
  requests: number;
  firstOffsetUs: number;
  lastOffsetUs: number;
  promptTokens: number;
  outputTokens: number;
  /** Sessions with a follow-up turn, and the follow-up turns (requests with a parent). */
  sessions: number;
  followUps: number;
}

/**
 * The record of one imported LLM request: a single-user-message chat completion with the source's prompt and output
 * token counts, `max_tokens` = output tokens. No timing of the original answer is known, so those fields are null.
 */
export function importedChatRecord(seq: number, offsetUs: number, promptTokens: number, outputTokens: number, opts: ImportOptions, features: Features = {}): TraceRecord {
  const stream = opts.stream ?? true;
  const body: Record<string, unknown> = {
    model: opts.model ?? 'default',
    messages: [{ role: 'user', content: '' }],
    max_tokens: outputTokens,
    stream,
  };
  if (stream) body.stream_options = { include_usage: true };
  const d = describeJson(body, { layout: LLM_LAYOUT });
  return {
    seq,
    offsetUs,
    method: 'POST',
    route: '/v1/chat/completions',
    protocol: 'openai-chat',
    status: null,
    errorKind: null,
    // A ` word` token is 5–10 bytes; the synthesized body's real size is known only when it is built.
    requestBytes: JSON.stringify(body).length + promptTokens * 7,
    responseBytes: null,
    ttfbUs: null,
    ttftUs: null,
    latencyUs: null,
    streamed: stream,
    eventCount: null,
    eventOffsetsUs: null,
    promptTokens,
    outputTokens,
    messageCount: 1,
    model: opts.model ?? 'default',
    maxTokens: outputTokens,
    shape: { kind: 'json', contentType: 'application/json', skeleton: d.skeleton },
    // The model is the user's own choice (`import --model`), not captured data: kept as given.
    params: 'model' in d.params ? { ...d.params, model: opts.model ?? 'default' } : d.params,
    features: { sizes: d.sizes, messageTokens: [promptTokens], ...features },
  };
}

/** Adds a record's numbers to running import stats. */
export function tally(stats: ImportStats, r: TraceRecord): void {
  if (stats.requests === 0) stats.firstOffsetUs = r.offsetUs;
  stats.requests++;
  stats.lastOffsetUs = r.offsetUs;
  stats.promptTokens += r.promptTokens ?? 0;
  stats.outputTokens += r.outputTokens ?? 0;
  if (r.session?.parentSeq !== null && r.session?.parentSeq !== undefined) {
    stats.followUps++;
    // A session's first follow-up is turn 1 (its root became turn 0 then).
    if (r.session.turn === 1) stats.sessions++;
  }
}

/** Empty stats. */
export const emptyStats = (): ImportStats => ({ requests: 0, firstOffsetUs: 0, lastOffsetUs: 0, promptTokens: 0, outputTokens: 0, sessions: 0, followUps: 0 });
