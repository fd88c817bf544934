/* unit tests for src/lib/smtpreply.c */
#include <errno.h>
#include <string.h>

#include "smtpreply.h"
#include "tap.h"

static struct smtp_reply r = SMTP_REPLY_INIT;

/* parse s (len bytes, or strlen) and return the parser's result */
static int
parse(const char *s, size_t len, size_t *used)
{
	size_t u = 0;
	int x = smtp_reply_parse(s, len ? len : strlen(s), &u, &r);

	if (used)
		*used = u;
	return x;
}

struct good {
	const char *in;
	int code;
	size_t nline;
	const char *text;
};

static const struct good goods[] = {
    {"250 ok\r\n", 250, 1, "250 ok"},
    {"250 ok\n", 250, 1, "250 ok"},
    {"250\r\n", 250, 1, "250"},
    {"221 2.0.0 bye\r\n", 221, 1, "221 2.0.0 bye"},
    {"550-5.1.1 first\r\n550 5.1.1 second\r\n", 550, 2,
     "550-5.1.1 first 550 5.1.1 second"},
    {"550 5.1.1 a\0b\rc\x1b[31m\r\n", 550, 1, "550 5.1.1 a?b?c?[31m"},
    {"550 tab\there\r\n", 550, 1, "550 tab here"},
    {"550 caf\xc3\xa9\r\n", 550, 1, "550 caf??"},
    {"354 go\r\n", 354, 1, "354 go"},
    {"421-\r\n421 \r\n", 421, 2, "421- 421 "},
};

static const char *const bads[] = {
    "hello\r\n",          /* no code */
    "25 ok\r\n",          /* two digits */
    "2500 ok\r\n",        /* four digits */
    "25x ok\r\n",         /* not a digit */
    "150 ok\r\n",         /* 1xx is not SMTP */
    "650 ok\r\n",         /* nor 6xx */
    "250-a\r\n251 b\r\n", /* continuation with another code */
    "250-a\r\n550 b\r\n",
    "250-a\r\nbogus\r\n",
    "\r\n",
    "x", /* refused before the line ends */
};

int
main(void)
{
	char big[SMTP_REPLY_LINE_MAX + 10];
	str many = STR_INIT;
	size_t i, used;
	const char *arg;

	for (i = 0; i < sizeof goods / sizeof *goods; i++) {
		const struct good *g = &goods[i];
		size_t len = strlen(g->in);

		if (i == 5)
			len = 22; /* has a NUL */
		is_int(parse(g->in, len, &used), 1, "good %zu parses", i);
		is_int(used, len, "good %zu: all bytes used", i);
		is_int(r.code, g->code, "good %zu: code", i);
		is_int(r.nline, g->nline, "good %zu: lines", i);
		is_str(r.text.s, g->text, "good %zu: text", i);
	}
	for (i = 0; i < sizeof bads / sizeof *bads; i++) {
		errno = 0;
		is_int(parse(bads[i], 0, 0), -1, "bad %zu refused", i);
		is_int(errno, EPROTO, "bad %zu: EPROTO", i);
	}

	/* incomplete replies wait for more */
	is_int(parse("250 ok", 0, 0), 0, "no line end yet");
	is_int(parse("250-a\r\n250 b", 0, 0), 0, "last line not ended");
	is_int(parse("250-a\r\n", 0, 0), 0, "continuation pending");
	is_int(parse("", 0, 0), 0, "empty input waits");

	/* only the first reply is taken */
	is_int(parse("250 one\r\n251 two\r\n", 0, &used), 1, "two replies");
	is_int(used, 9, "first reply's bytes only");
	is_str(r.text.s, "250 one", "first reply's text");

	/* line length cap */
	memset(big, 'a', sizeof big);
	memcpy(big, "250 ", 4);
	is_int(parse(big, SMTP_REPLY_LINE_MAX - 1, 0), 0,
	       "a line just under the cap waits");
	is_int(parse(big, SMTP_REPLY_LINE_MAX, 0), -1,
	       "a line at the cap without its end is refused");
	big[SMTP_REPLY_LINE_MAX - 2] = '\r';
	big[SMTP_REPLY_LINE_MAX - 1] = '\n';
	is_int(parse(big, SMTP_REPLY_LINE_MAX, &used), 1,
	       "a line of exactly the cap is fine");
	is_int(r.text.len, SMTP_REPLY_TEXT_MAX, "its text is cut");
	ok(!memcmp(r.text.s + r.text.len - 3, "...", 3), "cut text ends ...");

	/* total cap */
	for (i = 0; many.len < SMTP_REPLY_MAX + 100; i++)
		str_cats(&many,
		         "250-0123456789012345678901234567890123456789\r\n");
	str_cats(&many, "250 end\r\n");
	is_int(parse(many.s, many.len, 0), -1, "a reply over 64 KB is refused");
	many.len = 0;
	for (i = 0; i < 100; i++)
		str_cats(&many, "250-0123456789\r\n");
	str_cats(&many, "250 end\r\n");
	is_int(parse(many.s, many.len, 0), 1, "100 lines are fine");
	is_int(r.nline, 101, "101 lines counted");
	ok(r.text.len <= SMTP_REPLY_TEXT_MAX, "text bounded");
	str_free(&many);

	/* EHLO keywords */
	is_int(parse("250-mx.test greets you\r\n250-PIPELINING\r\n"
	             "250-size 1000\r\n250-8BITMIME\r\n"
	             "250 ENHANCEDSTATUSCODES\r\n",
	             0, 0),
	       1, "EHLO reply");
	ok(smtp_reply_ehlo(&r, "PIPELINING", 0), "PIPELINING offered");
	ok(smtp_reply_ehlo(&r, "SIZE", &arg) && !strcmp(arg, "1000"),
	   "SIZE 1000, any case");
	ok(smtp_reply_ehlo(&r, "8BITMIME", 0), "8BITMIME offered");
	ok(smtp_reply_ehlo(&r, "ENHANCEDSTATUSCODES", 0), "last line counts");
	ok(!smtp_reply_ehlo(&r, "STARTTLS", 0), "STARTTLS not offered");
	ok(!smtp_reply_ehlo(&r, "MX.TEST", 0), "the first line is no keyword");
	ok(!smtp_reply_ehlo(&r, "PIPE", 0), "no prefix matches");
	is_int(parse("250-mx.test\r\n250 SIZE\r\n", 0, 0), 1, "bare SIZE");
	ok(smtp_reply_ehlo(&r, "SIZE", &arg) && !*arg, "SIZE without limit");

	smtp_reply_free(&r);
	return done_testing();
}
