import { describe, expect, it } from 'vitest';
import { WriteRetry, type WriterHealthEvent } from '../src/trace/write-health.ts';

describe('WriteRetry (fake clock: pure scheduling logic)', () => {
  it('one event per failure episode, backoff doubling from 100 ms to 5 s, resumed with its length and drops', () => {
    let now = 1_000_000;
    const events: WriterHealthEvent[] = [];
    const r = new WriteRetry((e) => events.push(e), () => now);
    expect(r.mayAttempt()).toBe(true);
    r.failed(Object.assign(new Error('database is locked\nmore'), { code: 'SQLITE_BUSY' }), 0);
    expect(events).toEqual([{ kind: 'write_failed', code: 'SQLITE_BUSY', message: 'database is locked' }]);
    const waits: number[] = [];
    for (let k = 0; k < 8; k++) {
      const from = now;
      while (!r.mayAttempt()) now += 10;
      waits.push(now - from);
      r.failed(Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' }), 3);
    }
    expect(waits).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(events).toHaveLength(1);
    while (!r.mayAttempt()) now += 10;
    r.succeeded(7);
    expect(events[1]).toEqual({ kind: 'write_resumed', afterMs: now - 1_000_000, dropped: 7 });
    expect(r.health).toMatchObject({ writeFailures: 9, firstFailure: { code: 'SQLITE_BUSY' }, lastFailure: { code: 'SQLITE_BUSY' } });
    // A new episode starts over at 100 ms.
    r.failed(new Error('disk full'), 7);
    const from = now;
    while (!r.mayAttempt()) now += 10;
    expect(now - from).toBe(100);
    expect(events[2]).toMatchObject({ kind: 'write_failed', code: 'ERROR', message: 'disk full' });
  });
});
