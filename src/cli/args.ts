import { parseSessionKey, type SessionKeySpec } from '../sessions/keys.ts';
import { parseThinkTime, type ThinkTime } from '../sessions/schedule.ts';
import { parseDurationUs } from '../units.ts';
import { InvalidArgumentError } from 'commander';
import { parseModelMap, parsePathMap } from '../synth/target.ts';
import { parseSelector, type Selector } from '../workload/select.ts';

/** Parses `HOST:PORT` (`[::1]:0` for IPv6; port 0 picks a free port). @throws InvalidArgumentError (exit 2). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  if (!m) throw new InvalidArgumentError(`expected HOST:PORT, e.g. 127.0.0.1:8080, got '${text}'`);
  const port = Number(m[3]);
  if (port > 65535) throw new InvalidArgumentError(`port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** A commander value parser for a finite number within [min, max] (exclusive min when `openMin`). */
export function numberArg(name: string, min: number, max = Infinity, openMin = false): (text: string) => number {
  return (text: string) => {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v) || (openMin ? v <= min : v < min) || v > max) {
      throw new InvalidArgumentError(`${name} must be a number ${openMin ? '>' : '≥'} ${min}${max < Infinity ? ` and ≤ ${max}` : ''}, got '${text}'`);
    }
    return v;
  };
}

/** A commander value parser for an integer within [min, max]. */
export function intArg(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text: string) => {
    const v = Number(text);
    if (!/^-?\d+$/.test(text.trim()) || v < min || v > max) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}${max < Number.MAX_SAFE_INTEGER ? ` and ≤ ${max}` : ''}, got '${text}'`);
    return v;
  };
}

/** A commander value parser for an http(s) URL. */
export function urlArg(name: string): (text: string) => string {
  return (text: string) => {
    try {
      const u = new URL(text);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
      return text.replace(/\/$/, '');
    } catch {
      throw new InvalidArgumentError(`${name} must be an http:// or https:// URL, got '${text}'`);
    }
  };
}

/** `--scrape URL[,URL…]` (repeatable): accumulates http(s) URLs. */
export function scrapeArg(text: string, prev: string[] = []): string[] {
  const one = urlArg('--scrape');
  return [...prev, ...text.split(',').map((u) => u.trim()).filter((u) => u !== '').map(one)];
}

/** A repeatable `--header 'Name: value'` option's parser: accumulates into a record of lower-case names. */
export function headerArg(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = text.indexOf(':');
  const name = i > 0 ? text.slice(0, i).trim().toLowerCase() : '';
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw new InvalidArgumentError(`expected 'Name: value', got '${text}'`);
  return { ...previous, [name]: text.slice(i + 1).trim() };
}

/**
 * A commander value parser for a duration: a bare number in `unit` (backwards compatible: `--grace 2000` is ms), or
 * a number with its own unit (`500ms`, `2s`, `1.5m`, `1h`). Returns the value in `unit`, within [min, max].
 */
export function durationArg(name: string, unit: 'ms' | 's', min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text: string) => {
    const bare = /^\s*\d+(\.\d+)?\s*$/.test(text);
    let v: number;
    try {
      v = bare ? Number(text) : parseDurationUs(text) / (unit === 'ms' ? 1e3 : 1e6);
    } catch {
      throw new InvalidArgumentError(`${name} must be a duration (e.g. ${unit === 'ms' ? '500ms, 10s or a bare number of ms' : '30s, 2m or a bare number of seconds'}), got '${text}'`);
    }
    if (!(v >= min) || v > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max} ${unit}, got '${text}'`);
    return unit === 'ms' ? Math.round(v) : v;
  };
}

/** `--workers N|auto`: sending loops (1–64) or `auto`. @throws InvalidArgumentError (exit 2). */
export function workersArg(text: string): number | 'auto' {
  if (text === 'auto') return 'auto';
  return intArg('--workers', 1, 64)(text);
}

/** A repeatable `--only`/`--exclude SELECTOR` option's parser (`workload/select.ts`). @throws InvalidArgumentError (exit 2). */
export function selectorArg(name: string): (text: string, previous?: Selector[]) => Selector[] {
  return (text, previous = []) => {
    try {
      return [...previous, parseSelector(text)];
    } catch (err) {
      throw new InvalidArgumentError(`${name} ${(err as Error).message}`);
    }
  };
}

/** A repeatable `--model-map FROM=TO` option's parser. @throws InvalidArgumentError (exit 2). */
/** `--think-time recorded|scaled|zero|max:D`: exits 2 on anything else. */
export function thinkTimeArg(text: string): ThinkTime {
  try {
    return parseThinkTime(text, parseDurationUs);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** `--session-key header:NAME|body:PATH` (repeatable): exits 2 on a malformed key. */
export function sessionKeyArg(text: string, previous: SessionKeySpec[] = []): SessionKeySpec[] {
  try {
    return [...previous, parseSessionKey(text)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function modelMapArg(text: string, previous: Array<[string, string]> = []): Array<[string, string]> {
  try {
    return [...previous, ...parseModelMap([text])];
  } catch (err) {
    throw new InvalidArgumentError(`--model-map: ${(err as Error).message}`);
  }
}

/** A repeatable `--path-map FROM=TO` option's parser. @throws InvalidArgumentError (exit 2). */
export function pathMapArg(text: string, previous: Array<[string, string]> = []): Array<[string, string]> {
  try {
    return [...previous, ...parsePathMap([text])];
  } catch (err) {
    throw new InvalidArgumentError(`--path-map: ${(err as Error).message}`);
  }
}

/** A comma-separated list of numbers > 0 (`--speeds 1,2,4,8`). @throws InvalidArgumentError (exit 2). */
export function listArg(name: string): (text: string) => number[] {
  return (text: string) => {
    const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
    const xs = parts.map(Number);
    if (parts.length === 0 || xs.some((x) => !(x > 0) || !Number.isFinite(x))) throw new InvalidArgumentError(`${name} must be numbers > 0, comma-separated (e.g. 1,2,4,8), got '${text}'`);
    return xs;
  };
}

/** A percentage, `5%` or `5`, as a fraction in (0, 1). @throws InvalidArgumentError (exit 2). */
export function percentArg(name: string): (text: string) => number {
  return (text: string) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(text);
    const v = m ? Number(m[1]) / 100 : NaN;
    if (!(v > 0 && v < 1)) throw new InvalidArgumentError(`${name} must be a percentage between 0 and 100 (e.g. 5%), got '${text}'`);
    return v;
  };
}

/**
 * `replay --warmup`: a duration with its unit (`30s`, `500ms`, `2m`) is the warm-up left out of the headline figures;
 * a bare integer is the number of warm-up connections, as `--warmup N` meant before `--warm-connections`.
 * @throws InvalidArgumentError (exit 2).
 */
export function warmupArg(text: string): { durationUs?: number; connections?: number } {
  if (/^\s*\d+\s*$/.test(text)) return { connections: Number(text) };
  try {
    return { durationUs: parseDurationUs(text) };
  } catch {
    throw new InvalidArgumentError(`--warmup must be a duration with its unit (e.g. 30s, 500ms), got '${text}'`);
  }
}
