import { isSchemaName } from '../anonymize/names.ts';
import type { KeyLayout } from '../anonymize/keys.ts';
import type { ProtocolAdapter } from './adapter.ts';
import { describeJsonBody, genericJson, parseJson } from './generic.ts';
import { routeModel } from './kserve-v2.ts';

/**
 * TF Serving's own keys (`instances`, `inputs`, `signature_name`, `examples`) are vocabulary; the rows' and named
 * inputs' keys are the model's feature names, somebody's wording: tokens unless a policy keeps them (`body.keepKeys`).
 */
const TF_LAYOUT: KeyLayout = { root: 'vocab', vocab: new Set(['instances', 'inputs', 'signature_name', 'examples']), anywhere: new Set(['b64']), free: /^(?:instances\[\d+\]|examples\[\d+\]|inputs)$/ };

/**
 * A `signature_name` kept as sent: TF Serving's default and the method names SavedModels export signatures under
 * (`serving_default`, `predict`, `tensorflow/serving/classify`, `predict_images`); any other is the model author's
 * wording, and only its length is kept.
 */
function isSignature(v: unknown): v is string {
  return isSchemaName(v) && /^(?:tensorflow\/serving\/)?(?:serving|predict|classify|regress|infer|inference|default)(?:_(?:default|images?|text|[0-9]{1,2}))?$/.test(v);
}

/**
 * KServe v1 / TensorFlow Serving REST (`POST …/models/{model}[/versions/{v}]:predict`, also `:classify`,
 * `:regress`), per the TF Serving REST API: `instances` (row format) or `inputs` (columnar format, a list or a map of
 * named tensors), optional `signature_name`. Kept: `signature_name`; the batch size (rows) as a feature.
 */
export const tfServing: ProtocolAdapter = {
  id: 'tf-serving',
  detect: (method, route) => method === 'POST' && /:(predict|classify|regress)$/.test(route),
  extract(ctx) {
    const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return null;
    const body = parsed as { instances?: unknown; inputs?: unknown; examples?: unknown };
    const d = describeJsonBody('tf-serving', ctx, body, { keep: new Map([['signature_name', (v: unknown, path: string) => path === 'signature_name' && isSignature(v)]]), layout: TF_LAYOUT });
    const rows = body.instances ?? body.examples;
    if (Array.isArray(rows)) d.features.batch = rows.length;
    else if (Array.isArray(body.inputs)) d.features.batch = body.inputs.length;
    else if (body.inputs && typeof body.inputs === 'object') {
      const first = Object.values(body.inputs as Record<string, unknown>)[0];
      if (Array.isArray(first)) d.features.batch = first.length;
    }
    d.model = routeModel(ctx.route);
    return d;
  },
  synthesize: genericJson.synthesize,
};
