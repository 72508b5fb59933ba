/** Top-level media types registered with IANA (RFC 6838 §4.2). */
const TOP_LEVEL = new Set(['application', 'audio', 'font', 'image', 'message', 'model', 'multipart', 'text', 'video']);

/**
 * The form of a media type a trace keeps (issue 10: a `Content-Type: application/json, <e-mail>` was stored as sent):
 * `type/subtype` of a registered top-level type, lower case, parameters dropped. A vendor (`vnd.`), personal (`prs.`)
 * or unregistered (`x-`) subtype keeps its structure without its name — `application/vnd.*+json`, `application/x-*`
 * — since the vendor part names a company or a product; a structured-syntax suffix (`+json`, `+xml`) stays. Anything
 * else is not a media type and is not kept (null).
 */
export function storedMediaType(value: string | null | undefined): string | null {
  if (!value) return null;
  const m = /^\s*([a-z]+)\/([a-z0-9][a-z0-9!#$&^_.+-]{0,126})\s*$/i.exec(value.split(';')[0]!);
  if (!m || !TOP_LEVEL.has(m[1]!.toLowerCase())) return null;
  const type = m[1]!.toLowerCase();
  const sub = m[2]!.toLowerCase();
  const suffix = /\+[a-z0-9-]{1,20}$/.exec(sub)?.[0] ?? '';
  const tree = /^(vnd|prs|x)[.-]/.exec(sub)?.[1];
  if (tree) return `${type}/${tree}${tree === 'x' ? '-' : '.'}*${suffix}`;
  return /^[a-z0-9][a-z0-9.+-]{0,63}$/.test(sub) ? `${type}/${sub}` : null;
}
