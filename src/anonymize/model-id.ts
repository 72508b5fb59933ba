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

/**
 * Families, providers' words, sizes' and variants' words that name public models and nothing else (lower case; a family
 * may carry a version number: `llama3`, `qwen2`).
 */
const FAMILIES = new Set([
  // PaddleOCR's detection, recognition and direction models (sim's KServe model is `ocr-det`).
  'det', 'rec', 'cls', 'huge', 'iris', 'half', 'plus', 'two',   'gpt', 'chatgpt', 'davinci', 'curie', 'babbage', 'whisper', 'dall', 'tts', 'omni', 'codex', 'oss', 'gemini',
  'imagen', 'veo', 'codegemma', 'paligemma', 't5', 'flan', 'ul2', 'bert', 'llama', 'codellama', 'llava', 'galactica',
  'mistral', 'mixtral', 'ministral', 'codestral', 'pixtral', 'magistral', 'devstral', 'mathstral', 'qwen', 'qwq',
  'qvq', 'deepseek', 'glm', 'chatglm', 'internlm', 'baichuan', 'moonshot', 'wizardlm', 'bloomz', 'mpt', 'dbrx',
  'pythia', 'gptj', 'neox', 'starcoder', 'starcoder2', 'santacoder', 'granite', 'jurassic', 'openchat', 'smollm',
  'tinyllama', 'stablelm', 'nemotron', 'distilbert', 'deberta', 'electra', 'xlm', 'minilm', 'mpnet', 'bge', 'e5',
  'gte', 'nomic', 'jina', 'resnet', 'densenet', 'vgg', 'alexnet', 'inception', 'mobilenet', 'efficientnet', 'vit',
  'clip', 'yolo', 'yolov', 'detr', 'dinov', 'unet', 'sdxl', 'diffusion', 'wav2vec', 'dlrm', 'bart', 'pegasus',
  'mbart', 'm2m', 'nllb', 'mnist', 'cifar', 'meta', 'facebook', 'facebookai', 'google', 'microsoft', 'openai',
  'anthropic', 'mistralai', 'deepseek', 'ai', 'tiiuae', 'bigscience', 'eleutherai', 'nvidia', 'ibm', 'allenai',
  'stabilityai', 'sentence', 'transformers', 'baai', 'intfloat', 'nousresearch', 'thudm', 'zai', 'org', 'moonshotai',
  'cohere', 'cohereforai', 'coherelabs', 'databricks', 'mosaicml', 'salesforce', 'bigcode', 'lmsys', 'huggingfaceh4',
  'huggingfacetb', 'upstage', 'xai', 'amazon', 'aws', 'bedrock', 'ai21', 'ai21labs', 'community', 'unsloth',
  'thebloke', 'neuralmagic', 'redhatai', 'jinaai', 'snowflake', 'arctic', 'alibaba', 'nlp', 'thenlper', 'mixedbread',
  'hf', 'qwenlm', 'models', 'publishers', 'instruct', 'chat', 'base', 'it', 'turbo', 'mini', 'nano', 'pro', 'flash',
  'lite', 'ultra', 'max', 'preview', 'latest', 'exp', 'experimental', 'vision', 'coder', 'code', 'math', 'embed',
  'embedding', 'embeddings', 'text', 'small', 'medium', 'large', 'xl', 'xxl', 'tiny', 'micro', 'distill',
  'reasoning', 'thinking', 'audio', 'realtime', 'search', 'transcribe', 'moderation', 'sft', 'dpo', 'rlhf', 'awq',
  'gptq', 'gguf', 'ggml', 'fp8', 'fp16', 'bf16', 'int4', 'int8', 'w4a16', 'w8a8', 'fp4', 'nvfp4', 'mlx', 'onnx',
  'trt', 'quantized', 'dynamic', 'hf', 'v', 'ft', 'lora', 'adapter', 'uncased', 'cased', 'multilingual', 'en',
  'multi', 'all', 'msmarco', 'cross', 'encoder', 'reranker', 'rerank', 'guard', 'moe', 'a', 'b', 'k', 'm', 's', 'l',
  'q', 'x', 'e', 'o', 'r', 'r1', 'v2', 'v3', 'arn', 'foundation', 'model', 'inference', 'profile', 'us', 'eu',
  'apac', 'east', 'west', 'north', 'south', 'central', 'sdpa', 'fast', 'long', 'context', 'mm', 'vl', 'omni',
  'image', 'generation', 'video', 'speech', 'asr', 'ocr', 'tracewarp', 'sim',
  'vllm', 'tgi', 'ollama', 'sglang', 'tensorrt', 'triton', 'llm', 'sklearn', 'xgboost', 'lightgbm', 'pmml',
  'tensorflow', 'tf', 'pytorch', 'torch', 'torchrec', 'onnxruntime', 'jax', 'keras', 'ner', 'squad', 'sentiment',
  'classifier', 'classification', 'detection', 'segmentation', 'summarization', 'translation', 'qa', 'mnli', 'sst2',
  'imagenet', 'coco', 'glue', 'cnn', 'dailymail', 'wikitext', 'mlp', 'lstm', 'gru', 'transformer', 'tokenizer',
  'ensemble', 'preprocess', 'postprocess', 'bls', 'decoupled',
]);

/**
 * Words of public model names that are also people's names or everyday words (`claude`, `gemma`, `sam`, `ada`, `iris`,
 * `nova`, `test`, `demo`): public only in a versioned name — a number or size comes after them (`gemma-2-9b`,
 * `text-embedding-ada-002`, `claude-sonnet-4-5`) — or under a public publisher (`FacebookAI/roberta-base`). Otherwise
 * (`sam-test-model`, `llama-sam-iris`) they may be a person's or a team's, and start the token.
 */
const NAME_LIKE = new Set([
  'ada', 'add', 'alpaca', 'aya', 'bark', 'bison', 'bloom', 'claude', 'command', 'custom', 'default', 'demo', 'dense',
  'dino', 'dolphin', 'dummy', 'echo', 'ernie', 'example', 'falcon', 'flux', 'gecko', 'gemma', 'grok', 'haiku',
  'hermes', 'hubert', 'identity', 'instant', 'jamba', 'kimi', 'linear', 'marian', 'minimax', 'my',
  'nemo', 'nous', 'nova', 'olmo', 'opt', 'opus', 'orca', 'palm', 'phi', 'repeat', 'roberta', 'sam', 'sample',
  'sd', 'simple', 'solar', 'sonnet', 'square', 'stable', 'test', 'titan', 'toy', 'tulu', 'vicuna', 'yi',
  'zephyr',
]);

/** Publishers an `org/name` id may name (Hugging Face organisations of public models, Ollama's `library`); any other organisation is a token. */
const PUBLISHERS = new Set([
  'meta-llama', 'mistralai', 'qwen', 'google', 'microsoft', 'deepseek-ai', 'openai', 'anthropic', 'facebook',
  'tiiuae', 'bigscience', 'eleutherai', 'nvidia', 'ibm-granite', 'ibm', 'allenai', 'stabilityai',
  'sentence-transformers', 'baai', 'intfloat', 'nousresearch', 'thudm', 'zai-org', 'moonshotai', 'coherelabs',
  'cohereforai', 'databricks', 'mosaicml', 'salesforce', 'bigcode', 'lmsys', 'huggingfaceh4', 'huggingfacetb',
  'upstage', 'xai-org', 'amazon', 'ai21labs', 'mistral-community', 'unsloth', 'thebloke', 'neuralmagic', 'redhatai',
  'jinaai', 'snowflake', 'alibaba-nlp', 'thenlper', 'mixedbread-ai', 'openai-community', 'google-bert', 'google-t5',
  'facebookai', 'llava-hf', 'tinyllama', '01-ai', 'internlm', 'baichuan-inc', 'openbmb', 'nomic-ai', 'qwenlm',
  'minimaxai', 'black-forest-labs', 'liuhaotian', 'openchat', 'teknium', 'microsoft-community', 'meta', 'library',
]);



/**
 * Words that are sizes, versions or tags (`8b`, `1.5B`, `8x7b`, `4o`, `v0`, `o1`, `r1`, `a3b`, `q4`, `q4_k_m`'s parts,
 * single letters). Digit-only words are {@link NUMBER_WORD}s.
 */
const SIZE_OR_TAG = /^(?:\d{1,4}(?:\.\d{1,2})?[bmkt]|\d{1,2}x\d{1,4}[bm]|\d{1,3}[a-z]|v\d{1,3}|[vorkqeabmx]\d{1,2}[a-z]?|[a-z])$/i;

/** Dates of the model era, as model names write them. */
const YEAR = '20[12]\\d';
const MONTH = '(?:0[1-9]|1[0-2])';
const DAY = '(?:0[1-9]|[12]\\d|3[01])';
const MMDD = new RegExp(`^${MONTH}${DAY}$`);
/** A year, or a `yyyymmdd` date. */
const YEAR_OR_DATE = new RegExp(`^${YEAR}(?:${MONTH}${DAY})?$`);
/** A `yyyy-mm-dd` date's three words. */
const DATE_WORDS = [YEAR, MONTH, DAY].map((p) => new RegExp(`^${p}$`));

/** Digit-only words a model name uses: a version or size number (up to 3 digits), a year, a `yyyymmdd` date or an `mmdd` one. */
const NUMBER_WORD = new RegExp(`^(?:\\d{1,3}|${YEAR}(?:${MONTH}${DAY})?|${MONTH}${DAY})$`);

/** Shapes that are never model ids: an address, a credential or token prefix, a JWT, whitespace. */
const NOT_A_MODEL = /@|\s|^(?:sk|pk|rk|ak|whsec|ghp|gho|ghs|ghu|github_pat|glpat|hf|xox[abpr])[-_]|AKIA|ASIA|AIza|eyJ/;

type WordKind = 'word' | 'name-like' | 'number' | 'other';

function kindOf(word: string): WordKind {
  const lower = word.toLowerCase();
  if (/^\d+$/.test(word)) return NUMBER_WORD.test(word) ? 'number' : 'other';
  if (SIZE_OR_TAG.test(word)) return 'number';
  const m = /^([a-z]+?)(\d{1,3}(?:\.\d)?)?$/.exec(lower);
  const stem = m?.[1] ?? lower;
  if (NAME_LIKE.has(lower) || (m?.[2] === undefined && NAME_LIKE.has(stem))) return 'name-like';
  if (FAMILIES.has(lower) || (m !== null && FAMILIES.has(stem)) || NAME_LIKE.has(stem)) return 'word';
  return 'other';
}

/** Whether a run of digit-only words is a model name's: up to two version numbers, then a date; or an `mmdd` date alone. */
function versionRun(run: readonly string[]): boolean {
  if (run.length === 1 && MMDD.test(run[0]!)) return true;
  let i = 0;
  while (i < run.length && i < 2 && /^\d{1,3}$/.test(run[i]!)) i++;
  const rest = run.slice(i);
  if (rest.length === 0) return true;
  if (rest.length === 1) return YEAR_OR_DATE.test(rest[0]!);
  return rest.length === 3 && DATE_WORDS.every((re, k) => re.test(rest[k]!));
}

/**
 * How many of `words` (from the start) are public: each word public by {@link kindOf}; a name-like word only in a
 * versioned name (a number or size comes after it) or under a public publisher (`vouched`); a run of digit-only words
 * only as versions and a date ({@link versionRun}: grouped digits are a phone, card or social security number).
 */
function publicWords(words: readonly string[], vouched: boolean): number {
  const kinds = words.map(kindOf);
  const ok = kinds.map((k) => k === 'word' || k === 'number' || (k === 'name-like' && vouched));
  for (let i = 0; i < kinds.length; i++) if (kinds[i] === 'name-like' && !vouched) ok[i] = kinds.slice(i + 1).includes('number');
  for (let i = 0; i < words.length; i++) {
    if (!/^\d+$/.test(words[i]!)) continue;
    let j = i;
    while (j < words.length && /^\d+$/.test(words[j]!)) j++;
    if (!versionRun(words.slice(i, j))) ok[i] = false;
    i = j - 1;
  }
  const first = ok.indexOf(false);
  return first < 0 ? words.length : first;
}

/**
 * The stored form of a model id: as written when it is public (an organisation, if any, among {@link PUBLISHERS};
 * every word public by {@link publicWords}), else its public start followed by `{model:<fingerprint>}`; null when the
 * value is not a model id at all (it holds `@`, whitespace or a credential's shape, or is over 128 characters): the
 * trace keeps its length only.
 */
export function storedModelId(v: string, fp: Fingerprinter): string | null {
  if (v.length === 0 || v.length > 128 || NOT_A_MODEL.test(v) || !/^[A-Za-z0-9][A-Za-z0-9._:/+-]*$/.test(v)) return null;
  const slash = v.indexOf('/');
  // `org/name`: an organisation that is not a public model publisher is somebody's (a user, a team, a company).
  if (slash >= 0 && !PUBLISHERS.has(v.slice(0, slash).toLowerCase())) return `${MODEL_TOKEN_OPEN}${fp.name(v)}}`;
  const words: Array<{ text: string; end: number; start: number }> = [];
  for (const m of v.matchAll(/[^-_.:/+]+/g)) words.push({ text: m[0], start: m.index!, end: m.index! + m[0].length });
  const orgWords = slash >= 0 ? words.filter((w) => w.end <= slash).length : 0;
  const n = orgWords + publicWords(words.slice(orgWords).map((w) => w.text), slash >= 0);
  if (n === words.length) return v;
  // The public start with its separators (`ft:gpt-4o-mini:`), then the token.
  return `${v.slice(0, words[n]!.start)}${MODEL_TOKEN_OPEN}${fp.name(v)}}`;
}

/** How a fingerprinted model id's token begins. */
export const MODEL_TOKEN_OPEN = '{model:';

/** True when a stored model id (body or path) has a fingerprinted part: the target cannot know it by that name. */
export function isFingerprintedModel(id: string): boolean {
  return id.includes(MODEL_TOKEN_OPEN);
}
