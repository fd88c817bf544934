/* unit tests for src/lib/header.c */
#include <stdlib.h>
#include <string.h>

#include "header.h"
#include "tap.h"

/* the mailboxes of a list as "a | b | c", or "!" and the reason's start */
static const char *
parse(const char *v, char *buf, size_t size)
{
	struct hdr_alist al = HDR_ALIST_INIT;
	const char *why;
	size_t i, o = 0;
	int r = hdr_alist(v, strlen(v), &al, &why);

	buf[0] = 0;
	if (r != HDR_OK) {
		snprintf(buf, size, "!%s", why);
		hdr_alist_free(&al);
		return buf;
	}
	for (i = 0; i < al.n; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? " | " : "",
				      al.text.s + al.m[i].addr);
	hdr_alist_free(&al);
	return buf;
}

struct acase {
	const char *in;
	const char *want; /* "!" + the start of the reason: refused */
};

static const struct acase acases[] = {
	/* plain and named */
	{"a@b.c", "a@b.c"},
	{"  a@b.c  ", "a@b.c"},
	{"a@b.c, d@e.f", "a@b.c | d@e.f"},
	{"Joe <joe@x.org>", "joe@x.org"},
	{"\"Smith, Joe\" <joe@x.org>", "joe@x.org"},
	{"John Q. Public <jqp@x.org>", "jqp@x.org"},
	{"<joe@x.org>", "joe@x.org"},
	{"joe@x.org (Joe Bloggs)", "joe@x.org"},
	{"(lead) joe (in) @ (the) x . org (trail)", "joe@x.org"},
	/* comments nest and quote */
	{"a@b (one (two (three)) \\) still) , c@d", "a@b | c@d"},
	/* folding */
	{"a@b,\n c@d,\n\t e@f", "a@b | c@d | e@f"},
	{"\"Folded\n Name\" <a@b>", "a@b"},
	/* quoted local parts are unquoted */
	{"\"john smith\"@x.org", "john smith@x.org"},
	{"\"a\\\"b\"@x.org", "a\"b@x.org"},
	{"\"a@b\"@x.org", "a@b@x.org"},
	/* bare names (qualified later) */
	{"joe", "joe"},
	{"joe, Ann <ann>", "joe | ann"},
	{"first.last", "first.last"},
	/* groups */
	{"undisclosed-recipients:;", ""},
	{"undisclosed-recipients: ;", ""},
	{"team: a@b, c@d;", "a@b | c@d"},
	{"team: a@b, c@d; , e@f", "a@b | c@d | e@f"},
	{"team: Ann <a@b>, (x) c@d ;", "a@b | c@d"},
	{"team:", ""},
	{"team: a@b", "a@b"},
	/* empty elements, empty list */
	{"", ""},
	{" , ,a@b,, ,", "a@b"},
	/* obsolete routes are dropped */
	{"<@r1.org,@r2.org:joe@x.org>", "joe@x.org"},
	{"Joe <@r1.org:joe@x.org>", "joe@x.org"},
	/* literals */
	{"a@[192.0.2.1]", "a@[192.0.2.1]"},
	{"a@[IPv6:2001:db8::1]", "a@[IPv6:2001:db8::1]"},
	/* encoded words are atoms, left alone */
	{"=?UTF-8?B?w6lsw6huZQ==?= <e@x.org>", "e@x.org"},
	{"=?iso-8859-1?q?J=F6rg?= <j@x.org>, b@c", "j@x.org | b@c"},
	/* 8-bit in a display name (RFC 6532) */
	{"J\xc3\xb6rg <j@x.org>", "j@x.org"},
	/* stray dots in local parts occur in the wild */
	{"a..b@x.org", "a..b@x.org"},
	{"a.@x.org", "a.@x.org"},
	/* plus signs (plusdomain) are atext */
	{"a@host+", "a@host+"},

	/* refused */
	{"a@b c@d", "!a word after an address"},
	{"Joe Bloggs", "!a word after an address"},
	{"<a@b", "!a '<' without"},
	{"a@b>", "!a '>' without"},
	{"\"open", "!a quoted string without"},
	{"(open", "!a comment without"},
	{"(a (b) c", "!a comment without"},
	{"a) b", "!a ')' without"},
	{"a@", "!no domain after"},
	{"a@,b", "!no domain after"},
	{"@b", "!an address with nothing before"},
	{"a@b..c", "!a domain that ends"},
	{"a@b.", "!a domain that ends"},
	{"<>", "!an empty address"},
	{"Joe <>", "!an empty address"},
	{"a@b;", "!a ';' outside"},
	{"g: h: a@b;;", "!a group inside a group"},
	{": a@b;", "!a group without a name"},
	{"a\\b@c", "!a backslash outside"},
	{"a@[1.2.3.4", "!a domain literal without"},
	{"a@[1.2 .3.4]", "!a bad character in a domain literal"},
	{"a@b]", "!a ']' without"},
	{"\xc3\xbc@x.org", "!a non-ASCII character"},
	{"a@\xc3\xbc.org", "!a non-ASCII character"},
	{"\"\"@x.org", "!an empty local part"},
	{"a@b\nc@d", "!a line break that is not a fold"},
	{"a@b\r\n c@d", "!a control character"},
	{"a\x01@b", "!a control character"},
	{"\"a\x01\"@b", "!a control character in a quoted"},
	{"Joe <a@b c>", "!something other than '>'"},
	{"<@r1:>", "!an empty address"},
	{"<@:a@b>", "!no domain after"},
	{"[1.2.3.4]", "!a domain literal where"},
};

/* a test name on one line: control bytes shown as \xHH */
static const char *
shown(const char *s)
{
	static char out[512];

	return tap_esc_(s, strlen(s), out, sizeof out);
}

static void
test_alists(void)
{
	char buf[2048];
	size_t i;

	for (i = 0; i < sizeof acases / sizeof *acases; i++) {
		const char *got = parse(acases[i].in, buf, sizeof buf);

		if (acases[i].want[0] == '!')
			ok(!strncmp(got, acases[i].want,
				    strlen(acases[i].want)),
			   "refused: %s (%s)", shown(acases[i].in), got);
		else
			is_str(got, acases[i].want, "list: %s",
			       shown(acases[i].in));
	}
}

/* offsets: what lies at lstart..lend and dstart..dend */
static void
test_offsets(void)
{
	struct hdr_alist al = HDR_ALIST_INIT;
	const char *v = "Joe <joe (c) @ (d) x.org>, \"q s\"@[1.2.3.4], bare (B)";
	const char *why;
	int r = hdr_alist(v, strlen(v), &al, &why);

	is_int(r, HDR_OK, "offsets: parses");
	is_int(al.n, 3, "offsets: three mailboxes");
	if (al.n != 3)
		return;
	is_mem(v + al.m[0].lstart, al.m[0].lend - al.m[0].lstart, "joe", 3,
	       "offsets: local part 1");
	is_mem(v + al.m[0].dstart, al.m[0].dend - al.m[0].dstart, "x.org", 5,
	       "offsets: domain 1");
	is_mem(v + al.m[1].lstart, al.m[1].lend - al.m[1].lstart, "\"q s\"", 5,
	       "offsets: quoted local part");
	ok(al.m[1].literal, "offsets: literal");
	ok(!al.m[2].has_domain, "offsets: bare name has no domain");
	is_mem(v + al.m[2].lstart, al.m[2].lend - al.m[2].lstart, "bare", 4,
	       "offsets: bare local part");
	is_int(al.m[2].alen, 4, "offsets: bare internal length");

	/* the same parser reuses the list */
	r = hdr_alist("x@y", 3, &al, &why);
	is_int(al.n, 1, "reuse: one mailbox");
	is_str(al.text.s + al.m[0].addr, "x@y", "reuse: text reset");
	hdr_alist_free(&al);
}

static void
test_kinds(void)
{
	is_int(hdr_line_kind("Subject: x\n", 11), HDR_LINE_FIELD, "kind field");
	is_int(hdr_line_kind("Subject:\n", 9), HDR_LINE_FIELD, "kind empty");
	is_int(hdr_line_kind("Subject : x", 11), HDR_LINE_FIELD,
	       "kind obsolete space before colon");
	is_int(hdr_line_kind(" folded\n", 8), HDR_LINE_CONT, "kind cont");
	is_int(hdr_line_kind("\tfolded", 7), HDR_LINE_CONT, "kind tab cont");
	is_int(hdr_line_kind("\n", 1), HDR_LINE_END, "kind end");
	is_int(hdr_line_kind("", 0), HDR_LINE_END, "kind end no LF");
	is_int(hdr_line_kind("Hello world\n", 12), HDR_LINE_OTHER,
	       "kind body text");
	is_int(hdr_line_kind("From joe Mon Jan 1 10:00:00 2024\n", 33),
	       HDR_LINE_OTHER, "kind mbox From line");
	is_int(hdr_line_kind(": x\n", 4), HDR_LINE_OTHER, "kind empty name");
	is_int(hdr_line_kind("X\xc3\xa9: x\n", 7), HDR_LINE_OTHER,
	       "kind 8-bit name");
	ok(hdr_name_ok("X-Mailer", 8), "name ok");
	ok(!hdr_name_ok("X Mailer", 8), "name with space");
	ok(!hdr_name_ok("", 0), "empty name");
}

static void
test_parse(void)
{
	struct header h = HEADER_INIT;
	const char *msg = "From: a@b\nSubject: one\n two\n\tthree\n"
			  "Subject : obs\nTo: c@d\n\nbody\n";
	const char *why, *v;
	size_t used, n;
	str u = STR_INIT;
	int r;

	r = hdr_parse(&h, msg, strlen(msg), &used, &why);
	is_int(r, HDR_OK, "parse ok");
	is_int(h.n, 4, "four fields");
	is_int(used, strlen(msg) - 5, "stops after the empty line");
	ok(hdr_is(&h, 1, "subject"), "name any case");
	ok(hdr_is(&h, 2, "SUBJECT"), "obsolete name trimmed");
	is_int(hdr_find(&h, "Subject", 2), 2, "find from");
	is_int(hdr_find(&h, "Cc", 0), -1, "find missing");
	v = hdr_value(&h, 1, &n);
	is_mem(v, n, " one\n two\n\tthree", 16, "raw value keeps the folds");
	hdr_unfold(v, n, &u);
	is_str(u.s, "one two\tthree", "unfolded");
	v = hdr_value(&h, 2, &n);
	is_mem(v, n, " obs", 4, "obsolete value");
	is_int(h.f[3].len, 8, "field length through LF");
	hdr_free(&h);

	/* a body line without an empty line before it ends the header */
	msg = "Subject: x\nnot a field\nTo: y\n";
	r = hdr_parse(&h, msg, strlen(msg), &used, &why);
	is_int(r, HDR_OK, "other line: ok");
	is_int(h.n, 1, "other line: one field");
	is_int(used, 11, "other line: not consumed");
	hdr_free(&h);

	/* a last line without LF */
	r = hdr_parse(&h, "A: 1\nB: 2", 9, &used, &why);
	is_int(h.n, 2, "no final LF: two fields");
	v = hdr_value(&h, 1, &n);
	is_mem(v, n, " 2", 2, "no final LF: value");
	hdr_free(&h);

	r = hdr_parse(&h, " cont\nA: 1\n", 11, &used, &why);
	is_int(r, HDR_SYNTAX, "continuation first refused");
	hdr_free(&h);
	r = hdr_parse(&h, "A: 1\0\n", 6, &used, &why);
	is_int(r, HDR_SYNTAX, "NUL refused");
	hdr_free(&h);
	r = hdr_parse(&h, "A: 1\r2\n", 7, &used, &why);
	is_int(r, HDR_SYNTAX, "bare CR refused");
	hdr_free(&h);
	str_free(&u);
}

static void
test_limits(void)
{
	struct header h = HEADER_INIT;
	const char *why;
	char *big = malloc(HDR_FIELD_MAX + 16);
	size_t i;
	int r = HDR_OK;

	memcpy(big, "X: ", 3);
	memset(big + 3, 'a', HDR_FIELD_MAX);
	r = hdr_add_line(&h, big, HDR_FIELD_MAX - 10, &why);
	is_int(r, HDR_OK, "a field just under the limit");
	r = hdr_add_line(&h, " more more more more", 20, &why);
	is_int(r, HDR_TOOLONG, "continuation past the field limit");
	r = hdr_add_line(&h, big, HDR_FIELD_MAX + 3, &why);
	is_int(r, HDR_TOOLONG, "one line past the field limit");
	hdr_free(&h);

	r = HDR_OK;
	for (i = 0; i < HDR_FIELDS_MAX && r == HDR_OK; i++)
		r = hdr_add_line(&h, "X: y", 4, &why);
	is_int(r, HDR_OK, "the most fields");
	r = hdr_add_line(&h, "X: y", 4, &why);
	is_int(r, HDR_TOOLONG, "one field too many");
	hdr_free(&h);

	r = HDR_OK;
	for (i = 0; i < 40 && r == HDR_OK; i++)
		r = hdr_add_line(&h, big, 32 * 1024, &why);
	is_int(r, HDR_TOOLONG, "a header past 1 MiB");
	hdr_free(&h);

	{
		struct hdr_alist al = HDR_ALIST_INIT;
		str l = STR_INIT;

		for (i = 0; i <= HDR_ADDRS_MAX; i++)
			str_cats(&l, "a,");
		r = hdr_alist(l.s, l.len, &al, &why);
		is_int(r, HDR_TOOLONG, "too many addresses");
		r = hdr_alist(big, HDR_FIELD_MAX + 3, &al, &why);
		is_int(r, HDR_TOOLONG, "list too long");
		hdr_alist_free(&al);
		str_free(&l);
	}
	free(big);
}

int
main(void)
{
	test_alists();
	test_offsets();
	test_kinds();
	test_parse();
	test_limits();
	return done_testing();
}
