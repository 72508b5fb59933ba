import { countTokens } from '../tokens.ts';
import type { ProtocolAdapter } from './adapter.ts';
import { KSERVE_SCHEMA, routeModel, tensorNameAt, tensors } from './kserve-v2.ts';
import { extractLlm, synthesizeLlm, type LlmSpec } from './llm.ts';
import { oipGenerateStream } from './streams.ts';

const ROUTE = /^\/v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/generate(?:_stream)?$/;

/** Load parameters of the generate extension as Triton's TRT-LLM and vLLM backends and KServe's runtimes read them. */
const PARAMS = ['max_tokens', 'min_tokens', 'stream', 'temperature', 'top_p', 'top_k', 'ignore_eos', 'beam_width'].map((k) => `parameters.${k}`);
const SPEC: LlmSpec = { protocol: 'kserve-generate', prompt: 'text_input', nestedParams: PARAMS, maxTokens: ['parameters.max_tokens', 'max_tokens'], schema: KSERVE_SCHEMA };

/**
 * The Open Inference Protocol's generate extension (Triton `docs/protocol/extension_generate.md`, KServe LLM
 * runtimes): `POST /v2/models/{m}[/versions/{v}]/generate` answers one JSON object (`text_output`),
 * `…/generate_stream` a stream of them (SSE). `text_input` is the prompt; other members are parameters, or tensors
 * whose names, datatypes and shapes are kept as in `/infer`.
 */
export const kserveGenerate: ProtocolAdapter = {
  id: 'kserve-generate',
  generative: true,
  detect: (method, route) => method === 'POST' && ROUTE.test(route),
  extract: (ctx) => extractLlm(SPEC, ctx, (body, d) => {
    d.model = routeModel(ctx.route);
    if (ctx.route.endsWith('_stream')) d.wantsStream = true;
    if (Array.isArray(body.inputs)) d.features.tensors = tensors(body.inputs);
  }),
  synthesize: (r, rngs, opts) => synthesizeLlm(SPEC, r, rngs, opts, tensorNameAt(r, opts)),
  extractResponse(body) {
    const t = (body as { text_output?: unknown })?.text_output;
    return typeof t === 'string' ? { outputTokens: countTokens(t) } : {};
  },
  streamReader: oipGenerateStream,
};
