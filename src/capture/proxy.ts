import type { Readable } from 'node:stream';
import { METHODS, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply, type FastifyRequest } from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { TracewarpError } from '../errors.ts';
import { httpUrl } from '../address.ts';
import { upstreamErrorKind } from '../error-kinds.ts';
import { DEFAULT_POLICY, type CompiledPolicy } from '../anonymize/policy.ts';
import type { WriterHealthEvent } from '../trace/writer.ts';
import type { SessionKeySpec } from '../sessions/keys.ts';
import type { ProtocolId, TraceRecord } from '../types.ts';
import { monoUs, wallUs } from '../units.ts';
import { CancellablePool, EXCHANGE_HEADER } from './cancellable-pool.ts';
import { Exchange } from './exchange.ts';
import { Recorder, type RecorderStats, type RecorderTraceOptions } from './recorder.ts';
import { stripHopByHop, upstreamFailureAnswer, withTraceContext } from './http.ts';
import { WebSocketRelay } from './websocket.ts';

/** Options of the recording proxy. Timeouts are in ms. */
export interface RecordingProxyOptions {
  /** Upstream base URL, e.g. `http://127.0.0.1:8000`. */
  upstream: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** The trace file the recorder thread writes; none when omitted. */
  trace?: Omit<RecorderTraceOptions, 'anchorWallUs'>;
  /** Receives each finished exchange's anonymized record, in this thread (tests, library use). Must not throw. */
  onRecord?: (record: TraceRecord) => void;
  /** Told when writing the trace fails, resumes, or the file had to be made again. */
  onRecorderHealth?: (event: WriterHealthEvent) => void;
  /** Also store raw requests (URL, headers, body) in the trace. Off by default; only `record --capture-raw` turns it on. */
  captureRaw?: boolean;
  /** Key and block size of keyed prompt fingerprints (whole prompt and prefix blocks); none when null. */
  fingerprint?: { key: Uint8Array; blockTokens: number } | null;
  /** Describe every request with this protocol adapter instead of detecting one. */
  protocol?: ProtocolId;
  /**
   * Explicit session keys (`record --session-key`), first match wins; without one, sessions are inferred from message
   * prefixes (`sessions/infer.ts`). Set `inferSessions: false` to record every request on its own.
   */
  sessionKeys?: SessionKeySpec[];
  inferSessions?: boolean;
  /** The anonymization policy (compiled once). Default: the built-in one. */
  policy?: CompiledPolicy;
  /** Request/response bytes kept in memory per exchange to describe the body. Default 16 MiB. */
  maxCaptureBytes?: number;
  /** Time allowed for the upstream's response headers. Default 600,000 ms (non-streamed LLM answers can be slow). */
  headersTimeoutMs?: number;
  /** Longest silence allowed between two chunks of an answer; never a cap on total duration. Default 300,000 ms. */
  idleTimeoutMs?: number;
  /** Upstream connections kept open. Default 512. */
  connections?: number;
  /** Bytes of finished exchanges that may wait for the recorder thread. Default 256 MiB. */
  maxRecordQueueBytes?: number;
}

/** A running recording proxy. */
export interface RecordingProxy {
  /** `http://HOST:PORT` it listens on. */
  readonly url: string;
  /** Monotonic µs of the trace's offset 0 and the matching wall clock (µs since epoch). */
  readonly startUs: number;
  readonly startWallUs: number;
  /** Exchanges in flight now. */
  inFlight(): number;
  /** The recorder thread: what it did so far, and `stall(ms)` to block it (fault injection). */
  readonly recorder: Pick<Recorder, 'stats' | 'stall'>;
  /**
   * Stops accepting, lets in-flight exchanges finish for up to `graceMs` (default 10,000), then cuts the rest (they
   * are recorded with error kind `proxy_shutdown`). Every exchange that started is recorded (or counted as dropped)
   * and handed to `onRecord`, and the trace file is closed, before this resolves. `cut` ends the grace period early
   * (a second Ctrl-C).
   */
  close(graceMs?: number, cut?: AbortSignal): Promise<RecorderStats>;
}

declare module 'fastify' {
  interface FastifyRequest {
    tw: Exchange | null;
    /** The client's own `content-type`, while Fastify parses the body under a stand-in (see the onRequest hook). */
    twContentType?: string;
  }
}

/**
 * Starts the recording reverse proxy (fastify 5 + @fastify/http-proxy). Every method and path is forwarded with its
 * bytes unchanged both ways; answers stream through chunk by chunk. This loop only forwards and taps (bytes and
 * timestamps): each finished exchange goes to the recorder thread, which describes it and writes the trace; when it
 * falls behind, exchanges go unrecorded and counted, never slowed (DESIGN decisions 2 and 6).
 * @throws TracewarpError `TW_LISTEN` when the address cannot be bound; the recorder's errors (`TW_USAGE` for an
 *   existing trace file).
 */
export async function startRecordingProxy(opts: RecordingProxyOptions): Promise<RecordingProxy> {
  const maxCapture = opts.maxCaptureBytes ?? 16 * 1024 * 1024;
  const startUs = monoUs();
  const startWallUs = wallUs();
  const policy = opts.policy ?? DEFAULT_POLICY;
  const recorder = await Recorder.start({
    trace: opts.trace ? { ...opts.trace, anchorWallUs: startWallUs } : null,
    describe: { startUs, fingerprint: opts.fingerprint ?? null, protocol: opts.protocol, policy: policy.spec, sessionKeys: opts.sessionKeys ?? [], inferSessions: opts.inferSessions !== false },
    captureRaw: Boolean(opts.captureRaw),
    wantRecords: Boolean(opts.onRecord),
  }, { onRecord: opts.onRecord, onHealth: opts.onRecorderHealth, maxQueueBytes: opts.maxRecordQueueBytes });
  let seq = 0;
  const open = new Set<Exchange>();
  let closing = false;
  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: Number.MAX_SAFE_INTEGER,
    forceCloseConnections: 'idle',
    requestTimeout: 0,
    return503OnClosing: true,
    routerOptions: { ignoreDuplicateSlashes: false, maxParamLength: 10_000 },
  });
  app.decorateRequest('tw', null);
  // Every method Node's parser knows is forwarded (WebDAV's PROPFIND, PURGE, QUERY, …), with its body; CONNECT is
  // not a request to forward.
  const methods = METHODS.filter((m) => m !== 'CONNECT');
  for (const m of methods) if (!app.supportedMethods.includes(m)) app.addHttpMethod(m, { hasBody: true });

  /** A new exchange, numbered in arrival order and in flight until its record is handed over. */
  const begin = (method: string, url: string, headers: IncomingHttpHeaders): Exchange => {
    // While the recorder's queue is full the exchange will not be recorded: do not even copy its bodies.
    const ex = new Exchange(++seq, method, url, headers, maxCapture, recorder.accepting());
    open.add(ex);
    return ex;
  };
  /** Hands an ended exchange to the recorder thread (once, even if an end event comes after a forced one). */
  const recording = new WeakSet<Exchange>();
  const record = (ex: Exchange): void => {
    if (recording.has(ex)) return;
    recording.add(ex);
    open.delete(ex);
    if (ex.recorded) recorder.submit(ex.snapshot());
    else recorder.countDropped();
  };
  const finish = (ex: Exchange, reply: FastifyReply): void => {
    if (!open.has(ex)) return;
    ex.endUs = monoUs();
    // Answers the proxy made itself (502/504) have a status but no upstream response.
    if (ex.status === null && reply.raw.headersSent) ex.status = reply.raw.statusCode;
    if (!reply.raw.writableFinished) ex.fail(closing ? 'proxy_shutdown' : 'client_aborted');
    record(ex);
  };

  // WebSocket upgrades bypass fastify's routing: the relay completes the upstream's handshake, then the client's.
  const websockets = new WebSocketRelay({
    upstream: opts.upstream,
    handshakeTimeoutMs: opts.headersTimeoutMs ?? 600_000,
    begin: (req) => begin(req.method ?? 'GET', req.url ?? '/', req.headers),
    end: (ex) => record(ex),
  });
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => websockets.handle(req, socket, head));

  const pool = new CancellablePool(opts.upstream, {
    connections: opts.connections ?? 512,
    pipelining: 1,
    headersTimeout: opts.headersTimeoutMs ?? 600_000,
    bodyTimeout: opts.idleTimeoutMs ?? 300_000,
    // undici's default is 16 KiB; servers send more (long Set-Cookie or Link lists) and must still pass.
    maxHeaderSize: 1024 * 1024,
  });

  app.addHook('onRequest', (request, reply, done) => {
    const ex = begin(request.method, request.raw.url ?? '/', request.headers);
    request.tw = ex;
    // Fastify answers 415 itself to a content type it cannot parse (`application/json, <e-mail>`), before any parser of
    // ours runs; the body is only piped anyway, so it is parsed under a stand-in and the client's header is put back
    // before it is forwarded and recorded.
    const ct = request.raw.headers['content-type'];
    if (ct !== undefined) {
      request.twContentType = ct;
      request.raw.headers['content-type'] = 'application/octet-stream';
    }
    reply.raw.once('close', () => {
      restoreContentType(request);
      // The client left before the upstream answered: cancel the upstream request now, not when it answers.
      if (ex.status === null) pool.cancel(String(ex.seq));
      finish(ex, reply);
    });
    done();
  });

  await app.register(async (scope) => {
    // Our own body parsers: the raw stream goes upstream through a counting tap, so the bytes are never re-encoded.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (request: FastifyRequest, payload: Readable, done: (err: Error | null, body?: unknown) => void) => {
      // Plain pipe, not stream.pipeline: pipeline allocates an AbortController and a DOMException per call, which
      // cost about a third of the proxy's CPU per request (bench/proxy-overhead.ts).
      const tap = request.tw!.requestTap();
      payload.once('error', (err) => tap.destroy(err));
      payload.pipe(tap);
      done(null, tap);
    });
    await scope.register(httpProxy as unknown as FastifyPluginAsync<Record<string, unknown>>, {
      upstream: opts.upstream,
      proxyPayloads: false,
      httpMethods: methods,
      undici: pool,
      disableRequestLogging: true,
      // Forward the raw path and query byte for byte (http-proxy would re-serialize the query).
      handler: (request: FastifyRequest, reply: FastifyReply, _dest: string, options: object) => reply.from(request.raw.url, options),
      replyOptions: {
        retryDelay: () => null,
        rewriteRequestHeaders: (request: FastifyRequest, headers: IncomingHttpHeaders) => {
          const clientType = request.twContentType;
          restoreContentType(request);
          const out: IncomingHttpHeaders = { ...stripHopByHop(headers), [EXCHANGE_HEADER]: String(request.tw!.seq) };
          if (clientType !== undefined) out['content-type'] = clientType;
          // `Expect: 100-continue` is answered by this server (Node sends the 100 itself) and not sent on, as nginx
          // does: the body is already on its way, and undici refuses the header.
          delete out.expect;
          return withTraceContext(request.tw!, out);
        },
        rewriteHeaders: (headers: IncomingHttpHeaders) => stripHopByHop(headers),
        onResponse: (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; headers: IncomingHttpHeaders; stream: Readable }) => {
          const ex = request.tw!;
          const tap = ex.responseTap(res.statusCode, res.headers);
          const upstream = res.stream;
          upstream.once('error', (err) => {
            ex.fail(upstreamErrorKind(err));
            tap.destroy(err);
          });
          // The client went away (fastify destroys the tap): cancel the upstream request at once.
          tap.once('close', () => {
            if (!upstream.readableEnded) upstream.destroy();
          });
          upstream.pipe(tap);
          reply.send(tap);
        },
        onError: (reply: FastifyReply, { error }: { error: Error & { cause?: unknown } }) => {
          const ex = reply.request.tw!;
          const kind = upstreamErrorKind(error);
          ex.fail(kind);
          const answer = upstreamFailureAnswer(kind);
          reply.code(answer.status).header('content-type', 'application/json').send(answer.body);
        },
      },
    });
  });

  let address: string;
  try {
    address = await app.listen({ host: opts.host ?? '127.0.0.1', port: opts.port ?? 0 });
  } catch (err) {
    await recorder.close();
    throw new TracewarpError('TW_LISTEN', `cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}: ${(err as Error).message}`, { cause: err });
  }
  const url = httpUrl(app.server.address(), address);
  let shutdown: Promise<RecorderStats> | null = null;

  return {
    url,
    startUs,
    startWallUs,
    inFlight: () => open.size,
    recorder,
    close(graceMs = 10_000, cut?: AbortSignal) {
      shutdown ??= closeProxy(graceMs, cut);
      return shutdown;
    },
  };

  async function closeProxy(graceMs: number, cut?: AbortSignal): Promise<RecorderStats> {
    closing = true;
    // WebSocket sessions can last for hours: they are closed with 1001 (going away) at once, not waited for.
    websockets.closeAll();
    const closed = app.close();
    const deadline = Date.now() + graceMs;
    while (open.size > 0 && Date.now() < deadline && !cut?.aborted) await new Promise((r) => setTimeout(r, 20));
    // Keep-alive connections that went idle after close() began are not closed by fastify: close them (and cut any
    // exchange still running past the grace period), and WebSocket peers that ignored the close frame.
    app.server.closeAllConnections();
    websockets.terminateAll();
    await closed;
    // Every exchange ends in a record. One that still has not ended 2 s after the cut (a path that lost its end
    // event) is recorded as it stands, as proxy_shutdown, rather than holding the shutdown forever.
    const last = Date.now() + 2000;
    while (open.size > 0 && Date.now() < last) await new Promise((r) => setTimeout(r, 5));
    for (const ex of [...open]) {
      ex.endUs ??= monoUs();
      ex.fail('proxy_shutdown');
      record(ex);
    }
    return recorder.close();
  }
}

/** Puts the client's own `content-type` back (once): it is forwarded and recorded as the client sent it. */
function restoreContentType(request: FastifyRequest): void {
  if (request.twContentType === undefined) return;
  request.raw.headers['content-type'] = request.twContentType;
  request.twContentType = undefined;
}
