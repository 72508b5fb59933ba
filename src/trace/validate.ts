/**
 * A trace is untrusted input: traces travel between teams, and every size and offset in one drives an allocation or a
 * wait somewhere (a prompt of `messageTokens` tokens, a string of `sizes[k]` characters, a uniform array of
 * `sizes[k]` elements, `binaryBytes` of tensor data, a send `offset_us` after the start). This module states the caps
 * a record must keep and checks a record against them **as it is read**, before anything is built from it, so a
 * hostile or damaged record is refused with a sentence saying what is wrong instead of exhausting memory, hanging a
 * replay or throwing from deep inside synthesis.
 *
 * Every cap is one named constant here. A record over a cap is refused whole (the reader counts it and reads on, or
 * throws in strict mode); the trace's meta and tables are checked when it is opened and refuse the whole trace.
 */
export * from './validate/caps.ts';
export * from './validate/problems.ts';
export * from './validate/skeleton.ts';
export * from './validate/features.ts';
export * from './validate/record.ts';
export * from './validate/meta.ts';
