import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { httpUrl } from '../address.ts';
import { TracewarpError } from '../errors.ts';
import { createRng } from '../rng.ts';
import { countTokens, decodeTokens, encodeTokens, wordTokenIds } from '../tokens.ts';
import { blockHashes, DEFAULT_PREFIX_CACHE_TOKENS, PrefixCache } from './prefix-cache.ts';
import { DEFAULT_TIMING, Engine, type EngineTiming, type Sequence } from './engine.ts';
import { handleKserve } from './kserve.ts';
import { DEFAULT_KV_CACHE_TOKENS, simMetrics } from './metrics.ts';

/** Options of `tracewarp sim`. */
export interface SimOptions extends Partial<EngineTiming> {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Seeds generated text and default output lengths. Default 1. */
  seed?: number;
  /** Model id served. Default `tracewarp-sim`. */
  model?: string;
  /** Output tokens when a request gives no `max_tokens`: uniform in [min, max]. Default [16, 256]. */
  defaultOutputTokens?: [number, number];
  /** Context window: prompt + max_tokens above it is refused with 400, as vLLM does. Default 131,072. */
  maxModelLen?: number;
  /**
   * A bounded KV cache, tokens: admission waits for room and overflow preempts (see `sim/engine.ts`). Default none
   * (unbounded; `vllm:kv_cache_usage_perc` is then figured against 262,144 tokens).
   */
  kvCacheTokens?: number;
  /** Model load before the first answer, ms: requests queue meanwhile. Default 0. */
  modelLoadMs?: number;
  /**
   * Prefix (KV) cache capacity, tokens (`sim/prefix-cache.ts`: 16-token blocks, LRU): a prompt's cached prefix costs
   * no prefill. Default {@link DEFAULT_PREFIX_CACHE_TOKENS}; 0 turns it off.
   */
  prefixCacheTokens?: number;
}

/** A running simulator. */
export interface SimServer {
  readonly url: string;
  readonly timing: EngineTiming;
  /** Prefix cache capacity, tokens (0: off). */
  readonly prefixCacheTokens: number;
  /** Requests answered so far, by route. */
  readonly served: Record<string, number>;
  close(): Promise<void>;
}

interface ChatBody {
  model?: unknown; messages?: unknown; prompt?: unknown; max_tokens?: unknown; max_completion_tokens?: unknown;
  min_tokens?: unknown; stream?: unknown; stream_options?: { include_usage?: unknown } | null; n?: unknown;
}

/** The prompt's texts, one per message / prompt; null when the body has none. Counted per text and summed. */
function promptTexts(kind: 'chat' | 'completions', body: ChatBody): string[] | null {
  if (kind === 'chat') {
    if (!Array.isArray(body.messages)) return null;
    return body.messages.map((m) => {
      const c = (m as { content?: unknown })?.content;
      if (typeof c === 'string') return c;
      if (Array.isArray(c)) return c.map((p) => (typeof p?.text === 'string' ? p.text : '')).join('');
      return '';
    });
  }
  if (typeof body.prompt === 'string') return [body.prompt];
  if (Array.isArray(body.prompt)) return body.prompt.map((p) => (typeof p === 'string' ? p : ''));
  return null;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function openaiError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, { error: { message, type: 'invalid_request_error', code: null } });
}

/**
 * Starts the bundled OpenAI-compatible LLM server simulator: `POST /v1/chat/completions`, `POST /v1/completions`
 * (JSON, or SSE with `"stream": true` ending in `data: [DONE]`, a final chunk with `usage`), `POST /v1/embeddings`
 * (64-dimensional seeded vectors after a prefill-like delay), `GET /v1/models`, `GET /health`, `GET /metrics`
 * (Prometheus text with vLLM's metric names, `metrics.ts`), and a KServe v2
 * endpoint running a real ONNX model (`/v2/models/ocr-det/infer`, see `kserve.ts`). Latency comes from the continuous-batching {@link Engine}; output length is `max_tokens` when given.
 * Prompt tokens are counted with the project tokenizer.
 * @throws TracewarpError `TW_LISTEN` when the address cannot be bound.
 */
export async function startSim(opts: SimOptions = {}): Promise<SimServer> {
  const timing: EngineTiming = {
    prefillUsPerToken: opts.prefillUsPerToken ?? DEFAULT_TIMING.prefillUsPerToken,
    decodeStepMs: opts.decodeStepMs ?? DEFAULT_TIMING.decodeStepMs,
    perSeqStepMs: opts.perSeqStepMs ?? DEFAULT_TIMING.perSeqStepMs,
    maxBatch: opts.maxBatch ?? DEFAULT_TIMING.maxBatch,
    kvCacheTokens: opts.kvCacheTokens ?? DEFAULT_TIMING.kvCacheTokens,
    modelLoadMs: opts.modelLoadMs ?? DEFAULT_TIMING.modelLoadMs,
  };
  const engine = new Engine(timing);
  const model = opts.model ?? 'tracewarp-sim';
  const prefixCache = new PrefixCache(opts.prefixCacheTokens ?? DEFAULT_PREFIX_CACHE_TOKENS);
  const metrics = simMetrics(engine, model, opts.kvCacheTokens || DEFAULT_KV_CACHE_TOKENS, prefixCache);
  const [minOut, maxOut] = opts.defaultOutputTokens ?? [16, 256];
  const maxModelLen = opts.maxModelLen ?? 131_072;
  const rng = createRng(opts.seed ?? 1).child('sim');
  const lengths = rng.child('lengths');
  const words = wordTokenIds();
  const served: Record<string, number> = {};
  let nextId = 0;

  const handleGeneration = (kind: 'chat' | 'completions', req: IncomingMessage, res: ServerResponse, raw: Buffer): void => {
    let body: ChatBody;
    try {
      body = JSON.parse(raw.toString('utf8')) as ChatBody;
      if (!body || typeof body !== 'object') throw new Error('not an object');
    } catch {
      openaiError(res, 400, 'request body is not valid JSON');
      return;
    }
    const prompt = promptTexts(kind, body);
    if (prompt === null) {
      openaiError(res, 400, kind === 'chat' ? "'messages' must be an array" : "'prompt' must be a string or array");
      return;
    }
    const maxTokens = typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : typeof body.max_tokens === 'number' ? body.max_tokens : null;
    if (maxTokens !== null && (!Number.isInteger(maxTokens) || maxTokens < 1)) {
      openaiError(res, 400, 'max_tokens must be a positive integer');
      return;
    }
    const target = maxTokens ?? minOut + lengths.int(maxOut - minOut + 1);
    const ids = prompt.flatMap((t) => encodeTokens(t));
    const promptTokens = ids.length;
    if (promptTokens + target > maxModelLen) {
      // As vLLM does: a request that cannot fit the context window is refused, not run for hours.
      openaiError(res, 400, `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptTokens + target} tokens (${promptTokens} in the messages, ${target} in the completion).`);
      return;
    }
    const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-sim${++nextId}`;
    const created = Math.floor(Date.now() / 1000);
    const modelName = typeof body.model === 'string' ? body.model : model;
    const stream = body.stream === true;
    const textRng = rng.child(`text:${nextId}`);
    const object = kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    const pieces: string[] = [];
    const usage = () => ({ prompt_tokens: promptTokens, completion_tokens: pieces.length, total_tokens: promptTokens + pieces.length });
    const write = (v: unknown) => res.write(`data: ${JSON.stringify(v)}\n\n`);
    const choice = (delta: Record<string, unknown> | string, finish: string | null) =>
      kind === 'chat' ? { index: 0, delta, logprobs: null, finish_reason: finish } : { index: 0, text: delta, logprobs: null, finish_reason: finish };

    const arrivedAt = performance.now();
    let startedAt = arrivedAt;
    const seq: Sequence = {
      promptTokens,
      targetTokens: target,
      generated: 0,
      onStart: () => {
        startedAt = performance.now();
        // Looked up when admitted, as vLLM's scheduler does: what an earlier request left cached is free now.
        seq.cachedTokens = prefixCache.lookup(promptTokens, blockHashes(ids));
        if (!stream) return;
        // Headers go out when the request gets a batch slot, carrying how long it queued (Server-Timing, ms).
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'server-timing': `queue;dur=${(startedAt - arrivedAt).toFixed(2)}` });
        res.flushHeaders();
        if (kind === 'chat') write({ id, object, created, model: modelName, choices: [choice({ role: 'assistant', content: '' }, null)] });
      },
      onToken: () => {
        const piece = decodeTokens([words[textRng.int(words.length)]!]);
        pieces.push(piece);
        if (stream) write({ id, object, created, model: modelName, choices: [choice(kind === 'chat' ? { content: piece } : piece, null)] });
      },
      onDone: () => {
        served[req.url ?? ''] = (served[req.url ?? ''] ?? 0) + 1;
        const finish = maxTokens !== null ? 'length' : 'stop';
        if (stream) {
          write({ id, object, created, model: modelName, choices: [choice(kind === 'chat' ? {} : '', finish)] });
          write({ id, object, created, model: modelName, choices: [], usage: usage() });
          res.end('data: [DONE]\n\n');
          return;
        }
        const text = pieces.join('');
        res.setHeader('server-timing', `queue;dur=${(startedAt - arrivedAt).toFixed(2)}, engine;dur=${(performance.now() - startedAt).toFixed(2)}`);
        sendJson(res, 200, {
          id, object: kind === 'chat' ? 'chat.completion' : 'text_completion', created, model: modelName,
          choices: [kind === 'chat' ? { index: 0, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish } : { index: 0, text, logprobs: null, finish_reason: finish }],
          usage: usage(),
        });
      },
    };
    res.on('close', () => {
      if (!res.writableFinished) engine.cancel(seq);
    });
    engine.submit(seq);
  };

  const handleEmbeddings = (res: ServerResponse, raw: Buffer): void => {
    let body: { input?: unknown; model?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8'));
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
    } catch {
      return openaiError(res, 400, 'request body must be a JSON object');
    }
    const inputs = typeof body.input === 'string' ? [body.input] : Array.isArray(body.input) ? (body.input.every((x) => typeof x === 'number') ? [body.input] : body.input) : null;
    if (!inputs || inputs.length === 0) return openaiError(res, 400, "'input' must be a string, an array of strings, or token arrays");
    const tokens = inputs.map((x) => (typeof x === 'string' ? countTokens(x) : Array.isArray(x) ? x.length : 0));
    const total = tokens.reduce((a, b) => a + b, 0);
    // One forward pass over all inputs: cost like a prefill.
    setTimeout(() => {
      const vecRng = rng.child(`emb:${++nextId}`);
      sendJson(res, 200, {
        object: 'list', model: typeof body.model === 'string' ? body.model : model,
        data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: Array.from({ length: 64 }, () => Math.round((vecRng.next() * 2 - 1) * 1e4) / 1e4) })),
        usage: { prompt_tokens: total, total_tokens: total },
      });
    }, (total * timing.prefillUsPerToken) / 1000);
  };

  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      route().catch((err: unknown) => {
        // A request the handlers did not foresee must never take the server down.
        if (!res.headersSent) openaiError(res, 500, `sim: ${(err as Error)?.message ?? String(err)}`);
        else res.destroy();
      });
    });
    const route = async (): Promise<void> => {
      if (path.startsWith('/v2')) {
        if (await handleKserve(req, res, path, Buffer.concat(chunks))) return;
      }
      if (req.method === 'POST' && /\/embeddings$/.test(path)) return handleEmbeddings(res, Buffer.concat(chunks));
      if (req.method === 'GET' && path === '/health') return sendJson(res, 200, { status: 'ok', ...engine.load() });
      if (req.method === 'GET' && path === '/metrics') {
        const text = await metrics.text();
        res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      if (req.method === 'GET' && path === '/v1/models') {
        return sendJson(res, 200, { object: 'list', data: [{ id: model, object: 'model', created: 0, owned_by: 'tracewarp' }] });
      }
      if (req.method === 'POST' && path === '/v1/chat/completions') return handleGeneration('chat', req, res, Buffer.concat(chunks));
      if (req.method === 'POST' && path === '/v1/completions') return handleGeneration('completions', req, res, Buffer.concat(chunks));
      openaiError(res, 404, `no route ${req.method} ${path}`);
    };
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new TracewarpError('TW_LISTEN', `cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`, { cause: err })));
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const url = httpUrl(server.address());
  return {
    url,
    timing,
    served,
    prefixCacheTokens: opts.prefixCacheTokens ?? DEFAULT_PREFIX_CACHE_TOKENS,
    close: () => new Promise<void>((resolve) => {
      engine.stop();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
