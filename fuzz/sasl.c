/*
 * sasl.c: fuzz target for the SASL PLAIN message split (AUTH PLAIN in
 * moat-smtpd): what it returns lies inside the message, the user has no
 * NUL, and the password ends at the message's end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *m = malloc(size + 1);
	const char *user, *pass;
	size_t ulen;

	if (!m)
		return 0;
	memcpy(m, data, size);
	m[size] = 0;
	if (sasl_plain(m, size, &user, &ulen, &pass) == 0) {
		if (user <= m || user + ulen >= m + size || !ulen ||
		    memchr(user, 0, ulen) || user[ulen] != 0)
			abort();
		if (pass != user + ulen + 1 || pass >= m + size ||
		    strlen(pass) != (size_t)(m + size - pass))
			abort();
	}
	free(m);
	return 0;
}
