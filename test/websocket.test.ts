import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { startRecordingProxy, type RecordingProxy } from '../src/capture/proxy.ts';
import { inspectTrace } from '../src/cli/inspect.ts';
import { startRecord } from '../src/cli/record.ts';
import { runPlan } from '../src/cli/plan.ts';
import { TraceReader } from '../src/trace/reader.ts';
import type { TraceRecord } from '../src/types.ts';
import { captureOutput, tempDir, waitFor } from './helpers.ts';
import { findPlanted, readAll, traceFiles } from './pii-scan.ts';

/** A WebSocket upstream on port 0 that the test controls (shared/cases 12). */
async function startWsUpstream(opts: { refuse?: number; onConnection?: (ws: WebSocket, req: IncomingMessage) => void } = {}) {
  const server = createServer((_req, res) => res.writeHead(426).end());
  const seen: Array<{ headers: IncomingMessage['headers']; url: string }> = [];
  const wss = new WebSocketServer({
    server,
    handleProtocols: (offered) => (offered.has('v2') ? 'v2' : false),
    verifyClient: (info, cb) => (opts.refuse ? cb(false, opts.refuse, 'Refused', { 'x-why': 'test' }) : cb(true)),
  });
  wss.on('connection', (ws, req) => {
    seen.push({ headers: req.headers, url: req.url ?? '' });
    opts.onConnection?.(ws, req);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** Echoes each message back with its type, upper-cased when it is text. */
const echo = (ws: WebSocket) => ws.on('message', (data, isBinary) => ws.send(isBinary ? data : String(data).toUpperCase(), { binary: isBinary }));

type Message = { data: Buffer; isBinary: boolean };
/** Messages a client received, queued from the moment it connects (a server may speak first). */
const inbox = new WeakMap<WebSocket, { queue: Message[]; waiting: Array<(m: Message) => void> }>();

function open(url: string, opts: { protocols?: string[]; headers?: Record<string, string> } = {}): Promise<WebSocket> {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/v1/realtime?model=m&session=ZQXsessionSECRET', opts.protocols ?? [], { headers: opts.headers });
  const box = { queue: [] as Message[], waiting: [] as Array<(m: Message) => void> };
  inbox.set(ws, box);
  ws.on('message', (data, isBinary) => {
    const m = { data: data as Buffer, isBinary };
    const w = box.waiting.shift();
    if (w) w(m);
    else box.queue.push(m);
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const nextMessage = (ws: WebSocket) => new Promise<Message>((r) => {
  const box = inbox.get(ws)!;
  const m = box.queue.shift();
  if (m) r(m);
  else box.waiting.push(r);
});

/** The HTTP answer that refused a client's upgrade (the client's handshake request is then dropped). */
const refusal = (ws: WebSocket) => new Promise<IncomingMessage>((resolve) => ws.once('unexpected-response', (req, res) => {
  res.resume();
  req.destroy();
  resolve(res);
}));
const closed = (ws: WebSocket) => new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: String(reason) })));

describe('WebSocket sessions through the recording proxy (shared/cases 12)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  async function proxyTo(upstream: string): Promise<{ proxy: RecordingProxy; records: TraceRecord[] }> {
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream, onRecord: (r) => records.push(r) });
    cleanups.push(async () => void (await proxy.close(500)));
    return { proxy, records };
  }

  it('relays text and binary messages both ways, the chosen subprotocol, headers and the close code; records counts, never data', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const upstreamSaw: Array<{ code: number; reason: string }> = [];
    const up = await startWsUpstream({ onConnection: (ws) => {
      ws.send('welcome');
      echo(ws);
      ws.on('close', (code, reason) => upstreamSaw.push({ code, reason: String(reason) }));
    } });
    cleanups.push(up.close);
    const trace = join(tmp.dir, 'ws.trace.db');
    const session = await startRecord({ upstream: up.url, host: '127.0.0.1', port: 0, out: trace }, captureOutput());
    let stopped = false;
    cleanups.push(async () => { if (!stopped) await session.stop(); });

    const ws = await open(session.proxy.url, { protocols: ['v1', 'v2'], headers: { authorization: 'Bearer ZQXtokenSECRET' } });
    expect(ws.protocol).toBe('v2');
    const welcome = await nextMessage(ws);
    expect({ text: String(welcome.data), isBinary: welcome.isBinary }).toEqual({ text: 'welcome', isBinary: false });
    ws.send('hello ZQXmessageSECRET');
    const text = await nextMessage(ws);
    expect({ text: String(text.data), isBinary: text.isBinary }).toEqual({ text: 'HELLO ZQXMESSAGESECRET', isBinary: false });
    const bytes = Buffer.from([0, 1, 2, 255, 254]);
    ws.send(bytes);
    const bin = await nextMessage(ws);
    expect(bin.isBinary).toBe(true);
    expect(Buffer.compare(bin.data, bytes)).toBe(0);
    // The upstream saw the client's own headers, the path and query as sent, and a traceparent the proxy added.
    expect(up.seen[0]!.headers.authorization).toBe('Bearer ZQXtokenSECRET');
    expect(up.seen[0]!.url).toBe('/v1/realtime?model=m&session=ZQXsessionSECRET');
    expect(up.seen[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const clientSaw = closed(ws);
    ws.close(4000, 'bye');
    expect(await clientSaw).toEqual({ code: 4000, reason: 'bye' });
    await waitFor(() => upstreamSaw.length === 1);
    expect(upstreamSaw).toEqual([{ code: 4000, reason: 'bye' }]);
    await session.stop();
    stopped = true;

    const reader = new TraceReader(trace);
    const recs = [...reader.records()];
    reader.close();
    expect(recs).toHaveLength(1);
    expect(recs[0]).toMatchObject({ method: 'GET', route: '/v1/realtime', protocol: 'websocket', status: 101, errorKind: null });
    expect(recs[0]!.features.websocket).toMatchObject({ messagesFromClient: 2, messagesFromServer: 3, bytesFromClient: 22 + 5, bytesFromServer: 7 + 22 + 5, closeCode: 4000, closedBy: 'client' });
    expect(recs[0]!.features.websocket!.firstServerMessageUs).toBeGreaterThan(0);
    expect(recs[0]!.latencyUs).toBeGreaterThan(recs[0]!.features.websocket!.firstServerMessageUs!);
    expect(findPlanted(['ZQXtokenSECRET', 'ZQXmessageSECRET', 'ZQXMESSAGESECRET', 'ZQXsessionSECRET'], readAll(traceFiles(trace)))).toEqual([]);
    const inspected = inspectTrace(trace);
    expect(inspected).toMatchObject({ requests: 1, webSocketSessions: 1, statuses: { '101': 1 } });
    expect(inspected.features.latencyMs).toBeUndefined(); // a session's duration is not an HTTP latency
    // Replay does not synthesize WebSocket sessions: plan leaves them out and says so.
    const out = captureOutput();
    expect(runPlan(trace, [], { seed: 1 }, out)).toMatchObject({ requests: 0, originalRequests: 0, webSocketSessionsSkipped: 1 });
    expect(out.stdout.join('\n')).toContain('1 WebSocket session(s) in the trace are left out');
  });

  it('passes the upstream\'s refusal of the upgrade to the client as its HTTP answer, and records it', async () => {
    const up = await startWsUpstream({ refuse: 401 });
    cleanups.push(up.close);
    const { proxy, records } = await proxyTo(up.url);
    const ws = new WebSocket(proxy.url.replace(/^http/, 'ws') + '/v1/realtime');
    const res = await refusal(ws);
    expect(res.statusCode).toBe(401);
    expect(res.headers['x-why']).toBe('test');
    await waitFor(() => records.length === 1);
    expect(records[0]).toMatchObject({ protocol: 'other', status: 401, errorKind: null });
  });

  it('passes a close the upstream starts on to the client, with its code; a dead upstream gives 502', async () => {
    const up = await startWsUpstream({ onConnection: (ws) => setTimeout(() => ws.close(1011, 'model crashed'), 50) });
    cleanups.push(up.close);
    const { proxy, records } = await proxyTo(up.url);
    const ws = await open(proxy.url);
    expect(await closed(ws)).toEqual({ code: 1011, reason: 'model crashed' });
    await waitFor(() => records.length === 1);
    expect(records[0]!.features.websocket).toMatchObject({ closeCode: 1011, closedBy: 'server', messagesFromServer: 0 });

    const { proxy: toNothing, records: refused } = await proxyTo('http://127.0.0.1:9');
    const dead = new WebSocket(toNothing.url.replace(/^http/, 'ws') + '/ws');
    const res = await refusal(dead);
    expect(res.statusCode).toBe(502);
    await waitFor(() => refused.length === 1);
    expect(refused[0]).toMatchObject({ status: 502, errorKind: 'upstream_refused' });
  });

  it('every upgrade attempt ends in one record: a handshake ws refuses, a client that leaves while the upstream is silent, peers that ignore the close', async () => {
    const silent = createServer(); // accepts, never answers the handshake
    const held: import('node:stream').Duplex[] = [];
    silent.on('upgrade', (_req, sock) => held.push(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => {
      for (const h of held) h.destroy();
      silent.close(() => r());
    }));
    const { proxy, records } = await proxyTo(`http://127.0.0.1:${(silent.address() as { port: number }).port}`);
    const port = Number(new URL(proxy.url).port);
    const handshake = (key: string) => `GET /v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
    // The client leaves (FIN) while the upstream has not answered: recorded at once, not at shutdown.
    const leaving = connect(port, '127.0.0.1', () => leaving.write(handshake('dGhlIHNhbXBsZSBub25jZQ==')));
    await waitFor(() => held.length === 1);
    leaving.end();
    await waitFor(() => records.length === 1, 2000);
    expect(records[0]).toMatchObject({ errorKind: 'client_aborted', status: null });
    expect(proxy.inFlight()).toBe(0);

    // A key ws refuses, once the upstream has accepted: 400 to the client, one record, the upstream hop cut.
    const up = await startWsUpstream({ onConnection: () => undefined });
    cleanups.push(up.close);
    const { proxy: p2, records: r2 } = await proxyTo(up.url);
    const bad = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(p2.url).port), '127.0.0.1', () => s.write(handshake('not-a-key')));
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('close', () => resolve(text));
    });
    expect(bad).toMatch(/^HTTP\/1\.1 400/);
    await waitFor(() => r2.length === 1);
    expect(r2[0]).toMatchObject({ status: 400 });
    expect(p2.inFlight()).toBe(0);

    // A client that never answers the close frame: shutdown still ends soon after the grace period.
    const mute = await new Promise<import('node:net').Socket>((resolve) => {
      const s = connect(Number(new URL(p2.url).port), '127.0.0.1', () => s.write(handshake('dGhlIHNhbXBsZSBub25jZQ==')));
      s.once('data', () => resolve(s)); // the 101; then it reads nothing more and sends nothing
    });
    cleanups.push(() => void mute.destroy());
    const t0 = Date.now();
    await p2.close(500);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(r2.filter((r) => r.protocol === 'websocket')).toHaveLength(1);
  });

  it('on shutdown closes open sessions with 1001 (going away) and records them; never crashes on a non-WebSocket upgrade', async () => {
    const up = await startWsUpstream({ onConnection: echo });
    cleanups.push(up.close);
    const records: TraceRecord[] = [];
    const proxy = await startRecordingProxy({ upstream: up.url, onRecord: (r) => records.push(r) });
    // A raw upgrade to another protocol: an HTTP answer, and the proxy keeps working.
    const raw = (head: string) => new Promise<string>((resolve) => {
      const s = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => s.write(head));
      let text = '';
      s.on('data', (d) => (text += d));
      s.on('close', () => resolve(text));
    });
    expect(await raw('GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n')).toMatch(/^HTTP\/1\.1 501/);
    // An absolute-form target the WebSocket client cannot use: 400, and the proxy lives on.
    const wsHead = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    expect(await raw(`GET http://evil.example/x HTTP/1.1\r\nHost: x\r\n${wsHead}`)).toMatch(/^HTTP\/1\.1 400/);
    const sessions = await Promise.all([open(proxy.url), open(proxy.url)]);
    sessions[0]!.send('ping me');
    expect(String((await nextMessage(sessions[0]!)).data)).toBe('PING ME');
    const codes = sessions.map(closed);
    const t0 = Date.now();
    await proxy.close(10_000);
    expect(Date.now() - t0).toBeLessThan(5000); // not the 10 s grace: sessions are closed, not waited for
    expect((await Promise.all(codes)).map((c) => c.code)).toEqual([1001, 1001]);
    const ws = records.filter((r) => r.protocol === 'websocket');
    expect(ws).toHaveLength(2);
    for (const r of ws) expect(r.features.websocket).toMatchObject({ closeCode: 1001, closedBy: 'proxy' });
    expect(records.find((r) => r.status === 501)).toBeDefined();
    expect(records.find((r) => r.status === 400)).toBeDefined();
  });
});
