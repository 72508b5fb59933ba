import type { Fingerprinter } from './fingerprint.ts';
import { fallbackFingerprinter } from './keys.ts';

/**
 * Names a trace keeps of headers, query keys and form fields (issue 10, class 6): the standard ones, enumerated; any
 * other name is the sender's own wording (`x-acme-tenant`, `?jdoe_debug=1`, a form field named after a patient) and is
 * kept as a keyed token — `{h:<8 hex>}`, `{q:<8 hex>}`, `{f:<8 hex>}` — equal within a trace.
 */

/**
 * Request header names: RFC 9110/9111/9113 and the IANA HTTP field registry's common ones, CORS and fetch metadata,
 * W3C Trace Context and B3, the proxies' forwarding headers, and the inference APIs' and their SDKs' own (OpenAI,
 * Anthropic, Google, Azure, KServe/Triton).
 */
const HEADER_NAMES = new Set([
  'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'authorization', 'cache-control',
  'connection', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-range', 'content-type', 'cookie', 'date', 'dnt', 'expect', 'forwarded', 'from', 'host', 'if-match',
  'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'keep-alive', 'max-forwards', 'origin',
  'pragma', 'priority', 'proxy-authorization', 'proxy-connection', 'range', 'referer', 'te', 'trailer',
  'transfer-encoding', 'upgrade', 'upgrade-insecure-requests', 'user-agent', 'via', 'warning', 'early-data',
  'access-control-request-method', 'access-control-request-headers', 'sec-fetch-site', 'sec-fetch-mode',
  'sec-fetch-dest', 'sec-fetch-user', 'sec-ch-ua', 'sec-ch-ua-mobile', 'sec-ch-ua-platform', 'sec-gpc',
  'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-protocol',
  'traceparent', 'tracestate', 'baggage', 'b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled',
  'x-b3-flags', 'x-request-id', 'x-correlation-id', 'x-amzn-trace-id', 'x-cloud-trace-context', 'x-forwarded-for',
  'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip', 'x-requested-with',
  'x-http-method-override', 'x-csrf-token', 'x-xsrf-token', 'idempotency-key', 'x-api-key', 'api-key',
  'openai-organization', 'openai-project', 'openai-beta', 'x-stainless-lang', 'x-stainless-package-version',
  'x-stainless-os', 'x-stainless-arch', 'x-stainless-runtime', 'x-stainless-runtime-version', 'x-stainless-retry-count',
  'x-stainless-timeout', 'x-stainless-async', 'x-stainless-helper-method', 'x-stainless-raw-response',
  'anthropic-version', 'anthropic-beta', 'anthropic-dangerous-direct-browser-access', 'x-goog-api-key',
  'x-goog-api-client', 'x-goog-user-project', 'x-goog-request-params', 'x-ms-useragent', 'x-ms-client-request-id',
  'x-ms-region', 'azureml-model-deployment', 'inference-header-content-length', 'x-envoy-upstream-rq-timeout-ms',
  'x-envoy-expected-rq-timeout-ms', 'x-envoy-attempt-count', 'x-envoy-external-address', 'x-envoy-original-path',
  'x-envoy-decorator-operation', 'x-envoy-internal', 'x-envoy-peer-metadata', 'x-envoy-peer-metadata-id', 'grpc-timeout',
  'x-ratelimit-limit', 'x-accel-buffering', 'x-datadog-trace-id', 'x-datadog-parent-id', 'x-datadog-sampling-priority',
]);

/** Query keys of the inference APIs (Azure `api-version`, Gemini `key` and `alt`) and of common pagination and streaming. */
const QUERY_KEYS = new Set(['api-version', 'key', 'alt', 'stream', 'model', 'timeout', 'format', 'beta', 'limit', 'after',
  'before', 'order', 'include', 'include[]', 'version', 'verbose', 'details', 'pretty', 'prettyPrint', 'fields', 'dry_run']);

/**
 * Form and multipart field names of the inference APIs' uploads (OpenAI audio, images and files; TorchServe's `data` and
 * `body`; Whisper-compatible servers) and common upload names.
 */
const FORM_FIELDS = new Set(['file', 'files', 'model', 'prompt', 'response_format', 'temperature', 'language',
  'timestamp_granularities[]', 'purpose', 'image', 'image[]', 'mask', 'n', 'size', 'quality', 'style', 'user', 'stream',
  'voice', 'input', 'chunking_strategy', 'include[]', 'background', 'output_format', 'output_compression', 'moderation',
  'data', 'body', 'audio', 'text', 'name', 'filename', 'upload', 'attachment', 'document', 'content', 'input_fidelity',
  'known_speaker_names[]', 'known_speaker_references[]', 'max_tokens', 'task', 'word_timestamps', 'vad_filter',
  // OAuth 2.0 token requests (RFC 6749 §4): the names only, never their values.
  'grant_type', 'username', 'password', 'client_id', 'client_secret', 'scope', 'refresh_token', 'code', 'redirect_uri']);

const TOKEN_CHARS = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

const NONE: ReadonlySet<string> = new Set();

/** A name as the trace keeps it: one of `standard` or `extra`, else the keyed token `{<kind>:<fingerprint>}`. */
function storedName(kind: 'h' | 'q' | 'f', name: string, standard: ReadonlySet<string>, extra: ReadonlySet<string>, fp: Fingerprinter | null): string {
  return standard.has(name) || extra.has(name) ? name : `{${kind}:${(fp ?? fallbackFingerprinter()).name(name)}}`;
}

/** A request header name as the trace keeps it (lower case): a standard name, else `{h:<fingerprint>}`. */
export function storedHeaderName(name: string, fp: Fingerprinter | null): string {
  return storedName('h', name.toLowerCase(), HEADER_NAMES, NONE, fp);
}

/** A query key (as decoded) as the trace keeps it: a standard key or one a policy names, else `{q:<fingerprint>}`. */
export function storedQueryKey(key: string, fp: Fingerprinter | null, extra: ReadonlySet<string> = NONE): string {
  return storedName('q', key, QUERY_KEYS, extra, fp);
}

/** A form or multipart field name as the trace keeps it: a standard upload name, else `{f:<fingerprint>}`. */
export function storedFieldName(name: string, fp: Fingerprinter | null, extra: ReadonlySet<string> = NONE): string {
  return storedName('f', name, FORM_FIELDS, extra, fp);
}

/** Whether a string is an RFC 9110 token (a header field name's grammar), lower case. */
export function isHeaderToken(name: string): boolean {
  return TOKEN_CHARS.test(name);
}
