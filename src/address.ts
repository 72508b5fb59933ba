import type { AddressInfo } from 'node:net';

/** `http://HOST:PORT` of a listening server's address (IPv6 hosts in brackets), or `fallback`. */
export function httpUrl(address: AddressInfo | string | null, fallback = ''): string {
  if (!address || typeof address === 'string') return fallback;
  return `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
}
