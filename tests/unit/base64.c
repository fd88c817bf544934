/* unit tests for src/lib/base64.c */
#include <string.h>

#include "base64.h"
#include "tap.h"

struct pair {
	const char *plain;
	size_t len;
	const char *enc;
};

/* RFC 4648 section 10, and the AUTH PLAIN example of RFC 4954 */
static const struct pair pairs[] = {
	{"", 0, ""},
	{"f", 1, "Zg=="},
	{"fo", 2, "Zm8="},
	{"foo", 3, "Zm9v"},
	{"foob", 4, "Zm9vYg=="},
	{"fooba", 5, "Zm9vYmE="},
	{"foobar", 6, "Zm9vYmFy"},
	{"\0tim\0tanstaaftanstaaf", 21, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"},
	{"\xff\xfe\xfd", 3, "//79"},
};

static const char *const bad[] = {
	"Zg",        /* not a multiple of four */
	"Zg=",       /* short padding */
	"Z===",      /* too much padding */
	"Zh==",      /* nonzero unused bits */
	"Zm9=",      /* nonzero unused bits */
	"Zg==Zg==",  /* padding before the end */
	"Zm 9v",     /* white space */
	"Zm9v\r\n",  /* a line ending */
	"Zm-v",      /* the URL alphabet */
	"=Zm9",      /* padding first */
	"Zm=v",      /* padding in the middle */
};

int
main(void)
{
	str s = STR_INIT;
	size_t i;

	for (i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		s.len = 0;
		ok(b64_encode(&s, pairs[i].plain, pairs[i].len) == 0,
		   "encode %s", pairs[i].enc);
		is_mem(s.s, s.len, pairs[i].enc, strlen(pairs[i].enc),
		       "encoding of %zu bytes", pairs[i].len);
		ok(b64_decode(&s, pairs[i].enc, strlen(pairs[i].enc)) == 0,
		   "decode %s", pairs[i].enc);
		is_mem(s.s, s.len, pairs[i].plain, pairs[i].len,
		       "decoding of %s", pairs[i].enc);
		ok(s.s[s.len] == 0, "decoding of %s is NUL-terminated",
		   pairs[i].enc);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ok(b64_decode(&s, bad[i], strlen(bad[i])) == -2 && s.len == 0,
		   "refused: \"%s\"", bad[i]);
	str_free(&s);
	return done_testing();
}
