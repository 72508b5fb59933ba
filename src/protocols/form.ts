import { storedMediaType } from '../anonymize/media-type.ts';
import busboy from '@fastify/busboy';
import { synthesizeImage } from '../synth/image.ts';
import type { Features, TraceRecord } from '../types.ts';
import { storedFieldName } from '../anonymize/field-names.ts';
import { baseDescription, fillRoute, imageInfo, seededBytes, type ExtractContext, type ProtocolAdapter, type SynthRngs } from './adapter.ts';

type Part = NonNullable<Features['parts']>[number];
/** A field's name as the trace keeps it: a standard upload name (or one the policy keeps), else a keyed token. */
const safeName = (n: string, ctx: ExtractContext) => storedFieldName(n, ctx.fingerprinter, ctx.policy.keys);
/** The name a replay sends for a part: the recorded one, or `field<i>` where the trace kept a token or nothing. */
const sentName = (n: string | null, i: number) => (n === null || n.startsWith('{') ? `field${i}` : n);
/** A part's media type when it is a plain `type/subtype` (parameters and odd values dropped). */
const safeMime = (m: string | undefined) => storedMediaType(m);

/**
 * Parses a multipart/form-data body with `@fastify/busboy` into parts: field name (kept when schema-like), content
 * type, size, whether it was a file, and image format/dimensions for image parts. No part content is kept.
 */
function multipartParts(ctx: ExtractContext): Promise<Part[] | null> {
  return new Promise((resolve) => {
    const parts: Part[] = [];
    let bb: InstanceType<typeof busboy.Busboy>;
    try {
      bb = new busboy.Busboy({ headers: { 'content-type': ctx.contentType ?? '' }, limits: { fieldSize: Infinity, fileSize: Infinity, fields: Infinity, files: Infinity, parts: Infinity } });
    } catch {
      resolve(null);
      return;
    }
    bb.on('field', (name: string, value: string, _nt: boolean, _vt: boolean, _enc: string, mime: string) => {
      parts.push({ name: safeName(name, ctx), contentType: safeMime(mime), bytes: Buffer.byteLength(value) });
    });
    bb.on('file', (name: string, stream: NodeJS.ReadableStream, _filename: string, _enc: string, mime: string) => {
      const p: Part = { name: safeName(name, ctx), contentType: safeMime(mime), bytes: 0, filename: true };
      parts.push(p);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        p.bytes += c.length;
        if (chunks.length < 64) chunks.push(c);
      });
      stream.on('end', () => {
        if (mime?.startsWith('image/')) {
          const img = imageInfo(Buffer.concat(chunks));
          if (img) p.image = { ...img, bytes: p.bytes };
        }
      });
    });
    bb.on('finish', () => setImmediate(() => resolve(parts)));
    bb.on('error', () => resolve(null));
    bb.end(ctx.body);
  });
}

/** multipart/form-data: part count, names, content types, sizes; images with dimensions. */
export const multipart: ProtocolAdapter = {
  id: 'multipart',
  detect: (_m, _r, mt) => mt === 'multipart/form-data',
  async extract(ctx) {
    if (!ctx.complete) return null;
    const parts = await multipartParts(ctx);
    if (!parts) return null;
    const d = baseDescription('multipart', { kind: 'binary', contentType: ctx.mediaType, skeleton: null });
    d.features.parts = parts;
    return d;
  },
  synthesize(r: TraceRecord, rngs: SynthRngs) {
    const boundary = `tracewarp${rngs.rng.int(1e9)}`;
    const chunks: Buffer[] = [];
    (r.features.parts ?? []).forEach((p, i) => {
      const name = sentName(p.name, i);
      const disp = `form-data; name="${name}"${p.filename ? `; filename="file${i}"` : ''}`;
      const body = p.image ? synthesizeImage(p.image, rngs.rng).bytes : seededBytes(p.bytes, rngs.rng, !p.filename);
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.filename || (p.contentType && p.contentType !== 'text/plain') ? `Content-Type: ${p.contentType ?? 'application/octet-stream'}\r\n` : ''}\r\n`), body, Buffer.from('\r\n'));
    });
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    return { method: r.method, path: fillRoute(r.route, rngs.rng), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: Buffer.concat(chunks) };
  },
};

/** application/x-www-form-urlencoded: field names (when schema-like) and value lengths, never values. */
export const formUrlencoded: ProtocolAdapter = {
  id: 'form',
  detect: (_m, _r, mt) => mt === 'application/x-www-form-urlencoded',
  extract(ctx) {
    if (!ctx.complete) return null;
    const d = baseDescription('form', { kind: 'binary', contentType: ctx.mediaType, skeleton: null });
    d.features.parts = [...new URLSearchParams(ctx.body.toString('latin1'))].map(([name, value]) => ({ name: safeName(name, ctx), contentType: null, bytes: Buffer.byteLength(value) }));
    return d;
  },
  synthesize(r, rngs) {
    const form = new URLSearchParams();
    (r.features.parts ?? []).forEach((p, i) => form.append(sentName(p.name, i), seededBytes(p.bytes, rngs.rng, true).toString('latin1')));
    return { method: r.method, path: fillRoute(r.route, rngs.rng), headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) };
  },
};
