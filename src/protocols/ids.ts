import type { ProtocolId } from '../types.ts';

/**
 * Protocol ids accepted by `--protocol`, in detection order (route-specific protocols first, then body formats, then
 * generic JSON). A module of its own so the CLI can list them without loading the adapters; `protocols/index.ts`
 * checks at load that its adapters are exactly these.
 */
export const PROTOCOL_IDS: readonly ProtocolId[] = ['openai-chat', 'openai-completions', 'openai-embeddings', 'kserve-generate', 'kserve-v2', 'ollama', 'tgi', 'tf-serving', 'torchserve', 'multipart', 'form', 'generic-json'];
