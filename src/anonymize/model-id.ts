import type { Fingerprinter } from './fingerprint.ts';

/**
 * What a trace keeps of a model id (issue 10, class 3). A public base model stays readable; the parts of an id that
 * name an organisation, a person, an adapter, an account or a namespace are one keyed token. The id is read as words
 * (between `-_.:/`); the words from its start that are public model vocabulary — families and publishers as they name
 * their models on Hugging Face and in the OpenAI, Anthropic, Google, Mistral, AWS Bedrock and Ollama model lists, sizes,
 * versions, dates, variants and quantizations — stay as written, and from the first word that is not, the rest becomes
 * `{model:<8 hex>}` (a fingerprint of the whole id, so two ids never share a token):
 * `meta-llama/Llama-3.1-8B-Instruct` stays, `ft:gpt-4o-mini:acme-health::9XbQ2` is `ft:gpt-4o-mini:{model:…}`,
 * `acmehealth/notes-7b` is `{model:…}`.
 */

/** Families, publishers and providers' words (lower case; a family may carry a version number: `llama3`, `qwen2`). */
const FAMILIES = new Set([
  'gpt', 'chatgpt', 'davinci', 'curie', 'babbage', 'ada', 'whisper', 'dall', 'tts', 'omni', 'codex', 'oss',
  'claude', 'sonnet', 'opus', 'haiku', 'instant',
  'gemini', 'gemma', 'palm', 'bison', 'gecko', 'imagen', 'veo', 'codegemma', 'paligemma', 't5', 'flan', 'ul2', 'bert',
  'llama', 'codellama', 'llava', 'vicuna', 'alpaca', 'opt', 'galactica',
  'mistral', 'mixtral', 'ministral', 'codestral', 'pixtral', 'magistral', 'devstral', 'nemo', 'mathstral',
  'qwen', 'qwq', 'qvq', 'deepseek', 'yi', 'glm', 'chatglm', 'internlm', 'baichuan', 'kimi', 'moonshot', 'minimax', 'ernie',
  'phi', 'orca', 'wizardlm', 'falcon', 'bloom', 'bloomz', 'mpt', 'dbrx', 'olmo', 'tulu', 'pythia', 'gptj', 'neox',
  'starcoder', 'starcoder2', 'santacoder', 'granite', 'command', 'aya', 'jamba', 'jurassic', 'titan', 'nova', 'grok',
  'zephyr', 'openchat', 'nous', 'hermes', 'dolphin', 'solar', 'smollm', 'tinyllama', 'stablelm', 'nemotron',
  'roberta', 'distilbert', 'deberta', 'electra', 'xlm', 'minilm', 'mpnet', 'bge', 'e5', 'gte', 'nomic', 'jina',
  'resnet', 'densenet', 'vgg', 'alexnet', 'inception', 'mobilenet', 'efficientnet', 'vit', 'clip', 'sam', 'yolo',
  'yolov', 'detr', 'dino', 'dinov', 'unet', 'sd', 'sdxl', 'stable', 'diffusion', 'flux', 'bark', 'wav2vec', 'hubert',
  'dlrm', 'bart', 'pegasus', 'marian', 'mbart', 'm2m', 'nllb', 'half', 'plus', 'two', 'mnist', 'cifar', 'iris',
  // Publishers (Hugging Face organisations) and providers.
  'meta', 'facebook', 'facebookai', 'google', 'microsoft', 'openai', 'anthropic', 'mistralai', 'deepseek', 'ai',
  'tiiuae', 'bigscience', 'eleutherai', 'nvidia', 'ibm', 'allenai', 'stabilityai', 'sentence', 'transformers', 'baai',
  'intfloat', 'nousresearch', 'thudm', 'zai', 'org', 'moonshotai', 'cohere', 'cohereforai', 'coherelabs', 'databricks',
  'mosaicml', 'salesforce', 'bigcode', 'lmsys', 'huggingfaceh4', 'huggingfacetb', 'upstage', 'xai', 'amazon', 'aws',
  'bedrock', 'ai21', 'ai21labs', 'community', 'unsloth', 'thebloke', 'neuralmagic', 'redhatai', 'jinaai',
  'snowflake', 'arctic', 'alibaba', 'nlp', 'thenlper', 'mixedbread', 'hf', 'qwenlm', 'models', 'publishers',
  // Variants, modalities, quantizations.
  'instruct', 'chat', 'base', 'it', 'turbo', 'mini', 'nano', 'pro', 'flash', 'lite', 'ultra', 'max', 'plus', 'preview',
  'latest', 'exp', 'experimental', 'vision', 'coder', 'code', 'math', 'embed', 'embedding', 'embeddings', 'text',
  'small', 'medium', 'large', 'xl', 'xxl', 'tiny', 'micro', 'distill', 'reasoning', 'thinking', 'audio', 'realtime',
  'search', 'transcribe', 'moderation', 'sft', 'dpo', 'rlhf', 'awq', 'gptq', 'gguf', 'ggml', 'fp8', 'fp16', 'bf16',
  'int4', 'int8', 'w4a16', 'w8a8', 'fp4', 'nvfp4', 'mlx', 'onnx', 'trt', 'quantized', 'dynamic', 'hf', 'v', 'ft',
  'lora', 'adapter', 'uncased', 'cased', 'multilingual', 'en', 'multi', 'all', 'msmarco', 'cross', 'encoder',
  'reranker', 'rerank', 'guard', 'moe', 'a', 'b', 'k', 'm', 's', 'l', 'q', 'x', 'e', 'o', 'r', 'r1', 'v2', 'v3',
  'arn', 'foundation', 'model', 'inference', 'profile', 'us', 'eu', 'apac', 'east', 'west', 'north', 'south', 'central',
  'sdpa', 'fast', 'long', 'context', 'mm', 'vl', 'omni', 'image', 'generation', 'video', 'speech', 'asr', 'ocr',
  // Serving runtimes' and frameworks' names and their documentation's sample models (KServe, Triton, TorchServe, TF
  // Serving, Ollama, vLLM; tracewarp's own simulator), and the public tasks and datasets models are named after.
  'tracewarp', 'sim', 'vllm', 'tgi', 'ollama', 'sglang', 'tensorrt', 'triton', 'llm', 'sklearn', 'xgboost', 'lightgbm',
  'pmml', 'tensorflow', 'tf', 'pytorch', 'torch', 'torchrec', 'onnxruntime', 'jax', 'keras', 'my', 'test', 'demo',
  'example', 'sample', 'default', 'dummy', 'toy', 'simple', 'identity', 'ner', 'squad', 'sentiment', 'classifier',
  'classification', 'detection', 'segmentation', 'summarization', 'translation', 'qa', 'mnli', 'sst2', 'imagenet',
  'coco', 'glue', 'cnn', 'dailymail', 'wikitext', 'dense', 'linear', 'mlp', 'lstm', 'gru', 'transformer', 'tokenizer',
  'ensemble', 'preprocess', 'postprocess', 'bls', 'decoupled', 'repeat', 'square', 'custom',
]);

/** Words that are numbers, sizes, versions, dates or quantization tags (`3`, `8b`, `1.5B`, `8x7b`, `v0.1`, `q4`, `20240620`). */
const NUMERIC_WORD = /^(?:v?\d{1,8}|\d{1,4}(?:\.\d{1,3})?[bmkt]|\d{1,2}x\d{1,4}[bm]|[a-z]\d{1,3}[a-z]?|\d{1,3}[a-z]|q\d_[a-z0-9]{1,3})$/i;

/** Shapes that are never model ids: an address, a credential or token prefix, a JWT, whitespace. */
const NOT_A_MODEL = /@|\s|^(?:sk|pk|rk|ak|whsec|ghp|gho|ghs|ghu|github_pat|glpat|hf|xox[abpr])[-_]|AKIA|ASIA|AIza|eyJ/;

function isPublicWord(word: string): boolean {
  if (word === '') return true;
  const lower = word.toLowerCase();
  if (FAMILIES.has(lower) || NUMERIC_WORD.test(word)) return true;
  const m = /^([a-z]+)(\d{1,3}(?:\.\d)?)$/.exec(lower);
  return m !== null && FAMILIES.has(m[1]!);
}

/**
 * The stored form of a model id: as written when every word is public vocabulary, else its public start followed by
 * `{model:<fingerprint>}`; null when the value is not a model id at all (it holds `@`, whitespace or a credential's
 * shape, or is over 128 characters): the trace keeps its length only.
 */
export function storedModelId(v: string, fp: Fingerprinter): string | null {
  if (v.length === 0 || v.length > 128 || NOT_A_MODEL.test(v) || !/^[A-Za-z0-9][A-Za-z0-9._:/+-]*$/.test(v)) return null;
  const re = /[^-_.:/+]+|[-_.:/+]+/g;
  let kept = 0;
  for (let m = re.exec(v); m !== null; m = re.exec(v)) {
    const w = m[0];
    if (/^[-_.:/+]+$/.test(w)) continue;
    if (!isPublicWord(w)) return `${v.slice(0, kept)}${MODEL_TOKEN_OPEN}${fp.name(v)}}`;
    kept = m.index + w.length;
    // Separators after a public word stay with it (`ft:gpt-4o-mini:` + token).
    const sep = /^[-_.:/+]+/.exec(v.slice(kept));
    if (sep) kept += sep[0].length;
  }
  return v;
}

/** How a fingerprinted model id's token begins. */
export const MODEL_TOKEN_OPEN = '{model:';

/** True when a stored model id (body or path) has a fingerprinted part: the target cannot know it by that name. */
export function isFingerprintedModel(id: string): boolean {
  return id.includes(MODEL_TOKEN_OPEN);
}
