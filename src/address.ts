import type { AddressInfo } from 'node:net';

/** `http://HOST:PORT` of a listening server's address (IPv6 hosts in brackets), or `fallback`. */
export function httpUrl(address: AddressInfo | string | null, fallback = ''): string {
  if (!address || typeof address === 'string') return fallback;
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}

/**
 * The path sent for a recorded path on a target whose URL has the path `basePath` (no trailing `/`): the target's
 * path goes in front, unless the recorded path already begins with it (`--target http://host/v1`, the usual OpenAI
 * base URL, sends `/v1/chat/completions`, not `/v1/v1/…`).
 */
export function pathOnTarget(basePath: string, recorded: string): string {
  if (basePath === '' || recorded === basePath || recorded.startsWith(basePath + '/') || recorded.startsWith(basePath + '?')) return recorded;
  return basePath + recorded;
}
