/*
 * addr.c: fuzz target for addr_path() and addr_domain_ok().
 *
 * Every input is parsed with both flag sets.  What parses must come out
 * NUL-terminated, printable ASCII only, within RFC 5321's lengths, with a
 * valid domain after the last '@'; ADDR_NOAT may only accept more, never
 * parse an accepted path differently.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *s, size_t size, int flags, int r, const str *out, size_t rest)
{
	size_t i, dlen;
	const char *d;

	if (r != ADDR_OK && r != ADDR_SYNTAX && r != ADDR_TOOLONG &&
	    r != ADDR_NOMEM)
		abort();
	if (r != ADDR_OK)
		return;
	if (rest > size || !out->s || out->s[out->len] != 0)
		abort();
	if (out->len > ADDR_PATH_MAX - 2)
		abort();
	for (i = 0; i < out->len; i++)
		if ((unsigned char)out->s[i] < 32 || (unsigned char)out->s[i] > 126)
			abort();
	/* the path ends at the end or before a space (parameters) */
	if (rest < size && s[rest] != ' ' && s[rest - 1] != '>')
		abort();
	if (out->len == 0)
		return; /* "<>" */
	d = addr_domain(out->s, out->len, &dlen);
	if (!(flags & ADDR_NOAT) && !d)
		abort();
	if (!(flags & ADDR_NOAT) &&
	    (dlen > ADDR_DOMAIN_MAX || !addr_domain_ok(d, dlen)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static str out0, out1;
	const char *s = (const char *)data;
	size_t rest0 = SIZE_MAX, rest1 = SIZE_MAX;
	int r0, r1;

	r0 = addr_path(s, size, 0, &out0, &rest0);
	check(s, size, 0, r0, &out0, rest0);
	r1 = addr_path(s, size, ADDR_NOAT, &out1, &rest1);
	check(s, size, ADDR_NOAT, r1, &out1, rest1);
	if (r0 == ADDR_OK &&
	    (r1 != ADDR_OK || rest0 != rest1 || out0.len != out1.len ||
	     memcmp(out0.s, out1.s, out0.len)))
		abort();

	if (addr_domain_ok(s, size)) {
		size_t i;

		if (size == 0 || size > ADDR_DOMAIN_MAX)
			abort();
		for (i = 0; i < size; i++)
			if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] > 126)
				abort();
	}
	return 0;
}
