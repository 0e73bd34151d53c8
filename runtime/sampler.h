/* sampler.h - token sampling (the API is in rbee.h: rbee_sampler_*).
 * Order, as llama.cpp's default chain: repetition penalty, top-k, top-p,
 * min-p (on the softmax of the penalized logits), temperature, draw.
 * temp <= 0 is greedy after the penalty (ties go to the lowest id). */
#ifndef RB_SAMPLER_H
#define RB_SAMPLER_H

#include <stdint.h>
#include "rbee.h"

/* Deterministic generator shared by the sampler and tests: a uniform
 * float in [0, 1) from a 64-bit state (xorshift64*). */
float rb_rand_uniform(uint64_t *state);

#endif
