/*
 * forkserver.c: fuzz target for fs_var_ok() of forkserver.h, the check of
 * the variables a fork server's child sets (moat-smtpd's connection
 * variables, moat-remote's MOAT_DOWN_HOSTS).
 *
 * The input is read as a request's variables: NUL-separated pieces, each
 * checked on its own (copied to a buffer of exactly its length, so a read
 * past it is caught), and the whole input as one piece, NULs and all.
 * fs_var_ok must say yes exactly when the name before the first '=' is one
 * of the eight a request may set and every byte after it is printable
 * ASCII other than space (0x21 to 0x7e): so no request can set PATH or
 * LD_PRELOAD, nor put a control byte, a space or a NUL into a value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forkserver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
	"PROTO",         "TCPLOCALIP",    "TCPLOCALPORT", "TCPREMOTEIP",
	"TCPREMOTEPORT", "TCPREMOTEHOST", "RELAYCLIENT",  "MOAT_DOWN_HOSTS",
};

/* what fs_var_ok must answer, worked out here independently */
static int
want(const unsigned char *v, size_t len)
{
	size_t n, i;
	int known = 0;

	for (n = 0; n < len && v[n] != '='; n++)
		;
	if (n == len)
		return 0;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strlen(names[i]) == n && !memcmp(names[i], v, n))
			known = 1;
	for (i = n + 1; i < len; i++)
		if (v[i] < 0x21 || v[i] > 0x7e)
			return 0;
	return known;
}

static void
check(const unsigned char *v, size_t len)
{
	char *copy = malloc(len ? len : 1);
	int got;

	if (!copy)
		abort();
	if (len)
		memcpy(copy, v, len);
	got = fs_var_ok(copy, len);
	if (got != 0 && got != 1)
		abort();
	if (got != want(v, len))
		abort();
	free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;

	while (off < size) {
		const uint8_t *nul = memchr(data + off, 0, size - off);
		size_t len = nul ? (size_t)(nul - (data + off)) : size - off;

		check(data + off, len);
		off += len + 1;
	}
	check(data, size);
	return 0;
}
