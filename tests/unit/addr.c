/* unit tests for src/lib/addr.c */
#include <string.h>

#include "addr.h"
#include "tap.h"

#define NOAT ADDR_NOAT

struct tcase {
	const char *in;
	int flags;
	int want;
	const char *out;  /* on ADDR_OK */
	const char *rest; /* on ADDR_OK: what follows the path */
};

static const struct tcase cases[] = {
	/* the null path */
	{"<>", 0, ADDR_OK, "", ""},
	{"<> SIZE=10", 0, ADDR_OK, "", " SIZE=10"},
	{"  <>", 0, ADDR_OK, "", ""},
	{"<>", NOAT, ADDR_OK, "", ""},

	/* ordinary mailboxes */
	{"<a@b.c>", 0, ADDR_OK, "a@b.c", ""},
	{"<user@example.com>", 0, ADDR_OK, "user@example.com", ""},
	{"<First.Last@Sub.Example.COM>", 0, ADDR_OK, "First.Last@Sub.Example.COM", ""},
	{"<a.b.c@d>", 0, ADDR_OK, "a.b.c@d", ""},
	{"<a+tag@b.c>", 0, ADDR_OK, "a+tag@b.c", ""},
	{"<!#$%&'*+-/=?^_`{|}~@b.c>", 0, ADDR_OK, "!#$%&'*+-/=?^_`{|}~@b.c", ""},
	{"<a@b-c.d>", 0, ADDR_OK, "a@b-c.d", ""},
	{"<a@b_c.d>", 0, ADDR_OK, "a@b_c.d", ""},
	{"<a@1.2.3.4>", 0, ADDR_OK, "a@1.2.3.4", ""},
	{"<a@localhost>", 0, ADDR_OK, "a@localhost", ""},
	{"<a@b.c> SIZE=100 BODY=8BITMIME", 0, ADDR_OK, "a@b.c", " SIZE=100 BODY=8BITMIME"},
	{"<a@b.c>SIZE=1", 0, ADDR_OK, "a@b.c", "SIZE=1"},
	{" <a@b.c>", 0, ADDR_OK, "a@b.c", ""},

	/* bare mailboxes */
	{"a@b.c", 0, ADDR_OK, "a@b.c", ""},
	{"a@b.c SIZE=5", 0, ADDR_OK, "a@b.c", " SIZE=5"},
	{"  a@b.c", 0, ADDR_OK, "a@b.c", ""},
	{"a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"a@b.c,", 0, ADDR_SYNTAX, 0, 0},
	{"postmaster", NOAT, ADDR_OK, "postmaster", ""},
	{"postmaster", 0, ADDR_SYNTAX, 0, 0},

	/* source routes are dropped */
	{"<@x:a@b.c>", 0, ADDR_OK, "a@b.c", ""},
	{"<@x,@y:a@b.c>", 0, ADDR_OK, "a@b.c", ""},
	{"<@x.example,@y.example,@[1.2.3.4]:a@b.c> X=1", 0, ADDR_OK, "a@b.c", " X=1"},
	{"<@x,@y:postmaster>", NOAT, ADDR_OK, "postmaster", ""},
	{"<@x,:a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x,y:a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@:a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x..y:a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x a@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x>", 0, ADDR_SYNTAX, 0, 0},
	{"<@b.c>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x:>", 0, ADDR_SYNTAX, 0, 0},
	{"<@x:@y:a@b.c>", 0, ADDR_SYNTAX, 0, 0},

	/* quoted local parts are unquoted */
	{"<\"a b\"@c.d>", 0, ADDR_OK, "a b@c.d", ""},
	{"\"a b\"@c.d", 0, ADDR_OK, "a b@c.d", ""},
	{"<\"john.doe\"@c.d>", 0, ADDR_OK, "john.doe@c.d", ""},
	{"<\"a..b\"@c.d>", 0, ADDR_OK, "a..b@c.d", ""},
	{"<\"a@b\"@c.d>", 0, ADDR_OK, "a@b@c.d", ""},
	{"<\"a\\\"b\"@c.d>", 0, ADDR_OK, "a\"b@c.d", ""},
	{"<\"a\\\\b\"@c.d>", 0, ADDR_OK, "a\\b@c.d", ""},
	{"<\"\\a\\b\\c\"@c.d>", 0, ADDR_OK, "abc@c.d", ""},
	{"<\"a>b\"@c.d>", 0, ADDR_OK, "a>b@c.d", ""},
	{"<\"a b\">", NOAT, ADDR_OK, "a b", ""},
	{"<\"a b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\\\">", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\"b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\"b\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\tb\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\\\tb\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\rb\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"a\x7f" "b\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\\b@c.d>", 0, ADDR_SYNTAX, 0, 0},

	/* address literals */
	{"<a@[1.2.3.4]>", 0, ADDR_OK, "a@[1.2.3.4]", ""},
	{"<a@[255.255.255.255]>", 0, ADDR_OK, "a@[255.255.255.255]", ""},
	{"<a@[IPv6:::1]>", 0, ADDR_OK, "a@[IPv6:::1]", ""},
	{"<a@[ipv6:2001:db8::1]>", 0, ADDR_OK, "a@[ipv6:2001:db8::1]", ""},
	{"<a@[IPv6:::ffff:1.2.3.4]>", 0, ADDR_OK, "a@[IPv6:::ffff:1.2.3.4]", ""},
	{"a@[1.2.3.4] SIZE=1", 0, ADDR_OK, "a@[1.2.3.4]", " SIZE=1"},
	{"<a@[1.2.3.256]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[1.2.3]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[1.2.3.4.5]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[::1]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[IPv6:1.2.3.4]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[IPv6:]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[IPv6:::1::2]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[1.2.3.4>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@1.2.3.4]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[ 1.2.3.4]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[1.2.3.4 ]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[x:1.2.3.4]>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@[localhost]>", 0, ADDR_SYNTAX, 0, 0},

	/* bad local parts */
	{"<@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"@c.d", 0, ADDR_SYNTAX, 0, 0},
	{"<.a@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a.@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a..b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a..b>", NOAT, ADDR_SYNTAX, 0, 0},
	{"<a b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a(b)@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a,b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a;b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a:b@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a[b@c.d>", 0, ADDR_SYNTAX, 0, 0},

	/* bad domains */
	{"<a@>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@.c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c..d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d.>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@-c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c-.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d->", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c@d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c,d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d >", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d>>", 0, ADDR_OK, "a@c.d", ">"},

	/* brackets */
	{"<a@c.d", 0, ADDR_SYNTAX, 0, 0},
	{"<", 0, ADDR_SYNTAX, 0, 0},
	{"<<a@c.d>>", 0, ADDR_SYNTAX, 0, 0},
	{"", 0, ADDR_SYNTAX, 0, 0},
	{"   ", 0, ADDR_SYNTAX, 0, 0},
	{"", NOAT, ADDR_SYNTAX, 0, 0},
	{">", 0, ADDR_SYNTAX, 0, 0},
	{"<postmaster>", 0, ADDR_SYNTAX, 0, 0},
	{"<postmaster>", NOAT, ADDR_OK, "postmaster", ""},
	{"<Postmaster> X", NOAT, ADDR_OK, "Postmaster", " X"},
	{"<postmaster", NOAT, ADDR_SYNTAX, 0, 0},

	/* control characters and 8-bit bytes */
	{"<a\x01@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\r@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\n@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c\n.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@c.d\r>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\t@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\x7f@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\xc3\xa9t\xc3\xa9@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a@\xc3\xa9t\xc3\xa9.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\"\xc3\xa9\"@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<a\xff@c.d>", 0, ADDR_SYNTAX, 0, 0},
	{"<\x80>", NOAT, ADDR_SYNTAX, 0, 0},
	{"<a@[1.2.3.4\n]>", 0, ADDR_SYNTAX, 0, 0},
};

/* cases with NUL bytes, given with explicit lengths */
struct bcase {
	const char *in;
	size_t len;
	int want;
	const char *name;
};

static const struct bcase bcases[] = {
	{"<a\0@c.d>", 8, ADDR_SYNTAX, "NUL in the local part"},
	{"<a@c\0.d>", 8, ADDR_SYNTAX, "NUL in the domain"},
	{"<\"a\0\"@c.d>", 10, ADDR_SYNTAX, "NUL in a quoted local part"},
	{"<a@[1.2.3.4\0]>", 14, ADDR_SYNTAX, "NUL inside an IPv4 literal"},
	{"<a@[IPv6:::1\0]>", 15, ADDR_SYNTAX, "NUL inside an IPv6 literal"},
	{"<a@[1.2.3.4\0junk]>", 18, ADDR_SYNTAX, "NUL and junk in a literal"},
	{"<a@c.d>", 6, ADDR_SYNTAX, "len cuts off the '>'"},
	{"<a@c.d>\0", 8, ADDR_OK, "NUL after the path is left in rest"},
	{"<>", 1, ADDR_SYNTAX, "len cuts \"<>\""},
};

static void
run_cases(void)
{
	str out = STR_INIT;
	size_t i, rest;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct tcase *t = &cases[i];
		size_t len = strlen(t->in);
		char name[600];
		int r;

		snprintf(name, sizeof name, "%s%s", t->in,
			 t->flags & NOAT ? " (NOAT)" : "");
		for (char *p = name; *p; p++)
			if ((unsigned char)*p < 32 || (unsigned char)*p >= 127)
				*p = '?';
		rest = 12345;
		r = addr_path(t->in, len, t->flags, &out, &rest);
		if (!is_int(r, t->want, "addr_path %s", name))
			continue;
		if (r != ADDR_OK)
			continue;
		ok(out.s && out.s[out.len] == 0 && !strcmp(out.s, t->out) &&
			   rest <= len && !strcmp(t->in + rest, t->rest),
		   "... -> \"%s\", rest \"%s\"", t->out, t->rest);
		if (out.s && strcmp(out.s, t->out))
			diag("  got \"%s\"", out.s);
		if (rest <= len && strcmp(t->in + rest, t->rest))
			diag("  got rest \"%s\"", t->in + rest);
	}
	for (i = 0; i < sizeof bcases / sizeof bcases[0]; i++) {
		const struct bcase *t = &bcases[i];

		is_int(addr_path(t->in, t->len, 0, &out, &rest), t->want,
		       "addr_path: %s", t->name);
	}
	str_free(&out);
}

/* build "<" local "@" domain ">" with the given part lengths */
static int
path_of(size_t llen, size_t dlen, str *out, size_t *rest, str *in)
{
	size_t i;

	in->len = 0;
	str_catc(in, '<');
	for (i = 0; i < llen; i++)
		str_catc(in, 'l');
	if (dlen) {
		str_catc(in, '@');
		/* labels of up to 63 bytes */
		for (i = 0; i < dlen; i++)
			str_catc(in, (i % 64 == 63) ? '.' : 'd');
		if (in->s[in->len - 1] == '.')
			in->s[in->len - 1] = 'e';
	}
	str_catc(in, '>');
	return addr_path(in->s, in->len, ADDR_NOAT, out, rest);
}

static void
run_lengths(void)
{
	str out = STR_INIT, in = STR_INIT;
	size_t rest;

	is_int(path_of(64, 10, &out, &rest, &in), ADDR_OK, "64-byte local part");
	is_int(out.len, 64 + 1 + 10, "... kept whole");
	/* longer than RFC 5321's 64 (VERP, SRS): bounded by the path only */
	is_int(path_of(65, 10, &out, &rest, &in), ADDR_OK,
	       "65-byte local part: taken");
	is_int(out.len, 65 + 1 + 10, "... kept whole");
	is_int(path_of(200, 10, &out, &rest, &in), ADDR_OK,
	       "200-byte local part: taken");
	is_int(path_of(243, 10, &out, &rest, &in), ADDR_OK,
	       "243+1+10 = 254 in the brackets: taken");
	is_int(path_of(244, 10, &out, &rest, &in), ADDR_TOOLONG,
	       "244+1+10 = 255 in the brackets: ADDR_TOOLONG");
	is_int(path_of(254, 0, &out, &rest, &in), ADDR_OK,
	       "254-byte local part, no domain: taken");
	is_int(path_of(255, 0, &out, &rest, &in), ADDR_TOOLONG,
	       "255-byte local part, no domain: ADDR_TOOLONG");
	is_int(path_of(1000, 10, &out, &rest, &in), ADDR_TOOLONG,
	       "1000-byte local part: ADDR_TOOLONG");
	is_int(path_of(1, 255, &out, &rest, &in), ADDR_TOOLONG,
	       "1+1+255 = 257 > 254 in the brackets: ADDR_TOOLONG");
	is_int(path_of(1, 252, &out, &rest, &in), ADDR_OK,
	       "mailbox of 254 bytes (path of 256): ok");
	is_int(out.len, 254, "... kept whole");
	is_int(path_of(1, 253, &out, &rest, &in), ADDR_TOOLONG,
	       "mailbox of 255 bytes (path of 257): ADDR_TOOLONG");
	is_int(path_of(60, 200, &out, &rest, &in), ADDR_TOOLONG,
	       "local 60 + domain 200: path too long");
	is_int(path_of(1, 256, &out, &rest, &in), ADDR_TOOLONG,
	       "256-byte domain: ADDR_TOOLONG");
	is_int(path_of(1, 5000, &out, &rest, &in), ADDR_TOOLONG,
	       "5000-byte domain: ADDR_TOOLONG");

	/* a 64-byte label is invalid, 63 is fine */
	{
		char b[200];

		memset(b, 'x', sizeof b);
		memcpy(b, "<a@", 3);
		b[3 + 63] = '>';
		is_int(addr_path(b, 3 + 63 + 1, 0, &out, &rest), ADDR_OK,
		       "63-byte label ok");
		b[3 + 63] = 'x';
		b[3 + 64] = '>';
		is_int(addr_path(b, 3 + 64 + 1, 0, &out, &rest), ADDR_SYNTAX,
		       "64-byte label: ADDR_SYNTAX");
	}

	/* a quoted local part counts its quotes */
	in.len = 0;
	str_cats(&in, "<\"");
	for (int i = 0; i < 62; i++)
		str_catc(&in, 'q');
	str_cats(&in, "\"@c.d>");
	is_int(addr_path(in.s, in.len, 0, &out, &rest), ADDR_OK,
	       "quoted local part of 64 bytes");
	in.len = 0;
	str_cats(&in, "<\"");
	for (int i = 0; i < 63; i++)
		str_catc(&in, 'q');
	str_cats(&in, "\"@c.d>");
	is_int(addr_path(in.s, in.len, 0, &out, &rest), ADDR_OK,
	       "quoted local part of 65 bytes: taken");

	/* a long source route does not count */
	in.len = 0;
	str_cats(&in, "<");
	for (int i = 0; i < 40; i++)
		str_cats(&in, i ? ",@relay.example" : "@relay.example");
	str_cats(&in, ":a@b.c>");
	is_int(addr_path(in.s, in.len, 0, &out, &rest), ADDR_OK,
	       "600-byte source route is dropped, not counted");
	is_str(out.s, "a@b.c", "... mailbox");
	str_free(&out);
	str_free(&in);
}

static void
run_domain(void)
{
	static const struct {
		const char *d;
		int ok;
	} t[] = {
		{"example.com", 1}, {"a", 1}, {"a-b.c", 1}, {"1.2.3.4", 1},
		{"[1.2.3.4]", 1}, {"[IPv6:::1]", 1}, {"[IPv6:fe80::1]", 1},
		{"", 0}, {".", 0}, {"a.", 0}, {".a", 0}, {"a..b", 0},
		{"-a", 0}, {"a-", 0}, {"a b", 0}, {"[]", 0}, {"[1.2.3]", 0},
		{"[IPv6:x]", 0}, {"a@b", 0}, {"[1.2.3.4", 0}, {"1.2.3.4]", 0},
	};
	size_t i, dl;
	const char *d;

	for (i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(addr_domain_ok(t[i].d, strlen(t[i].d)), t[i].ok,
		       "addr_domain_ok \"%s\"", t[i].d);
	{
		char big[300];

		memset(big, 'a', sizeof big);
		for (i = 50; i < sizeof big; i += 50)
			big[i] = '.';
		is_int(addr_domain_ok(big, 255), 1, "255-byte domain ok");
		is_int(addr_domain_ok(big, 256), 0, "256-byte domain not");
	}

	d = addr_domain("a@b.c", 5, &dl);
	ok(d && dl == 3 && !memcmp(d, "b.c", 3), "addr_domain a@b.c");
	d = addr_domain("a@b@c.d", 7, &dl);
	ok(d && dl == 3 && !memcmp(d, "c.d", 3), "addr_domain takes the last @");
	ok(addr_domain("postmaster", 10, &dl) == NULL, "addr_domain without @");
	d = addr_domain("a@", 2, &dl);
	ok(d && dl == 0, "addr_domain empty domain");
	ok(addr_domain("", 0, &dl) == NULL, "addr_domain empty");
	d = addr_domain("a@b.c", 3, &dl);
	ok(d && dl == 1 && *d == 'b', "addr_domain respects len");
}

int
main(void)
{
	run_cases();
	run_lengths();
	run_domain();
	return done_testing();
}
