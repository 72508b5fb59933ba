/**
 * The values a load parameter may keep (issue 10: a card number sent as `seed`, a ten-digit `n` or a `temperature`
 * carrying digits must not reach a trace). Each known parameter has its domain, from the OpenAI, vLLM, TGI and
 * Ollama API references; a value outside it is not kept (the skeleton keeps its type). Fractions keep at most two
 * decimals (`0.7`, `0.95`): a value with more is rounded, since no server's load depends on the third.
 */
interface Domain {
  min: number;
  max: number;
  integer: boolean;
}

/** Longest output any server asks for: above the largest context windows (10M tokens). */
const MAX_OUTPUT = 10_000_000;

const DOMAINS: Record<string, Domain> = {
  max_tokens: { min: 0, max: MAX_OUTPUT, integer: true },
  max_completion_tokens: { min: 0, max: MAX_OUTPUT, integer: true },
  min_tokens: { min: 0, max: MAX_OUTPUT, integer: true },
  max_new_tokens: { min: 0, max: MAX_OUTPUT, integer: true },
  num_predict: { min: -2, max: MAX_OUTPUT, integer: true },
  num_ctx: { min: 0, max: MAX_OUTPUT, integer: true },
  n: { min: 1, max: 128, integer: true },
  best_of: { min: 1, max: 128, integer: true },
  beam_width: { min: 1, max: 128, integer: true },
  top_k: { min: -1, max: 100_000, integer: true },
  logprobs: { min: 0, max: 20, integer: true },
  top_logprobs: { min: 0, max: 20, integer: true },
  temperature: { min: 0, max: 2, integer: false },
  top_p: { min: 0, max: 1, integer: false },
  min_p: { min: 0, max: 1, integer: false },
  typical_p: { min: 0, max: 1, integer: false },
  presence_penalty: { min: -2, max: 2, integer: false },
  frequency_penalty: { min: -2, max: 2, integer: false },
  repetition_penalty: { min: 0, max: 10, integer: false },
  repeat_penalty: { min: 0, max: 10, integer: false },
};

/** Parameters whose presence drives load but whose value is somebody's (a `seed` can be anything at all). */
const PRESENCE_ONLY = new Set(['seed']);

/**
 * The value a parameter keeps, or undefined when it keeps none (out of its domain, or presence-only). Booleans (flags
 * such as `stream`, `ignore_eos`) are kept; numbers of a parameter without a stated domain (a policy's own) are kept
 * when they are short (an integer of at most 6 digits, or a fraction rounded to two decimals within ±10⁶).
 */
export function keptParamValue(key: string, value: number | boolean): number | boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (PRESENCE_ONLY.has(key) || !Number.isFinite(value)) return undefined;
  const d = DOMAINS[key] ?? { min: -999_999, max: 999_999, integer: false };
  if (value < d.min || value > d.max) return undefined;
  if (d.integer) return Number.isInteger(value) ? value : undefined;
  return Number.isInteger(value) ? value : Math.round(value * 100) / 100;
}
