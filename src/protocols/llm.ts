import { LLM_LAYOUT } from '../anonymize/keys.ts';
import { keptParamValue } from '../anonymize/params.ts';
import type { Rng } from '../rng.ts';
import { countTokens, encodeTokens } from '../tokens.ts';
import { synthesizeImage, type ImageInfo } from '../synth/image.ts';
import { PromptText, RawStrings, type TokenText } from '../synth/text.ts';
import type { Features, ProtocolId, TraceRecord } from '../types.ts';
import { dataUrlImage, type ExtractContext, type RequestDescription, type SynthesizedRequest, type SynthOptions, type SynthRngs } from './adapter.ts';
import { describeJsonBody, jsonRequest, parseJson, synthesizeJsonBody } from './generic.ts';

/**
 * How an LLM protocol lays out a request, for the shared description and synthesis below: where the prompt text is
 * (chat `messages[i].content`, or one key holding a string, strings or token arrays), which nested keys are load
 * parameters, where the output limit goes, and whether the answer streams when the body does not say.
 */
export interface LlmSpec {
  protocol: ProtocolId;
  /** `messages`: chat messages (content strings or parts); otherwise the key of the prompt (`prompt`, `input`, `inputs`, `text_input`). */
  prompt: 'messages' | string;
  /** Nested load parameters kept with their values, as `parent.key` paths (`options.num_predict`, `parameters.max_new_tokens`). */
  nestedParams?: readonly string[];
  /** Where the output limit is: a top-level key, or a nested `parent.key`; the first present wins. */
  maxTokens: readonly string[];
  /** Where the output limit is set when the body has none. Default the first of `maxTokens`. */
  maxTokensDefault?: string;
  /** The answer streams unless the body says `"stream": false` (Ollama); default: only with `"stream": true`. */
  streamsByDefault?: boolean;
  /** Keep prefix fingerprints of the prompt (not for embeddings). Default true. */
  prefixes?: boolean;
  /** Generates output tokens (false for embeddings). Default true. */
  generative?: boolean;
  /** More schema fields of the protocol kept verbatim (see `DescribeOptions.keep`), e.g. KServe tensor names and shapes. */
  schema?: ReadonlyMap<string, (value: unknown, path: string) => boolean>;
}

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('');
  }
  return '';
}

/** The texts a request's prompt is made of, in order: chat message contents, or the prompt key's strings / token arrays. */
function promptTexts(spec: LlmSpec, body: Record<string, unknown>): Array<string | number[]> {
  if (spec.prompt === 'messages') return Array.isArray(body.messages) ? body.messages.map((m) => textOfContent((m as { content?: unknown })?.content)) : [];
  const p = body[spec.prompt];
  if (typeof p === 'string') return [p];
  if (Array.isArray(p)) {
    if (p.every((x) => typeof x === 'number')) return [p as number[]];
    return p.map((x) => (typeof x === 'string' ? x : Array.isArray(x) ? (x as number[]) : ''));
  }
  return [];
}

/** Images (data URLs) of a chat request, in message and part order. */
function chatImages(body: Record<string, unknown>): ImageInfo[] {
  const out: ImageInfo[] = [];
  if (!Array.isArray(body.messages)) return out;
  for (const m of body.messages) {
    const c = (m as { content?: unknown })?.content;
    if (!Array.isArray(c)) continue;
    for (const part of c) {
      const url = (part as { image_url?: { url?: unknown } })?.image_url?.url;
      if (typeof url === 'string') {
        const info = dataUrlImage(url);
        out.push(info ?? { format: 'url', width: 0, height: 0, bytes: url.length });
      }
    }
  }
  return out;
}

/** Where a spec's prompt texts sit (their lengths are tokens, kept in `messageTokens`). */
function tokenizedPaths(spec: LlmSpec): RegExp {
  if (spec.prompt === 'messages') return /^messages\[\d+\]\.content(?:\[\d+\]\.(?:text|image_url\.url))?$/;
  return new RegExp(`^${spec.prompt}(?:\\[\\d+\\])?$`);
}

/** The value at `a` or `a.b` of a body. */
function at(body: Record<string, unknown>, path: string): unknown {
  const dot = path.indexOf('.');
  if (dot < 0) return body[path];
  const parent = body[path.slice(0, dot)];
  return parent && typeof parent === 'object' ? (parent as Record<string, unknown>)[path.slice(dot + 1)] : undefined;
}

/** The nested parameters of a spec as `keep` predicates: numbers, booleans and null at exactly those paths. */
function nestedKeep(spec: LlmSpec): Map<string, (v: unknown, path: string) => boolean> {
  const keep = new Map<string, (v: unknown, path: string) => boolean>(spec.schema ?? []);
  for (const p of spec.nestedParams ?? []) {
    const key = p.slice(p.lastIndexOf('.') + 1);
    const prev = keep.get(key);
    keep.set(key, (v, path) => prev?.(v, path) || (path === p && (typeof v === 'number' || typeof v === 'boolean') && keptParamValue(key, v) === v));
  }
  return keep;
}

/**
 * Describes an LLM request of a spec: the JSON skeleton (prompt strings as token counts), prompt tokens per message,
 * keyed prompt and prefix fingerprints, chat images, model, output limit and whether it streams.
 */
export function extractLlm(spec: LlmSpec, ctx: ExtractContext, more?: (body: Record<string, unknown>, d: RequestDescription) => void): RequestDescription | null {
  const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
  const body = parsed as Record<string, unknown>;
  const d = describeJsonBody(spec.protocol, ctx, body, { tokenizedPaths: tokenizedPaths(spec), keep: nestedKeep(spec), params: ctx.policy.params, layout: LLM_LAYOUT });
  const ids: number[] = [];
  const messageTokens = promptTexts(spec, body).map((t) => {
    if (Array.isArray(t)) return t.length; // already token ids
    if (!ctx.fingerprinter) return countTokens(t);
    const enc = encodeTokens(t);
    for (const x of enc) ids.push(x);
    return enc.length;
  });
  d.features.messageTokens = messageTokens;
  if (ctx.fingerprinter && ids.length > 0) {
    d.features.promptFingerprint = ctx.fingerprinter.prompt(ids);
    if (spec.prefixes !== false) {
      d.features.prefixFingerprints = ctx.fingerprinter.prefixBlocks(ids);
      d.features.prefixBlockTokens = ctx.fingerprinter.blockTokens;
    }
    if (ctx.messagePrefixes && spec.prompt === 'messages' && ids.length === messageTokens.reduce((a, b) => a + b, 0)) d.messagePrefixes = ctx.fingerprinter.messagePrefixes(ids, messageTokens);
  }
  if (spec.prompt === 'messages') {
    const images = chatImages(body);
    if (images.length > 0) d.features.images = images;
  }
  d.promptTokens = messageTokens.reduce((a, b) => a + b, 0);
  d.messageCount = messageTokens.length;
  // The `model` and `max_tokens` columns follow the policy's kept parameters, like `params` (record --policy dropParams).
  // The model as the trace keeps it (public base readable, the rest a token; anonymize/model-id.ts).
  d.model = typeof d.params.model === 'string' ? d.params.model : null;
  const limitKey = spec.maxTokens.find((k) => at(body, k) !== undefined);
  const limit = limitKey !== undefined ? at(body, limitKey) : undefined;
  const keptLimit = limitKey !== undefined && (limitKey.includes('.') || ctx.policy.params.has(limitKey));
  // Within the limit's domain only, as in `params` (a ten-digit `max_tokens` is somebody's number, not a limit).
  const limitValue = typeof limit === 'number' && keptLimit ? keptParamValue(limitKey!.slice(limitKey!.lastIndexOf('.') + 1), limit) : undefined;
  d.maxTokens = typeof limitValue === 'number' ? limitValue : null;
  d.wantsStream = spec.streamsByDefault ? body.stream !== false : body.stream === true;
  more?.(body, d);
  return d;
}

/**
 * A named child of a shared stream, made once per parent: children are derived from the parent's seed and name only,
 * and the prefix stream is only ever asked for children of its own, so one object serves every request.
 */
const sharedChildren = new WeakMap<Rng, Map<string, Rng>>();
function sharedChild(parent: Rng, name: string): Rng {
  let m = sharedChildren.get(parent);
  if (!m) sharedChildren.set(parent, (m = new Map()));
  let c = m.get(name);
  if (!c) m.set(name, (c = parent.child(name)));
  return c;
}

/** The stream of the tokens past a prompt's shared blocks: keyed by its fingerprint (a repeated prompt repeats), else its own. */
function tailRng(features: Features, rngs: SynthRngs): Rng {
  const fp = features.promptFingerprint;
  return fp ? rngs.shared.child(`prompt:${fp}`) : rngs.rng.child('prompt');
}

/**
 * The prompt text of a request as its messages are cut from it: every prompt token in order, the leading blocks
 * following the recorded prefix keys (`synth/text.ts` PromptText). A follow-up turn's lead (`synth/history.ts`)
 * rebuilds its session's first turn with this.
 */
export function promptTextOf(features: Features, rngs: SynthRngs): PromptText {
  const total = (features.messageTokens ?? []).reduce((a, b) => a + b, 0);
  const keys = features.prefixFingerprints ?? features.prefixBlocks ?? [];
  return new PromptText(total, keys, features.prefixBlockTokens ?? 64, sharedChild(rngs.shared, 'prefix'), tailRng(features, rngs), rngs.blocks, Boolean(features.promptFingerprint));
}

/**
 * Strings for the JSON synthesizer: each message / prompt / input gets text of its recorded token count, cut from one
 * prompt-long token sequence whose leading blocks follow the recorded prefix fingerprints (or Mooncake block ids), so
 * equal prefixes replay as equal text; an exactly repeated prompt (same fingerprint) replays as the same text.
 * Chat image URLs become data URLs of seeded images of the recorded format and dimensions.
 */
export function promptStringAt(spec: Pick<LlmSpec, 'prompt'>, features: Features, rngs: SynthRngs, raw: RawStrings): (path: string, length: number) => string | undefined {
  const tokens = features.messageTokens ?? [];
  const total = tokens.reduce((a, b) => a + b, 0);
  let text: TokenText | null = null;
  const starts: number[] = [];
  tokens.reduce((a, b, i) => ((starts[i] = a), a + b), 0);
  const prompt = (): TokenText => (text ??= rngs.lead ? rngs.lead.text(total, tailRng(features, rngs), rngs.blocks) : promptTextOf(features, rngs));
  const textOf = (i: number) => raw.add(prompt().slice(starts[i]!, starts[i]! + tokens[i]!));
  const partsSeen = new Map<number, number>();
  let imageIndex = 0;
  let imageRng: Rng | null = null; // made on first use: a seeded stream costs microseconds to create
  const promptPath = spec.prompt === 'messages' ? null : new RegExp(`^${spec.prompt}(?:\\[(\\d+)\\])?$`);
  return (path) => {
    let m: RegExpExecArray | null;
    if (promptPath) {
      if (!(m = promptPath.exec(path))) return undefined;
      const i = m[1] === undefined ? 0 : Number(m[1]);
      return tokens[i] === undefined ? undefined : textOf(i);
    }
    if ((m = /^messages\[(\d+)\]\.content\[\d+\]\.image_url\.url$/.exec(path))) {
      const info = features.images?.[imageIndex++];
      if (!info || info.format === 'url') return undefined;
      const img = synthesizeImage(info, (imageRng ??= rngs.rng.child('images')));
      return `data:${img.mime};base64,${img.bytes.toString('base64')}`;
    }
    if ((m = /^messages\[(\d+)\]\.content(?:\[(\d+)\]\.text)?$/.exec(path))) {
      const i = Number(m[1]);
      if (m[2] !== undefined) {
        // Multi-part content: the message's tokens go to its first text part.
        const seen = partsSeen.get(i) ?? 0;
        partsSeen.set(i, seen + 1);
        if (seen > 0) return '';
      }
      return tokens[i] === undefined ? undefined : textOf(i);
    }
    return undefined;
  };
}

/** Sets `a` or `a.b` of a body (making `a` when it is missing). */
function setAt(body: Record<string, unknown>, path: string, value: unknown): void {
  const dot = path.indexOf('.');
  if (dot < 0) {
    body[path] = value;
    return;
  }
  const key = path.slice(0, dot);
  const parent = body[key] && typeof body[key] === 'object' && !Array.isArray(body[key]) ? (body[key] as Record<string, unknown>) : (body[key] = {}) as Record<string, unknown>;
  parent[path.slice(dot + 1)] = value;
}

/**
 * Rebuilds an LLM request of a spec: prompt text of the recorded token counts, and (unless `outputLength` is
 * `as-sent`) the output limit set to the recorded output length — the trace's limit was the client's, the output the
 * real length. `forceOutputLength` also sends vLLM's `min_tokens` and `ignore_eos` (OpenAI bodies only).
 */
export function synthesizeLlm(spec: LlmSpec, r: TraceRecord, rngs: SynthRngs, opts: SynthOptions = {}, extraStringAt?: (path: string) => string | undefined): SynthesizedRequest {
  const raw = new RawStrings();
  const prompt = promptStringAt(spec, r.features, rngs, raw);
  const value = synthesizeJsonBody(r, rngs, extraStringAt ? (path, length) => extraStringAt(path) ?? prompt(path, length) : prompt);
  // An answer that was cut (the client gave up, the stream broke) did not have its length: ask for the client's own limit.
  const cut = r.errorKind === 'client_aborted' || r.errorKind === 'stream_truncated' || r.errorKind === 'proxy_shutdown';
  if (spec.generative !== false && opts.outputLength !== 'as-sent' && !cut && r.outputTokens !== null && value && typeof value === 'object') {
    const v = value as Record<string, unknown>;
    const n = Math.max(1, r.outputTokens);
    setAt(v, spec.maxTokens.find((k) => at(v, k) !== undefined) ?? spec.maxTokensDefault ?? spec.maxTokens[0]!, n);
    if (opts.forceOutputLength && spec.protocol.startsWith('openai')) {
      v.min_tokens = n;
      v.ignore_eos = true;
    }
  }
  return jsonRequest(r, rngs, value, raw);
}
