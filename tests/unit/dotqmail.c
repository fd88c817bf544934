/* unit tests for src/lib/dotqmail.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotqmail.h"
#include "tap.h"

static struct dotqmail d = DOTQMAIL_INIT;

/* the instructions of d, one "word arg" a line, into a static buffer */
static const char *
shown(void)
{
	static const char *word[] = {"maildir", "mbox", "program", "forward"};
	static char out[4096];
	size_t o = 0, i;

	out[0] = 0;
	for (i = 0; i < d.n && o < sizeof out; i++)
		o += (size_t)snprintf(out + o, sizeof out - o, "%s %s\n",
		                      word[d.v[i].type], d.v[i].arg);
	return out;
}

static int
parse(const char *text, int forwardonly)
{
	return dotqmail_parse(&d, text, strlen(text), forwardonly);
}

/* n copies of line (with its newline) */
static char *
repeat(const char *line, size_t n)
{
	size_t l = strlen(line), i;
	char *s = malloc(l * n + 1);

	if (!s)
		abort();
	for (i = 0; i < n; i++)
		memcpy(s + i * l, line, l);
	s[l * n] = 0;
	return s;
}

/* prefix, then 'x' up to len bytes in all, then suffix */
static char *
long_line(const char *prefix, size_t len, const char *suffix)
{
	size_t p = strlen(prefix), s = strlen(suffix);
	char *b = malloc(len + s + 1);

	if (!b)
		abort();
	memcpy(b, prefix, p);
	memset(b + p, 'x', len - p);
	memcpy(b + len, suffix, s + 1);
	return b;
}

static void
test_kinds(void)
{
	is_int(parse("# mail for joe\n"
	             "./Maildir/\n"
	             "./Mail/lists/\n"
	             "./mbox\n"
	             "/var/mail/archive/joe\n"
	             "|/usr/local/bin/filter --quiet\n"
	             "&me@new.example.com\n"
	             "colleague@example.org\n"
	             "Joe.Bloggs+tag@example.org\n"
	             "&localonly\n",
	             0),
	       DOTQMAIL_OK, "a .qmail with every kind of line");
	is_str(shown(),
	       "maildir ./Maildir/\n"
	       "maildir ./Mail/lists/\n"
	       "mbox ./mbox\n"
	       "mbox /var/mail/archive/joe\n"
	       "program /usr/local/bin/filter --quiet\n"
	       "forward me@new.example.com\n"
	       "forward colleague@example.org\n"
	       "forward Joe.Bloggs+tag@example.org\n"
	       "forward localonly\n",
	       "... each line in order; an address without @ as written");
	is_int(d.ndelivery, 5, "... 5 deliveries");
	is_int(d.nforward, 4, "... 4 forwards");
	is_int(d.line, 0, "... no line at fault");
	ok(!d.forwardonly, "... not forward-only");

	is_int(parse("|preline /usr/bin/procmail\n|\n.\n./\n/\n", 0),
	       DOTQMAIL_OK, "bare |, . and / lines");
	is_str(shown(),
	       "program preline /usr/bin/procmail\nprogram \nmbox .\n"
	       "maildir ./\nmaildir /\n",
	       "... | alone is an empty program (as in qmail); . an mbox; "
	       "/ a Maildir");

	is_int(parse("# only\n#comments\n#./Maildir/\n", 0), DOTQMAIL_OK,
	       "only comments");
	is_int(d.n, 0, "... no instruction");

	is_int(parse("+\n+anything\n+list-of-things\n./Maildir/\n", 0),
	       DOTQMAIL_OK, "+ lines other than +list");
	is_str(shown(), "maildir ./Maildir/\n", "... are ignored");
	ok(!d.forwardonly, "... and do not make it forward-only");

	is_int(parse("./mbox\r\n&a@example.org\r\n", 0), DOTQMAIL_OK,
	       "CRLF lines");
	is_str(shown(), "mbox ./mbox\nforward a@example.org\n",
	       "... the CR is stripped");
	is_int(parse("./Maildir/ \t\r\n./mbox  \n&a@b\t\n|echo  hi \t \n", 0),
	       DOTQMAIL_OK, "trailing blanks");
	is_str(shown(),
	       "maildir ./Maildir/\nmbox ./mbox\nforward a@b\n"
	       "program echo  hi\n",
	       "... trailing spaces, tabs and CRs are stripped, inner ones "
	       "kept");
	is_int(parse("./mbox\rx\n", 0), DOTQMAIL_OK, "a CR inside a line");
	is_str(shown(), "mbox ./mbox\rx\n", "... is kept");
	is_int(parse("./Maildir/\n&a@b", 0), DOTQMAIL_OK, "no final newline");
	is_str(shown(), "maildir ./Maildir/\nforward a@b\n",
	       "... the last line counts");
	is_int(parse("&a@b\n\n\n \t\n./Maildir/\n\n", 0), DOTQMAIL_OK,
	       "blank lines after the first");
	is_str(shown(), "forward a@b\nmaildir ./Maildir/\n", "... are ignored");
	is_int(parse("&\xc3\xa9t\xc3\xa9@example.org\n", 0), DOTQMAIL_OK,
	       "a forward address with 8-bit bytes");
	is_int(d.nforward, 1, "... is taken as it is");
}

static void
test_blank_nul(void)
{
	is_int(dotqmail_parse(&d, "", 0, 0), DOTQMAIL_EBLANK,
	       "an empty text: the first line is blank");
	is_int(dotqmail_parse(&d, 0, 0, 0), DOTQMAIL_EBLANK,
	       "... also with a null pointer");
	is_int(parse("\n./Maildir/\n", 0), DOTQMAIL_EBLANK,
	       "a blank first line");
	is_int(d.line, 1, "... on line 1");
	is_int(d.n, 0, "... nothing taken");
	is_int(parse(" \t\r\n./Maildir/\n", 0), DOTQMAIL_EBLANK,
	       "a first line of only blanks is blank");
	is_int(parse("\n", 1), DOTQMAIL_EBLANK, "... forward-only too");

	is_int(dotqmail_parse(&d, "./Maildir/\n\0\n", 13, 0), DOTQMAIL_ENUL,
	       "a NUL byte");
	is_int(d.line, 2, "... on line 2");
	is_int(d.n, 0, "... nothing taken, not even the line above");
	is_int(dotqmail_parse(&d, "&a@b\0c", 6, 0), DOTQMAIL_ENUL,
	       "a NUL inside an address");
	is_int(dotqmail_parse(&d, "\n\0", 2, 0), DOTQMAIL_ENUL,
	       "a NUL wins over a blank first line");
	is_int(dotqmail_parse(&d, "\0", 1, 0), DOTQMAIL_ENUL, "a NUL alone");
}

static void
test_lengths(void)
{
	static const struct {
		const char *prefix;
		size_t len; /* of the line, prefix included */
		const char *suffix;
		int want;
		const char *name;
	} t[] = {
	    {"./", DOTQMAIL_LINE_MAX, "\n", DOTQMAIL_OK,
	     "a line of DOTQMAIL_LINE_MAX bytes"},
	    {"./", DOTQMAIL_LINE_MAX, " \t \r\n", DOTQMAIL_OK,
	     "... its trailing blanks do not count"},
	    {"./", DOTQMAIL_LINE_MAX + 1, "\n", DOTQMAIL_ELONG,
	     "one byte more: too long"},
	    {"#", DOTQMAIL_LINE_MAX + 1, "\n", DOTQMAIL_ELONG,
	     "a comment line is limited too"},
	    {"|", DOTQMAIL_LINE_MAX + 1, "", DOTQMAIL_ELONG,
	     "an overlong last line without a newline"},
	    {"&", DOTQMAIL_ADDR_MAX + 1, "\n", DOTQMAIL_OK,
	     "a forward address of DOTQMAIL_ADDR_MAX bytes"},
	    {"&", DOTQMAIL_ADDR_MAX + 2, "\n", DOTQMAIL_EADDRLEN,
	     "one byte more: too long"},
	    {"", DOTQMAIL_ADDR_MAX + 1, "@example.org\n", DOTQMAIL_EADDRLEN,
	     "a bare address too long"},
	};
	size_t i;
	char *s;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		s = long_line(t[i].prefix, t[i].len, t[i].suffix);
		is_int(parse(s, 0), t[i].want, "%s", t[i].name);
		free(s);
	}
	s = long_line("./", DOTQMAIL_LINE_MAX, "\n");
	parse(s, 0);
	is_int(d.n == 1 ? strlen(d.v[0].arg) : 0, DOTQMAIL_LINE_MAX,
	       "the longest line is taken whole");
	free(s);
	s = long_line("&a@b\n#", 5 + DOTQMAIL_LINE_MAX + 1, "\n");
	is_int(parse(s, 0), DOTQMAIL_ELONG, "a long line 2");
	is_int(d.line, 2, "... is the line at fault");
	is_str(shown(), "forward a@b\n", "... the line above is kept");
	free(s);
}

static void
test_addresses(void)
{
	static const struct {
		const char *text;
		int want;
		const char *name;
	} t[] = {
	    {"&\n", DOTQMAIL_EADDRLEN, "& alone: an empty address"},
	    {"& \n", DOTQMAIL_EADDRLEN, "& and blanks: empty"},
	    {"& a@example.org\n", DOTQMAIL_EADDRCHAR, "a blank after &"},
	    {"a @example.org\n", DOTQMAIL_EADDRCHAR, "a blank inside"},
	    {"&a\t@example.org\n", DOTQMAIL_EADDRCHAR, "a tab inside"},
	    {"&a\x01@example.org\n", DOTQMAIL_EADDRCHAR, "a control byte"},
	    {"&a\x7f@example.org\n", DOTQMAIL_EADDRCHAR, "a DEL byte"},
	    {"&<a@example.org>\n", DOTQMAIL_EADDRCHAR, "angle brackets"},
	    {"<a@example.org>\n", DOTQMAIL_EADDRCHAR, "... bare"},
	    {"a@example.org>\n", DOTQMAIL_EADDRCHAR, "a closing bracket"},
	    {"Joe <a@example.org>\n", DOTQMAIL_EADDRCHAR, "a name and address"},
	    {"&&a@example.org\n", DOTQMAIL_OK, "&& is an address with an &"},
	};
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(parse(t[i].text, 0), t[i].want, "%s", t[i].name);
	is_int(parse("./Maildir/\n&a@b\n& c@d\n&e@f\n", 0), DOTQMAIL_EADDRCHAR,
	       "a bad address after good lines");
	is_int(d.line, 3, "... on line 3");
	is_str(shown(), "maildir ./Maildir/\nforward a@b\n",
	       "... the lines above are kept, none below");
}

static void
test_counts(void)
{
	char *s, *t;

	s = repeat("./Maildir/\n", DOTQMAIL_DELIVERY_MAX);
	is_int(parse(s, 0), DOTQMAIL_OK, "DOTQMAIL_DELIVERY_MAX deliveries");
	is_int(d.ndelivery, DOTQMAIL_DELIVERY_MAX, "... all taken");
	free(s);
	s = repeat("|true\n", DOTQMAIL_DELIVERY_MAX + 1);
	is_int(parse(s, 0), DOTQMAIL_EDELIVERIES, "one more: refused");
	is_int(d.line, DOTQMAIL_DELIVERY_MAX + 1, "... on that line");
	is_int(d.n, DOTQMAIL_DELIVERY_MAX, "... the ones above kept");
	free(s);
	s = repeat("./mbox\n&a@b\n", DOTQMAIL_DELIVERY_MAX);
	t = malloc(strlen(s) + 20);
	strcpy(t, s);
	strcat(t, "./Maildir/\n");
	is_int(parse(t, 0), DOTQMAIL_EDELIVERIES,
	       "mbox and Maildir lines count together; forwards do not");
	free(s);
	free(t);

	s = repeat("&a@example.org\n", DOTQMAIL_FORWARD_MAX);
	is_int(parse(s, 0), DOTQMAIL_OK, "DOTQMAIL_FORWARD_MAX forwards");
	is_int(d.nforward, DOTQMAIL_FORWARD_MAX, "... all taken");
	free(s);
	s = repeat("a@example.org\n", DOTQMAIL_FORWARD_MAX + 1);
	is_int(parse(s, 0), DOTQMAIL_EFORWARDS, "one more: refused");
	is_int(d.n, DOTQMAIL_FORWARD_MAX, "... the ones above kept");
	free(s);
}

static void
test_forwardonly(void)
{
	is_int(parse("&a@b\nc@d\n", 1), DOTQMAIL_OK,
	       "x bit: forwards are fine");
	ok(d.forwardonly, "... forward-only");
	is_int(parse("&a@b\n|echo x\n", 1), DOTQMAIL_EPROGX,
	       "x bit: a program is refused");
	is_str(shown(), "forward a@b\n", "... the forward above kept");
	is_int(parse("./Maildir/\n", 1), DOTQMAIL_EFILEX,
	       "x bit: a Maildir is refused");
	is_int(parse("# comment\n/var/mail/joe\n", 1), DOTQMAIL_EFILEX,
	       "x bit: an mbox is refused");
	is_int(parse("./Maildir/\n|prog\n+list\n&a@b\n", 0), DOTQMAIL_OK,
	       "+list after deliveries");
	ok(d.forwardonly, "... makes the file forward-only");
	is_int(parse("+list\n&a@b\n|prog\n", 0), DOTQMAIL_EPROGX,
	       "+list: a program below is refused");
	is_int(d.line, 3, "... on line 3");
	is_int(parse("+list \r\n./mbox\n", 0), DOTQMAIL_EFILEX,
	       "+list with trailing blanks counts");
	is_int(parse("+listx\n./mbox\n", 0), DOTQMAIL_OK, "+listx does not");
	is_int(parse("+List\n./mbox\n", 0), DOTQMAIL_OK, "+List does not");
	is_int(parse("+list\n", 0), DOTQMAIL_OK, "+list alone");
	is_int(d.n, 0, "... no instruction");
}

static void
test_reuse(void)
{
	struct dotqmail e = DOTQMAIL_INIT;
	char text[] = "./Maildir/\n&a@b\n";

	is_int(dotqmail_parse(&e, text, strlen(text), 0), DOTQMAIL_OK,
	       "a parse");
	memset(text, 'x', strlen(text));
	is_str(e.n == 2 ? e.v[1].arg : 0, "a@b",
	       "... keeps its own copy of the text");
	is_int(dotqmail_parse(&e, "|x\n", 3, 0), DOTQMAIL_OK,
	       "parsing again into the same struct");
	is_int(e.n, 1, "... replaces what was there");
	dotqmail_free(&e);
	ok(!e.v && !e.buf && !e.n, "dotqmail_free empties it");
	dotqmail_free(&e);
	ok(1, "... and may be called twice");
}

static void
test_strerror(void)
{
	is_str(dotqmail_strerror(DOTQMAIL_EBLANK),
	       "first line of .qmail file is blank", "text: blank");
	is_str(dotqmail_strerror(DOTQMAIL_ENUL), ".qmail contains a NUL byte",
	       "text: NUL");
	is_str(dotqmail_strerror(DOTQMAIL_ELONG),
	       ".qmail has a line longer than 16384 bytes", "text: long line");
	is_str(dotqmail_strerror(DOTQMAIL_EPROGX),
	       ".qmail has prog delivery but has x bit set", "text: prog x");
	is_str(dotqmail_strerror(DOTQMAIL_EFILEX),
	       ".qmail has file delivery but has x bit set", "text: file x");
	is_str(dotqmail_strerror(DOTQMAIL_EDELIVERIES),
	       ".qmail has more than 1000 deliveries", "text: deliveries");
	is_str(dotqmail_strerror(DOTQMAIL_EFORWARDS),
	       ".qmail has more than 10000 forward addresses",
	       "text: forwards");
	is_str(dotqmail_strerror(DOTQMAIL_EADDRLEN),
	       ".qmail has a forward address that is empty or too long",
	       "text: address length");
	is_str(dotqmail_strerror(DOTQMAIL_EADDRCHAR),
	       ".qmail has a forward address with spaces or brackets",
	       "text: address bytes");
	is_str(dotqmail_strerror(DOTQMAIL_ENOMEM), "out of memory",
	       "text: memory");
	is_str(dotqmail_strerror(-1), "unknown error", "text: unknown");
}

int
main(void)
{
	test_kinds();
	test_blank_nul();
	test_lengths();
	test_addresses();
	test_counts();
	test_forwardonly();
	test_reuse();
	test_strerror();
	dotqmail_free(&d);
	return done_testing();
}
