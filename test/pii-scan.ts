import { existsSync, readFileSync } from 'node:fs';

/**
 * Every form in which a planted value could sit in a file: raw; JSON `\u` escapes (non-ASCII only, and every
 * character); percent and form encoding; base64 and base64url at each of the three byte alignments (the groups that
 * also hold neighbouring bytes are left out, so a value embedded anywhere in a larger encoded blob is still found).
 */
export function encodedForms(value: string): string[] {
  const forms = new Set<string>([value]);
  const u = (c: string) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
  forms.add(JSON.stringify(value).slice(1, -1));
  forms.add(value.replace(/[^\x20-\x7e]/g, u));
  forms.add(value.split('').map(u).join(''));
  forms.add(encodeURIComponent(value));
  forms.add(encodeURIComponent(value).replace(/%20/g, '+'));
  forms.add(encodeURI(value));
  const bytes = Buffer.from(value, 'utf8');
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const start = k === 0 ? 0 : 4;
    const whole = Math.floor((k + bytes.length) / 3) * 4;
    const core = b64.slice(start, whole);
    if (core.length >= 8) {
      forms.add(core);
      forms.add(core.replace(/\+/g, '-').replace(/\//g, '_'));
    }
  }
  return [...forms].filter((f) => f.length >= 6);
}

/** Files of an SQLite trace that may hold data: the database and its journal files. */
export function traceFiles(path: string): string[] {
  return ['', '-wal', '-shm', '-journal'].map((s) => path + s).filter((p) => existsSync(p));
}

/** The planted values found in `haystacks` (file contents as latin1 strings, or log text), with the form that hit. */
export function findPlanted(values: string[], haystacks: string[]): Array<{ value: string; form: string }> {
  const hits: Array<{ value: string; form: string }> = [];
  for (const value of values) {
    for (const form of encodedForms(value)) {
      const needle = Buffer.from(form, 'utf8').toString('latin1');
      if (haystacks.some((h) => h.includes(needle))) {
        hits.push({ value, form });
        break;
      }
    }
  }
  return hits;
}

/** Reads files as latin1 strings (byte-exact) for {@link findPlanted}. */
export function readAll(paths: string[]): string[] {
  return paths.map((p) => readFileSync(p).toString('latin1'));
}
