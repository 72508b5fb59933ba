import { buildConnector } from 'undici';
import { describeFailure, replayFailureOf, type ReplayFailure } from '../error-kinds.ts';
import { TARGET_CHECK_TIMEOUT_MS } from './defaults.ts';

/** What the check of a target found. */
export type TargetCheck =
  | { ok: true; address: string }
  | { ok: false; address: string; failure: ReplayFailure; message: string };

/** `host:port` of a target URL (the default port of its scheme when it names none). */
export function targetAddress(target: string): string {
  const u = new URL(target);
  return `${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`;
}

/**
 * Checks that a replay target can be reached before the clock starts: opens one connection the way the replay's
 * connection pool does (undici's connector: DNS, TCP, and the TLS handshake with the host's name for https://), then
 * closes it. Nothing is sent, so a recording proxy in front of the target records nothing. A failure comes back with
 * its cause (`ECONNREFUSED`, `ENOTFOUND`, `ERR_SSL_WRONG_VERSION_NUMBER`, a certificate error, a connect timeout) and a
 * sentence naming the address.
 * @param timeoutMs how long the connection may take (default {@link TARGET_CHECK_TIMEOUT_MS}).
 * @param signal ends the check early (then it resolves as ok: nothing was found wrong).
 * Never throws (a `target` that is not a URL is refused before, by the engine).
 */
export function checkTarget(target: string, timeoutMs = TARGET_CHECK_TIMEOUT_MS, signal?: AbortSignal): Promise<TargetCheck> {
  const u = new URL(target);
  const address = targetAddress(target);
  const connect = buildConnector({ timeout: timeoutMs });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: TargetCheck) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = () => settle({ ok: true, address });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort);
    // As undici's client calls it: an IPv6 literal without its brackets; the TLS server name from the host (none for an IP).
    const hostname = u.hostname.startsWith('[') ? u.hostname.slice(1, u.hostname.indexOf(']')) : u.hostname;
    connect({ hostname, host: u.host, protocol: u.protocol, port: u.port }, (err, socket) => {
      if (err) {
        const failure = replayFailureOf(err);
        settle({ ok: false, address, failure, message: `cannot reach the target ${target}: ${describeFailure(failure, address)}` });
        return;
      }
      socket?.destroy();
      settle({ ok: true, address });
    });
  });
}
