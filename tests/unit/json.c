/* unit tests for src/lib/json.c */
#include <string.h>

#include "json.h"
#include "tap.h"

struct tcase {
	const char *in;
	size_t len;
	const char *want;
};

#define C(lit, want)                                                           \
	{                                                                      \
		lit, sizeof lit - 1, want                                      \
	}

static const struct tcase cases[] = {
    C("", "\"\""), C("plain@example.org", "\"plain@example.org\""),
    C("a\"b\\c", "\"a\\\"b\\\\c\""), C("tab\tnl\ncr\r", "\"tab\\tnl\\ncr\\r\""),
    C("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\""),
    C("nul\0in", "\"nul\\u0000in\""),
    /* valid UTF-8 is kept: 2, 3 and 4 bytes */
    C("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80",
      "\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\""),
    /* bytes that are not valid UTF-8 become U+0080..U+00FF */
    C("\xff", "\"\\u00ff\""), C("\xc3", "\"\\u00c3\""), /* truncated */
    C("\xc3x", "\"\\u00c3x\""),                         /* bad continuation */
    C("\xc0\xaf", "\"\\u00c0\\u00af\""),                /* overlong '/' */
    C("\xe0\x80\xaf", "\"\\u00e0\\u0080\\u00af\""),     /* overlong */
    C("\xed\xa0\x80", "\"\\u00ed\\u00a0\\u0080\""),     /* surrogate */
    C("\xf4\x90\x80\x80", "\"\\u00f4\\u0090\\u0080\\u0080\""), /* > U+10FFFF */
    C("\x80", "\"\\u0080\""), /* lone continuation */
};

int
main(void)
{
	str out = STR_INIT;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof *cases; i++) {
		out.len = 0;
		is_int(json_str(&out, cases[i].in, cases[i].len), 0,
		       "json_str case %zu", i);
		is_mem(out.s, out.len, cases[i].want, strlen(cases[i].want),
		       "... %s", cases[i].want);
	}
	str_copys(&out, "[");
	is_int(json_strs(&out, "x"), 0, "json_strs appends");
	is_mem(out.s, out.len, "[\"x\"", 4, "... after what was there");
	str_free(&out);
	return done_testing();
}
