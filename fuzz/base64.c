/*
 * base64.c: fuzz target for the strict base64 decoder (SMTP AUTH
 * responses): whatever decodes must encode back to the same bytes, and the
 * decoding of an encoding must be the original.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	str d = STR_INIT, e = STR_INIT, back = STR_INIT;
	int r = b64_decode(&d, (const char *)data, size);

	if (r == 0) {
		if (d.len > size / 4 * 3 || b64_encode(&e, d.s, d.len) == -1)
			abort();
		if (e.len != size || memcmp(e.s, data, size))
			abort(); /* a second spelling of the same bytes */
	} else if (r != -2 && r != -1)
		abort();
	e.len = 0;
	if (b64_encode(&e, (const char *)data, size) == 0) {
		if (b64_decode(&back, e.s, e.len) != 0 || back.len != size ||
		    memcmp(back.s, data, size))
			abort();
	}
	str_free(&d);
	str_free(&e);
	str_free(&back);
	return 0;
}
