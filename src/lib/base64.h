/*
 * base64.h: RFC 4648 base64, for SMTP AUTH (RFC 4954) challenges and
 * responses.
 *
 * The decoder is strict: the standard alphabet only, padding required to
 * a multiple of four characters, no white space, and the unused bits of the
 * last character must be zero, so every encoding has one decoding and one
 * decoding one encoding.
 */
#ifndef MOAT_BASE64_H
#define MOAT_BASE64_H

#include <stddef.h>

#include "str.h"

/* append the encoding of s[0..n) to out: 0, or -1 out of memory */
int b64_encode(str *out, const char *s, size_t n);
/* replace out by the decoding of s[0..n), NUL-terminated (out->len does
 * not count the NUL; the data may hold NULs): 0, -1 out of memory, or -2
 * when s is not base64 */
int b64_decode(str *out, const char *s, size_t n);

#endif
