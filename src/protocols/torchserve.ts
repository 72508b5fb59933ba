import type { KeyLayout } from '../anonymize/keys.ts';
import { synthesizeImage } from '../synth/image.ts';
import { baseDescription, fillRoute, imageInfo, isJsonType, sentContentType, type ProtocolAdapter } from './adapter.ts';
import { describeJsonBody, genericJson, opaqueRequest, parseJson } from './generic.ts';
import { routeModel } from './kserve-v2.ts';

/**
 * The keys TorchServe's base handlers read a request by (`data`, else `body`, per `ts/torch_handler/base_handler.py`'s
 * preprocess); what is under them, and any other key, is the model's handler's own wording: tokens unless a policy
 * keeps them (`body.keepKeys`).
 */
const TORCHSERVE_LAYOUT: KeyLayout = { root: 'vocab', vocab: new Set(['data', 'body']), free: /^(?:data|body)$/ };

/**
 * TorchServe inference API (`POST /predictions/{model}[/{version}]`, per the TorchServe REST docs): JSON bodies are
 * described by structure; raw bodies by length and content type, and by format and dimensions when they are images
 * (replayed as a seeded image of those dimensions).
 */
export const torchServe: ProtocolAdapter = {
  id: 'torchserve',
  detect: (method, route) => (method === 'POST' || method === 'PUT') && /^\/predictions\/[^/]+(?:\/[^/]+)?$/.test(route),
  extract(ctx) {
    const model = routeModel(ctx.route);
    if (isJsonType(ctx.mediaType)) {
      const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
      if (parsed === undefined) return null;
      const d = describeJsonBody('torchserve', ctx, parsed, { layout: TORCHSERVE_LAYOUT });
      d.model = model;
      return d;
    }
    const d = baseDescription('torchserve', { kind: 'binary', contentType: ctx.mediaType, skeleton: null });
    const img = ctx.complete ? imageInfo(ctx.body) : null;
    if (img) d.features.images = [img];
    d.model = model;
    return d;
  },
  synthesize(r, rngs) {
    if (r.shape.kind === 'json') return genericJson.synthesize(r, rngs);
    const img = r.features.images?.[0];
    if (img) {
      const { bytes, mime } = synthesizeImage(img, rngs.rng);
      return { method: r.method, path: fillRoute(r.route, rngs.rng), headers: { 'content-type': sentContentType(r.shape.contentType, mime) }, body: bytes };
    }
    return opaqueRequest(r, rngs);
  },
};
