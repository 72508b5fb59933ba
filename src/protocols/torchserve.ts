import { synthesizeImage } from '../synth/image.ts';
import { baseDescription, fillRoute, imageInfo, isJsonType, type ProtocolAdapter } from './adapter.ts';
import { describeJsonBody, genericJson, opaqueRequest, parseJson } from './generic.ts';
import { routeModel } from './kserve-v2.ts';

/**
 * TorchServe inference API (`POST /predictions/{model}[/{version}]`, per the TorchServe REST docs): JSON bodies are
 * described by structure; raw bodies by length and content type, and by format and dimensions when they are images
 * (replayed as a seeded image of those dimensions).
 */
export const torchServe: ProtocolAdapter = {
  id: 'torchserve',
  detect: (method, route) => (method === 'POST' || method === 'PUT') && /^\/predictions\/[^/]+(?:\/[^/]+)?$/.test(route),
  extract(ctx) {
    const model = routeModel(ctx.route, /^\/predictions\/([^/]+)/);
    if (isJsonType(ctx.mediaType)) {
      const parsed = ctx.complete ? parseJson(ctx.body) : undefined;
      if (parsed === undefined) return null;
      const d = describeJsonBody('torchserve', ctx, parsed);
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
      return { method: r.method, path: fillRoute(r.route, rngs.rng), headers: { 'content-type': r.shape.contentType ?? mime }, body: bytes };
    }
    return opaqueRequest(r, rngs);
  },
};
