/* unicode.c - UTF-8 and character classes for the tokenizers. */
#include "unicode.h"

int rb_utf8_len(uint8_t lead) {
    /* indexed by the high nibble: 0xxx -> 1, 10xx (stray) -> 1, 110x -> 2, 1110 -> 3, 1111 -> 4 */
    static const uint8_t len_by_nibble[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len_by_nibble[lead >> 4];
}

static int is_cont(uint8_t b) { return (b & 0xC0) == 0x80; }

uint32_t rb_utf8_decode(const uint8_t *s, size_t n, size_t *used) {
    uint8_t b0 = s[0];
    *used = 1;
    if (b0 < 0x80)
        return b0;
    if ((b0 & 0xE0) == 0xC0 && n >= 2 && is_cont(s[1])) {
        *used = 2;
        return ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
    }
    if ((b0 & 0xF0) == 0xE0 && n >= 3 && is_cont(s[1]) && is_cont(s[2])) {
        *used = 3;
        return ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    }
    if ((b0 & 0xF8) == 0xF0 && n >= 4 && is_cont(s[1]) && is_cont(s[2]) && is_cont(s[3])) {
        *used = 4;
        return ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
    return RB_CPT_REPLACEMENT;
}

size_t rb_utf8_valid(const uint8_t *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if (!is_cont(s[i])) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

size_t rb_utf8_size(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

size_t rb_utf8_encode(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | ((cp >> 18) & 0x07));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

static int in_ranges(const struct rb_cpt_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n; /* binary search for the range whose first <= cp */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r[mid].last < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && r[lo].first <= cp && cp <= r[lo].last;
}

int rb_cpt_is_letter(uint32_t cp) {
    if (cp < 0x80) /* fast path for ASCII */
        return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_ranges(rb_unicode_letters, rb_unicode_letters_count, cp);
}

int rb_cpt_is_number(uint32_t cp) {
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return in_ranges(rb_unicode_numbers, rb_unicode_numbers_count, cp);
}

int rb_cpt_is_punct(uint32_t cp) {
    return in_ranges(rb_unicode_punct, rb_unicode_punct_count, cp);
}

int rb_cpt_is_whitespace(uint32_t cp) {
    /* llama.cpp's \s set (unicode.cpp): the ASCII controls \t..\r, space,
     * NEL, NBSP and the Unicode space separators and line/paragraph separators */
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
    case 0x202F: case 0x205F: case 0x3000:
        return 1;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}
