/*
 * json.h: JSON output for scripts.
 *
 * json_str() appends a JSON string literal for any n bytes, so the result
 * is always valid JSON: '"' and '\' are escaped, control characters and
 * DEL become \n, \t, \r or \u00XX, valid UTF-8 is copied as it is, and each
 * byte that is not part of valid UTF-8 is written as the character with
 * the same number (\u0080 to \u00ff).
 */
#ifndef MOAT_JSON_H
#define MOAT_JSON_H

#include <stddef.h>

#include "str.h"

int json_str(str *out, const char *s, size_t n); /* 0, or -1 no memory */
int json_strs(str *out, const char *s);          /* NUL-terminated s */

#endif
