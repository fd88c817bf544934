/*
 * lasterr.c: fuzz target for lasterr_parse() (the last-error records of
 * queue/error) and json_str() on what it finds.  Every entry must be
 * findable, recipients unique and sorted; writing the entries back with
 * lasterr_rec() and parsing again gives the same entries; every JSON
 * string is quoted and holds no raw control byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "lasterr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lasterr le = LASTERR_INIT, again = LASTERR_INIT;
	str j = STR_INIT;
	size_t i, k;

	if (str_copyb(&le.data, (const char *)data, size) == -1 ||
	    lasterr_parse(&le) == -1)
		abort();
	for (i = 0; i < le.n; i++) {
		if (lasterr_find(&le, le.v[i].rcpt) != &le.v[i])
			abort();
		if (i && strcmp(le.v[i - 1].rcpt, le.v[i].rcpt) >= 0)
			abort();
		if (le.v[i].kind != 'Z' && le.v[i].kind != 'D')
			abort();
		if (lasterr_rec(&again.data, le.v[i].rcpt, le.v[i].kind,
		                (time_t)le.v[i].when, le.v[i].text) == -1)
			abort();
		j.len = 0;
		if (json_strs(&j, le.v[i].text) == -1 || j.len < 2 ||
		    j.s[0] != '"' || j.s[j.len - 1] != '"')
			abort();
		for (k = 0; k < j.len; k++)
			if ((unsigned char)j.s[k] < 0x20 || j.s[k] == 0x7f)
				abort();
	}
	if (lasterr_parse(&again) == -1 || again.n != le.n)
		abort();
	for (i = 0; i < le.n; i++)
		if (strcmp(again.v[i].rcpt, le.v[i].rcpt) ||
		    again.v[i].kind != le.v[i].kind ||
		    (le.v[i].when >= 0 && again.v[i].when != le.v[i].when) ||
		    strncmp(again.v[i].text, le.v[i].text, LASTERR_TEXT))
			abort();
	/* arbitrary bytes as one JSON string */
	j.len = 0;
	if (json_str(&j, (const char *)data, size) == -1)
		abort();
	for (k = 0; k < j.len; k++)
		if ((unsigned char)j.s[k] < 0x20 || j.s[k] == 0x7f)
			abort();
	lasterr_free(&le);
	lasterr_free(&again);
	str_free(&j);
	return 0;
}
