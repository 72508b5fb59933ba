/** Top-level media types registered with IANA (RFC 6838 §4.2). */
const TOP_LEVEL = new Set(['application', 'audio', 'font', 'image', 'message', 'model', 'multipart', 'text', 'video']);

/**
 * Subtypes kept by name: the IANA-registered (or de facto, `x-ndjson`) ones inference traffic carries — JSON and its
 * line-delimited forms, forms, event streams, binary and serialization formats, documents, images, audio and video.
 */
const SUBTYPES = new Set([
  'json', 'x-ndjson', 'ndjson', 'jsonl', 'jsonlines', 'json-seq', 'problem+json', 'ld+json', 'x-www-form-urlencoded',
  'form-data', 'mixed', 'related', 'event-stream', 'plain', 'html', 'csv', 'xml', 'markdown', 'octet-stream', 'pdf',
  'zip', 'gzip', 'zstd', 'x-tar', 'msgpack', 'x-msgpack', 'vnd.msgpack', 'cbor', 'protobuf', 'x-protobuf',
  'vnd.google.protobuf', 'grpc', 'grpc+proto', 'grpc+json', 'grpc-web', 'grpc-web+proto', 'x-parquet', 'vnd.apache.arrow.stream',
  'vnd.apache.arrow.file', 'x-npy', 'wasm', 'javascript', 'png', 'jpeg', 'gif', 'webp', 'bmp', 'tiff', 'svg+xml', 'avif',
  'heic', 'heif', 'x-icon', 'wav', 'x-wav', 'wave', 'mpeg', 'mp3', 'mp4', 'ogg', 'webm', 'flac', 'x-flac', 'aac', 'opus',
  'l16', 'pcm', 'basic', 'x-m4a', 'quicktime', 'x-msvideo', 'octet', 'ecmascript',
]);

/** Structured-syntax suffixes (RFC 6839 and the IANA registry) a subtype kept without its name still shows. */
const SUFFIXES = new Set(['+json', '+xml', '+zip', '+cbor', '+gzip', '+proto', '+yaml', '+jwt', '+der']);

/** Whether a top-level type is a registered one (`image`, `application`, …). */
export function isTopLevelType(type: string): boolean {
  return TOP_LEVEL.has(type.toLowerCase());
}

/**
 * The form of a media type a trace keeps (issue 10: a `Content-Type: application/json, <e-mail>` was stored as sent):
 * `type/subtype` of a registered top-level type, lower case, parameters dropped, when the subtype is a registered one
 * ({@link SUBTYPES}). Any other subtype — a vendor's (`vnd.`), a person's (`prs.`), an unregistered one (`x-`), or a
 * plain name (`acme-health+json`) — keeps its structure without its name: `application/vnd.*+json`,
 * `application/x-*`, `application/*+json`, since the name can be a company's, a product's or a person's. Anything
 * else is not a media type and is not kept (null).
 */
export function storedMediaType(value: string | null | undefined): string | null {
  if (!value) return null;
  const m = /^\s*([a-z]+)\/([a-z0-9][a-z0-9!#$&^_.+-]{0,126})\s*$/i.exec(value.split(';')[0]!);
  if (!m || !TOP_LEVEL.has(m[1]!.toLowerCase())) return null;
  const type = m[1]!.toLowerCase();
  const sub = m[2]!.toLowerCase();
  if (SUBTYPES.has(sub)) return `${type}/${sub}`;
  const suffix = /\+[a-z0-9-]{1,20}$/.exec(sub)?.[0] ?? '';
  const known = SUFFIXES.has(suffix) ? suffix : '';
  const tree = /^(vnd|prs|x)[.-]/.exec(sub)?.[1];
  if (tree) return `${type}/${tree}${tree === 'x' ? '-' : '.'}*${known}`;
  return `${type}/*${known}`;
}
