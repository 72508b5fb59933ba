import { createHash } from 'node:crypto';
import type { PlannedRequest } from '../replay/types.ts';

/** SHA-256 (hex, first 32 digits) of what a request sends besides its schedule: sorted headers and body bytes. */
export function requestHash(p: Pick<PlannedRequest, 'headers' | 'body'>): string {
  return createHash('sha256').update(JSON.stringify(Object.entries(p.headers).sort())).update(p.body ?? Buffer.alloc(0)).digest('hex').slice(0, 32);
}

/**
 * Running digests of what a workload sends: the schedule alone, and schedule plus each request's {@link requestHash}.
 * Requests must be added in index order; the hash of each can be computed anywhere (a synthesis thread).
 */
export class WorkloadDigest {
  private readonly schedule = createHash('sha256');
  private readonly all = createHash('sha256');
  count = 0;

  add(p: Pick<PlannedRequest, 'index' | 'scheduledUs' | 'method' | 'path' | 'label'>, hash: string): void {
    const line = `${p.index}|${p.scheduledUs}|${p.method}|${p.path}|${p.label ?? ''}\n`;
    this.schedule.update(line);
    this.all.update(line);
    this.all.update(hash);
    this.count++;
  }

  /** `{ schedule, digest }` as hex: `digest` covers the schedule and the bodies. Call once, at the end. */
  result(): { schedule: string; digest: string } {
    return { schedule: this.schedule.digest('hex').slice(0, 32), digest: this.all.digest('hex').slice(0, 32) };
  }
}

