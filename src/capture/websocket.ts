import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer, type RawData } from 'ws';
import { upstreamErrorKind } from '../error-kinds.ts';
import { monoUs } from '../units.ts';
import type { ErrorKind, WebSocketSession } from '../types.ts';
import type { Exchange } from './exchange.ts';
import { proxyErrorBody, stripHopByHop, upstreamFailureAnswer, withTraceContext } from './http.ts';

/** Options of {@link WebSocketRelay}. */
export interface WebSocketRelayOptions {
  /** Upstream base URL (`http://` or `https://`; the relay connects with `ws://` / `wss://`). */
  upstream: string;
  /** Starts the exchange of an upgrade request (the proxy counts it as in flight). */
  begin(req: IncomingMessage): Exchange;
  /** Ends the exchange: describe and record it. Called once per exchange. */
  end(ex: Exchange, req: IncomingMessage): void;
  /** Time allowed for the upstream's handshake answer, ms. */
  handshakeTimeoutMs: number;
}

/** Handshake headers the relay's own WebSocket client sets for the upstream hop; the client's values never pass. */
const HANDSHAKE = new Set(['host', 'upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol', 'content-length']);

/** Close codes that may not be sent in a close frame (RFC 6455 §7.4.1): 1005 none given, 1006 abnormal, 1015 TLS. */
const RESERVED_CLOSE = new Set([1004, 1005, 1006, 1015]);

/** An upgrade request, with the subprotocol the upstream chose once its handshake completed. */
type UpgradeRequest = IncomingMessage & { twProtocol?: string };

interface Session {
  client: WebSocket;
  target: WebSocket;
  stats: WebSocketSession;
}

function payloadBytes(data: RawData): number {
  if (Buffer.isBuffer(data)) return data.length;
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}

/** Passes a close on to the other side, with the same code and reason where a close frame may carry them. */
function closeWith(ws: WebSocket, code: number, reason: Buffer): void {
  if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) return;
  if (code === 1006) ws.terminate();
  else if (RESERVED_CLOSE.has(code) || code < 1000 || code >= 5000) ws.close();
  else {
    try {
      ws.close(code, reason);
    } catch {
      ws.close(); // a code or reason `ws` will not send (e.g. 1016–2999): close without one rather than throw
    }
  }
}

/**
 * Relays WebSocket upgrades (RFC 6455) to the upstream and counts what a session carried, never its data (DESIGN
 * decision 2): the upstream's handshake is completed first, so a refusal (401, 404, …) reaches the client as the
 * upstream's own HTTP answer, and the client is accepted with the subprotocol the upstream chose. Messages are
 * relayed as they arrive, text stays text and binary stays binary; the close code and reason pass through; pings are
 * answered on each hop (by `ws`). Built on `ws`, the library @fastify/http-proxy uses for the same job, with our own
 * connection handling so the session can be recorded and the upstream's refusal forwarded.
 */
export class WebSocketRelay {
  private readonly wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: 1 << 30,
    handleProtocols: (_offered, req) => (req as UpgradeRequest).twProtocol || false,
  });
  private readonly sessions = new Set<Session>();
  private readonly pending = new Set<(kind: ErrorKind) => void>();
  private readonly wsBase: string;

  constructor(private readonly opts: WebSocketRelayOptions) {
    this.wsBase = opts.upstream.replace(/^http/, 'ws').replace(/\/$/, '');
  }

  /** Handles one `upgrade` event of the proxy's HTTP server. Never throws; failures are answered and recorded. */
  handle(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined); // a reset client must not crash the proxy; the close path records it
    const ex = this.opts.begin(req);
    // Until a session exists, `cancel` ends the exchange when the client leaves or the proxy shuts down; every path
    // ends in exactly one `end` (one record).
    let ended = false;
    let sessionStarted = false;
    let upstreamRequest: { destroy(): void } | null = null;
    let target: WebSocket | null = null;
    const cancel = (kind: ErrorKind) => {
      if (ended || sessionStarted) return;
      ex.fail(kind);
      upstreamRequest?.destroy();
      target?.terminate();
      socket.destroy();
      end();
    };
    const onClientClose = () => cancel('client_aborted');
    // Read the client while the upstream decides, so that its FIN is noticed at once; a well-behaved client sends
    // nothing before the 101, and whatever it did send is handed on with the upgrade's head.
    const early: Buffer[] = [];
    const onEarly = (b: Buffer) => early.push(b);
    const end = () => {
      if (ended) return;
      ended = true;
      this.pending.delete(cancel);
      socket.off('close', onClientClose);
      socket.off('end', onClientClose);
      socket.off('data', onEarly);
      ex.endUs = monoUs();
      this.opts.end(ex, req);
    };
    // The proxy's own answers; the exchange is recorded at once (not on the socket's flush, which a gone client never does).
    const answer = (status: number, reason: string, body: string) => {
      ex.status = status;
      socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      end();
    };
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      answer(501, 'Not Implemented', proxyErrorBody('only WebSocket upgrades are relayed'));
      return;
    }
    if (req.method !== 'GET') {
      answer(405, 'Method Not Allowed', proxyErrorBody('a WebSocket upgrade is a GET request'));
      return;
    }
    const headers = stripHopByHop(req.headers);
    const forwarded: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HANDSHAKE.has(k)) forwarded[k] = v;
    withTraceContext(ex, forwarded);
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    let up: WebSocket;
    try {
      up = new WebSocket(this.wsBase + (req.url ?? '/'), protocols, {
        headers: forwarded, perMessageDeflate: false, followRedirects: false, handshakeTimeout: this.opts.handshakeTimeoutMs, maxPayload: 1 << 30,
      });
    } catch (err) {
      // A request target or header the WebSocket client refuses (e.g. not a path): the client's mistake, not a crash.
      answer(400, 'Bad Request', proxyErrorBody(`cannot relay this upgrade: ${(err as Error).message}`));
      return;
    }
    target = up;
    up.on('error', () => undefined);
    this.pending.add(cancel);
    socket.once('close', onClientClose);
    socket.once('end', onClientClose); // HTTP server sockets allow half-open: a client's FIN alone does not close them
    socket.on('data', onEarly);
    // The upstream's handshake ends one way: refused with an HTTP answer, failed, or open.
    up.once('unexpected-response', (upReq, res) => {
      if (ended) return;
      // The upstream refused the upgrade: its HTTP answer goes to the client as it is (hop-by-hop and framing
      // headers dropped; the body delimited by the connection's end). The client leaving still cancels it.
      upstreamRequest = upReq;
      ex.status = res.statusCode ?? 502;
      ex.ttfbUs = monoUs() - ex.arrivalUs;
      const lines = [`HTTP/1.1 ${ex.status} ${res.statusMessage ?? ''}`];
      const kept = stripHopByHop(res.headers);
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        const name = res.rawHeaders[i]!;
        const lower = name.toLowerCase();
        if (kept[lower] !== undefined && lower !== 'content-length' && lower !== 'transfer-encoding') lines.push(`${name}: ${res.rawHeaders[i + 1]}`);
      }
      lines.push('Connection: close', '', '');
      socket.write(lines.join('\r\n'));
      res.on('data', (chunk: Buffer) => {
        ex.responseBytes += chunk.length;
        socket.write(chunk);
      });
      res.once('end', () => {
        socket.end();
        upReq.destroy();
        end();
      });
      res.once('error', () => {
        if (ended) return;
        ex.fail('upstream_reset');
        socket.destroy();
        upReq.destroy();
        end();
      });
    });
    up.once('error', (err) => {
      if (ended || sessionStarted) return;
      ex.fail(/handshake has timed out/i.test(err.message) ? 'upstream_timeout' : upstreamErrorKind(err));
      const failure = upstreamFailureAnswer(ex.errorKind!);
      answer(failure.status, failure.reason, failure.body);
    });
    up.once('open', () => {
      if (ended) {
        up.terminate();
        return;
      }
      // Accepted with the subprotocol the upstream chose (see handleProtocols).
      (req as UpgradeRequest).twProtocol = up.protocol;
      // A server that speaks first must not lose its first messages while the client's handshake completes.
      const fromServer: Array<[RawData, boolean]> = [];
      const hold = (data: RawData, isBinary: boolean) => fromServer.push([data, isBinary]);
      up.on('message', hold);
      // `ws` takes over reading the client (synchronously, so no chunk falls between the two listeners).
      socket.off('data', onEarly);
      socket.off('close', onClientClose);
      socket.off('end', onClientClose);
      this.wss.handleUpgrade(req, socket, Buffer.concat([head, ...early]), (client) => {
        sessionStarted = true;
        this.pending.delete(cancel);
        up.off('message', hold);
        this.relay(client, up, ex, end, fromServer);
      });
      // `ws` refused the client's handshake (a bad key or version: it answered 400 itself) or found the client gone;
      // it does so synchronously, without calling back.
      if (!sessionStarted) {
        up.terminate();
        if (socket.destroyed && !socket.writableFinished) ex.fail('client_aborted');
        else ex.status = 400;
        socket.destroy();
        end();
      }
    });
  }

  private relay(client: WebSocket, target: WebSocket, ex: Exchange, end: () => void, early: Array<[RawData, boolean]>): void {
    const stats = ex.upgraded();
    const session: Session = { client, target, stats };
    this.sessions.add(session);
    client.on('error', () => undefined);
    client.on('message', (data, isBinary) => {
      stats.messagesFromClient++;
      stats.bytesFromClient += payloadBytes(data);
      if (target.readyState === WebSocket.OPEN) target.send(data, { binary: isBinary });
    });
    const fromServer = (data: RawData, isBinary: boolean) => {
      stats.messagesFromServer++;
      stats.bytesFromServer += payloadBytes(data);
      stats.firstServerMessageUs ??= monoUs() - ex.arrivalUs;
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    };
    for (const [data, isBinary] of early) fromServer(data, isBinary);
    target.on('message', fromServer);
    let closed = 0;
    let cutTimer: NodeJS.Timeout | null = null;
    const onClose = (by: 'client' | 'server', other: WebSocket) => (code: number, reason: Buffer) => {
      if (stats.closedBy === null) {
        stats.closedBy = by;
        stats.closeCode = code;
      }
      closeWith(other, code, reason);
      // A side that does not finish the closing handshake is cut after 5 s.
      cutTimer ??= setTimeout(() => other.terminate(), 5000).unref();
      if (++closed === 2) {
        clearTimeout(cutTimer);
        this.sessions.delete(session);
        if (stats.closeCode === 1006 && stats.closedBy === 'server') ex.fail('upstream_reset');
        end();
      }
    };
    client.once('close', onClose('client', target));
    target.once('close', onClose('server', client));
  }

  /** Sessions open now, and upgrades waiting for the upstream's handshake. */
  open(): number {
    return this.sessions.size + this.pending.size;
  }

  /**
   * Shutdown: every open session is closed on both sides with 1001 (going away) and recorded as closed by the proxy;
   * upgrades still waiting for (or relaying the refusal of) the upstream are cut and recorded as `proxy_shutdown`.
   */
  closeAll(): void {
    for (const cancel of [...this.pending]) cancel('proxy_shutdown');
    for (const s of this.sessions) {
      s.stats.closedBy ??= 'proxy';
      s.stats.closeCode ??= 1001;
      s.client.close(1001, 'proxy shutting down');
      s.target.close(1001, 'proxy shutting down');
    }
  }

  /** End of the grace period: sessions whose peers did not finish the closing handshake are cut now. */
  terminateAll(): void {
    for (const s of this.sessions) {
      s.client.terminate();
      s.target.terminate();
    }
  }
}
