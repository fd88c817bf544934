/* unit tests for src/lib/smtpcmd.c */
#include <limits.h>
#include <string.h>

#include "smtpcmd.h"
#include "tap.h"

struct ccase {
	const char *line;
	size_t len; /* 0: strlen */
	enum smtp_verb verb;
	const char *arg;
};

static const struct ccase ccases[] = {
	{"HELO host.example", 0, SMTP_HELO, "host.example"},
	{"helo host.example", 0, SMTP_HELO, "host.example"},
	{"HeLo host.example", 0, SMTP_HELO, "host.example"},
	{"EHLO [1.2.3.4]", 0, SMTP_EHLO, "[1.2.3.4]"},
	{"ehlo", 0, SMTP_EHLO, ""},
	{"MAIL FROM:<a@b.c>", 0, SMTP_MAIL, "FROM:<a@b.c>"},
	{"mail from:<a@b.c> SIZE=10", 0, SMTP_MAIL, "from:<a@b.c> SIZE=10"},
	{"RCPT TO:<x@y.z>", 0, SMTP_RCPT, "TO:<x@y.z>"},
	{"DATA", 0, SMTP_DATA, ""},
	{"data", 0, SMTP_DATA, ""},
	{"RSET", 0, SMTP_RSET, ""},
	{"NOOP", 0, SMTP_NOOP, ""},
	{"NOOP anything at all", 0, SMTP_NOOP, "anything at all"},
	{"QUIT", 0, SMTP_QUIT, ""},
	{"quit", 0, SMTP_QUIT, ""},
	{"VRFY postmaster", 0, SMTP_VRFY, "postmaster"},
	{"EXPN list", 0, SMTP_EXPN, "list"},
	{"HELP", 0, SMTP_HELP, ""},
	{"TURN", 0, SMTP_TURN, ""},
	{"SEND FROM:<a@b>", 0, SMTP_SEND, "FROM:<a@b>"},
	{"SOML FROM:<a@b>", 0, SMTP_SOML, "FROM:<a@b>"},
	{"SAML FROM:<a@b>", 0, SMTP_SAML, "FROM:<a@b>"},
	{"STARTTLS", 0, SMTP_STARTTLS, ""},
	{"starttls", 0, SMTP_STARTTLS, ""},
	{"AUTH PLAIN AGZvbwBiYXI=", 0, SMTP_AUTH, "PLAIN AGZvbwBiYXI="},
	{"BDAT 100 LAST", 0, SMTP_BDAT, "100 LAST"},

	/* spacing */
	{"MAIL   FROM:<a@b>", 0, SMTP_MAIL, "FROM:<a@b>"},
	{"MAIL FROM:<a@b>   ", 0, SMTP_MAIL, "FROM:<a@b>"},
	{"MAIL FROM:<a@b> \t ", 0, SMTP_MAIL, "FROM:<a@b>"},
	{"QUIT   ", 0, SMTP_QUIT, ""},
	{"HELO a b  c", 0, SMTP_HELO, "a b  c"},

	/* unknown verbs */
	{"XYZZY", 0, SMTP_UNKNOWN, ""},
	{"XYZZY plugh", 0, SMTP_UNKNOWN, "plugh"},
	{"MAILFROM:<a@b>", 0, SMTP_UNKNOWN, ""},
	{"HEL", 0, SMTP_UNKNOWN, ""},
	{"HELLO", 0, SMTP_UNKNOWN, ""},
	{"HELO:x", 0, SMTP_UNKNOWN, ""},
	{"STARTTLSX", 0, SMTP_UNKNOWN, ""},
	{"GET / HTTP/1.1", 0, SMTP_UNKNOWN, "/ HTTP/1.1"},
	{"\xc3\xa9", 0, SMTP_UNKNOWN, ""},

	/* bad lines */
	{"", 0, SMTP_BAD, 0},
	{" ", 0, SMTP_BAD, 0},
	{" HELO x", 0, SMTP_BAD, 0},
	{"   ", 0, SMTP_BAD, 0},
	{"HELO\0x", 6, SMTP_BAD, 0},
	{"\0", 1, SMTP_BAD, 0},
	{"QUIT\0", 5, SMTP_BAD, 0},
	{"MAIL FROM:<a@b>\0 SIZE=1", 24, SMTP_BAD, 0},
	{"QUITTING", 4, SMTP_QUIT, ""},
};

static void
test_cmd(void)
{
	struct smtp_cmd c;
	size_t i;

	for (i = 0; i < sizeof ccases / sizeof ccases[0]; i++) {
		const struct ccase *t = &ccases[i];
		size_t len = t->len ? t->len : strlen(t->line);
		char name[200];

		snprintf(name, sizeof name, "%.*s", (int)strcspn(t->line, "\t"),
			 t->line);
		for (char *p = name; *p; p++)
			if ((unsigned char)*p < 32 || (unsigned char)*p >= 127)
				*p = '?';
		smtp_cmd(t->line, len, &c);
		if (!is_int(c.verb, t->verb, "smtp_cmd \"%s\" (%zu)", name, i))
			continue;
		if (t->arg)
			ok(c.arg >= t->line && c.arg <= t->line + len &&
				   c.arg + c.arglen <= t->line + len &&
				   c.arglen == strlen(t->arg) &&
				   !memcmp(c.arg, t->arg, c.arglen),
			   "... arg \"%s\"", t->arg);
	}
}

static void
test_prefix(void)
{
	size_t off = 99;

	ok(smtp_prefix("FROM:<a@b>", 10, "FROM:", &off) == 1 && off == 5,
	   "smtp_prefix FROM:");
	off = 99;
	ok(smtp_prefix("from:<a@b>", 10, "FROM:", &off) == 1 && off == 5,
	   "smtp_prefix any case");
	ok(smtp_prefix("To:<a@b>", 8, "TO:", &off) == 1 && off == 3,
	   "smtp_prefix To:");
	off = 99;
	ok(smtp_prefix("FROM <a@b>", 10, "FROM:", &off) == 0 && off == 99,
	   "smtp_prefix missing colon: 0, off untouched");
	ok(smtp_prefix("FRO", 3, "FROM:", &off) == 0, "smtp_prefix too short");
	ok(smtp_prefix("FROM:", 4, "FROM:", &off) == 0,
	   "smtp_prefix respects len");
	ok(smtp_prefix("FROM:", 5, "FROM:", &off) == 1 && off == 5,
	   "smtp_prefix exact");
	ok(smtp_prefix("", 0, "TO:", &off) == 0, "smtp_prefix empty");
	ok(smtp_prefix("x", 1, "", &off) == 1 && off == 0, "empty prefix");
}

/* parse all parameters of s; returns the count, or -1 at a syntax error;
 * keys and values are written into out as "k=v;" / "k;" */
static int
params(const char *s, char *out, size_t outsize)
{
	size_t pos = 0, len = strlen(s), o = 0;
	struct smtp_param p;
	int n = 0, r;

	out[0] = 0;
	while ((r = smtp_param(s, len, &pos, &p)) == 1) {
		if (pos > len)
			return -2;
		if (p.val)
			o += (size_t)snprintf(out + o, outsize - o, "%.*s=%.*s;",
					      (int)p.keylen, p.key,
					      (int)p.vallen, p.val);
		else
			o += (size_t)snprintf(out + o, outsize - o, "%.*s;",
					      (int)p.keylen, p.key);
		if (o >= outsize || ++n > 100)
			return -2;
	}
	if (r == 0 && pos != len)
		return -2;
	return r == -1 ? -1 : n;
}

static void
test_param(void)
{
	static const struct {
		const char *s;
		int n;
		const char *out;
	} t[] = {
		{"", 0, ""},
		{"   ", 0, ""},
		{"SIZE=123", 1, "SIZE=123;"},
		{" SIZE=123 BODY=8BITMIME", 2, "SIZE=123;BODY=8BITMIME;"},
		{"SIZE=123  BODY=7BIT  ", 2, "SIZE=123;BODY=7BIT;"},
		{"SMTPUTF8", 1, "SMTPUTF8;"},
		{"BODY=8BITMIME SMTPUTF8 SIZE=1", 3, "BODY=8BITMIME;SMTPUTF8;SIZE=1;"},
		{"X-FOO=a+b/c", 1, "X-FOO=a+b/c;"},
		{"RET=HDRS ENVID=abc<>", 2, "RET=HDRS;ENVID=abc<>;"},
		{"ORCPT=rfc822;a@b.c", 1, "ORCPT=rfc822;a@b.c;"},
		{"size=1", 1, "size=1;"},
		{"AUTH=<>", 1, "AUTH=<>;"},
		{"SIZE=", -1, 0},
		{"=1", -1, 0},
		{"SIZE==1", -1, 0},
		{"SIZE=1=2", -1, 0},
		{"SI_ZE=1", -1, 0},
		{"SIZE=1\tBODY=7BIT", -1, 0},
		{"SIZE=\x01", -1, 0},
		{"SIZE=\x7f", -1, 0},
		{"SIZE=\xc3\xa9", -1, 0},
		{"SIZE=1 \xc3\xa9", -1, 0},
		{"SIZE:1", -1, 0},
		{"<a@b>", -1, 0},
	};
	char out[512];
	size_t i, pos;
	struct smtp_param p;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int n = params(t[i].s, out, sizeof out);
		char name[100];

		snprintf(name, sizeof name, "%s", t[i].s);
		for (char *q = name; *q; q++)
			if ((unsigned char)*q < 32 || (unsigned char)*q >= 127)
				*q = '?';
		if (is_int(n, t[i].n, "smtp_param \"%s\"", name) && n >= 0)
			is_str(out, t[i].out, "... parameters");
	}

	/* positions */
	pos = 0;
	ok(smtp_param(" A=1 B", 6, &pos, &p) == 1 && pos == 4 && p.keylen == 1 &&
		   p.vallen == 1 && p.val[0] == '1',
	   "smtp_param advances past the first parameter");
	ok(smtp_param(" A=1 B", 6, &pos, &p) == 1 && pos == 6 && !p.val,
	   "... then the second, without value");
	ok(smtp_param(" A=1 B", 6, &pos, &p) == 0 && pos == 6, "... then none");
	pos = 0;
	ok(smtp_param("A=12345", 4, &pos, &p) == 1 && p.vallen == 2 && pos == 4,
	   "smtp_param respects len");
}

static void
test_number(void)
{
	static const struct {
		const char *s;
		int r;
		unsigned long long v;
	} t[] = {
		{"0", 0, 0},
		{"1", 0, 1},
		{"123", 0, 123},
		{"000123", 0, 123},
		{"10485760", 0, 10485760},
		{"4294967296", 0, 4294967296ULL},
		{"18446744073709551615", 0, ULLONG_MAX},
		{"00000000000000000001", 0, 1},
		{"18446744073709551616", -1, 0},
		{"99999999999999999999", -1, 0},
		{"000000000000000000001", -1, 0},
		{"100000000000000000000000", -1, 0},
		{"", -1, 0},
		{"-1", -1, 0},
		{"+1", -1, 0},
		{"1a", -1, 0},
		{"a1", -1, 0},
		{" 1", -1, 0},
		{"1 ", -1, 0},
		{"0x10", -1, 0},
		{"1.0", -1, 0},
	};
	size_t i;
	unsigned long long v;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		int r = smtp_number(t[i].s, strlen(t[i].s), &v);

		if (is_int(r, t[i].r, "smtp_number \"%s\"", t[i].s) && r == 0)
			ok(v == t[i].v, "... = %llu", t[i].v);
	}
	ok(smtp_number("12345", 2, &v) == 0 && v == 12, "smtp_number respects len");
	ok(smtp_number("1\0", 2, &v) == -1, "smtp_number with a NUL");
}

int
main(void)
{
	test_cmd();
	test_prefix();
	test_param();
	test_number();
	return done_testing();
}
