import type { TraceMeta } from '../schema.ts';
import { MAX_NAME_CHARS } from './caps.ts';
import { TraceProblem, checkInt, checkString, fail, isMap, show } from './problems.ts';

/** `meta` entries as the reader returns them (`TraceMeta` in `schema.ts`), after their checks (the health not yet typed). */
export type CheckedMeta = Omit<TraceMeta, 'format' | 'formatVersion' | 'recordingHealth'> & { recordingHealth: unknown };

/**
 * Checks the `meta` entries after `format` and `format_version` (which the reader checks itself, for their own error
 * codes): each known key, when present, has the type and range the format gives it. Absent keys take their defaults
 * (older traces lack some).
 * @throws TraceProblem naming the key.
 */
export function checkMeta(raw: ReadonlyMap<string, unknown>): CheckedMeta {
  const text = (k: string, dflt: string, max = MAX_NAME_CHARS): string => (raw.has(k) ? checkString(raw.get(k), `meta.${k}`, max) : dflt);
  const meta: CheckedMeta = {
    createdAt: text('created_at', ''),
    anchorWallUs: raw.has('anchor_wall_us') ? checkInt(raw.get('anchor_wall_us'), 'meta.anchor_wall_us', 0, Number.MAX_SAFE_INTEGER, 'µs since the Unix epoch') : 0,
    source: text('source', 'unknown'),
    toolVersion: text('tool_version', ''),
    anonymization: raw.get('anonymization') ?? null,
    recordsDropped: raw.has('records_dropped') ? checkInt(raw.get('records_dropped'), 'meta.records_dropped', 0, Number.MAX_SAFE_INTEGER, '') : 0,
    captureRaw: false,
    recordingHealth: null,
  };
  if (raw.has('source_file')) meta.sourceFile = text('source_file', '');
  if (raw.has('capture_raw')) {
    const c = raw.get('capture_raw');
    if (typeof c !== 'boolean') fail(`meta.capture_raw = ${show(c)} is not true or false`);
    meta.captureRaw = c;
  }
  const h = raw.get('recording_health');
  if (h !== undefined && h !== null) {
    if (!isMap(h)) fail(`meta.recording_health is ${show(h)}, not a map`);
    if (typeof h.ok !== 'boolean') fail(`meta.recording_health.ok = ${show(h.ok)} is not true or false`);
    for (const k of ['writeFailures', 'recordsDropped', 'fileRecreated'] as const) checkInt(h[k], `meta.recording_health.${k}`, 0, Number.MAX_SAFE_INTEGER, '');
    for (const k of ['firstFailure', 'lastFailure'] as const) {
      const x = h[k];
      if (x === null || x === undefined) continue;
      if (!isMap(x)) fail(`meta.recording_health.${k} is ${show(x)}, not a map`);
      for (const f of ['code', 'message', 'at'] as const) checkString(x[f], `meta.recording_health.${k}.${f}`, 4 * MAX_NAME_CHARS);
    }
    meta.recordingHealth = h;
  }
  return meta;
}
