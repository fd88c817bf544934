/*
 * sasl.c: split a SASL PLAIN message (see sasl.h).
 */
#include <string.h>

#include "sasl.h"

int
sasl_plain(const char *m, size_t n, const char **user, size_t *ulen,
           const char **pass)
{
	const char *z1 = n ? memchr(m, 0, n) : 0, *z2, *end = m + n;
	size_t zl, cl, pl;

	if (!z1)
		return -1;
	z2 = memchr(z1 + 1, 0, (size_t)(end - z1 - 1));
	if (!z2 || memchr(z2 + 1, 0, (size_t)(end - z2 - 1)))
		return -1;
	zl = (size_t)(z1 - m);
	cl = (size_t)(z2 - z1 - 1);
	pl = (size_t)(end - z2 - 1);
	if (!cl || !pl || zl > SASL_PART_MAX || cl > SASL_PART_MAX ||
	    pl > SASL_PART_MAX)
		return -1;
	if (zl && (zl != cl || memcmp(m, z1 + 1, cl)))
		return -1;
	*user = z1 + 1;
	*ulen = cl;
	*pass = z2 + 1;
	return 0;
}
