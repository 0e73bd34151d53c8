/* unicode.h - the little Unicode the tokenizers need: UTF-8 decoding the way
 * llama.cpp does it (lenient, no overlong/surrogate checks, so we split text
 * exactly as it does), and the character classes of the BPE pre-tokenizers
 * (categories as llama.cpp's tables define them). */
#ifndef RB_UNICODE_H
#define RB_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define RB_CPT_REPLACEMENT 0xFFFDu

/* Length of the UTF-8 sequence a lead byte announces (1..4); stray
 * continuation bytes and 0xF8..0xFF count as 1, as in llama.cpp. */
int rb_utf8_len(uint8_t lead);

/* Decode the code point at s[0..n). Sets *used to the bytes consumed (>= 1).
 * Invalid or truncated sequences give U+FFFD and consume one byte. */
uint32_t rb_utf8_decode(const uint8_t *s, size_t n, size_t *used);

/* Length of the well-formed UTF-8 sequence at s (n >= 1 bytes available),
 * 0 if ill-formed: no overlong forms, surrogates or values past U+10FFFF. */
size_t rb_utf8_valid(const uint8_t *s, size_t n);

/* Encode cp (<= 0x10FFFF) into out (4 bytes of room); returns the byte count. */
size_t rb_utf8_encode(uint32_t cp, uint8_t *out);
/* The byte count rb_utf8_encode gives for cp. */
size_t rb_utf8_size(uint32_t cp);

/* \p{L}, \p{N}, \p{P}, \s as the pre-tokenizer regexes mean them
 * (whitespace per llama.cpp, which no letter, number or punctuation is). */
int rb_cpt_is_letter(uint32_t cp);
int rb_cpt_is_number(uint32_t cp);
int rb_cpt_is_punct(uint32_t cp);
int rb_cpt_is_whitespace(uint32_t cp);

/* Generated tables (unicode_tables.c): sorted inclusive ranges. */
struct rb_cpt_range { uint32_t first, last; };
extern const struct rb_cpt_range rb_unicode_letters[];
extern const size_t rb_unicode_letters_count;
extern const struct rb_cpt_range rb_unicode_numbers[];
extern const size_t rb_unicode_numbers_count;
extern const struct rb_cpt_range rb_unicode_punct[];
extern const size_t rb_unicode_punct_count;

#endif
