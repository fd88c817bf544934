/* unit tests for src/lib/sasl.c */
#include <string.h>

#include "sasl.h"
#include "tap.h"

/* m holds n bytes and a NUL after them, as b64_decode leaves it */
static int
split(const char *m, size_t n, const char **u, size_t *ul, const char **p)
{
	char buf[1024];

	memcpy(buf, m, n);
	buf[n] = 0;
	if (sasl_plain(buf, n, u, ul, p) == -1)
		return -1;
	/* point back into m, so the caller can compare after buf is gone */
	*u = m + (*u - buf);
	*p = m + (*p - buf);
	return 0;
}

int
main(void)
{
	static char longer[600];
	const char *u, *p;
	size_t ul;

	ok(split("\0tim\0tanstaaftanstaaf", 21, &u, &ul, &p) == 0 &&
	       ul == 3 && !memcmp(u, "tim", 3) &&
	       !memcmp(p, "tanstaaftanstaaf", 16),
	   "RFC 4616's example: no authzid");
	ok(split("tim\0tim\0pw", 10, &u, &ul, &p) == 0 && ul == 3,
	   "an authzid equal to the authcid");
	ok(split("Kurt\0tim\0pw", 11, &u, &ul, &p) == -1,
	   "another authzid: refused");
	ok(split("\0tim\0", 5, &u, &ul, &p) == -1, "an empty password");
	ok(split("\0\0pw", 4, &u, &ul, &p) == -1, "an empty authcid");
	ok(split("\0tim", 4, &u, &ul, &p) == -1, "one NUL only");
	ok(split("", 0, &u, &ul, &p) == -1, "nothing");
	ok(split("timpw", 5, &u, &ul, &p) == -1, "no NUL");
	ok(split("\0tim\0p\0w", 8, &u, &ul, &p) == -1, "a NUL in the password");
	memset(longer, 'x', sizeof longer);
	longer[0] = 0;
	longer[5] = 0;
	ok(split(longer, 261, &u, &ul, &p) == 0 && ul == 4,
	   "a 255-byte password");
	ok(split(longer, 262, &u, &ul, &p) == -1, "a 256-byte password");
	return done_testing();
}
