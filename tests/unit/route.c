/* unit tests for src/lib/route.c (smtproutes and virtualdomains) */
#include <stdlib.h>
#include <string.h>

#include "route.h"
#include "tap.h"

static str ls = STR_INIT;
static size_t nls;

/* the lines of a control file, as ctl_list() gives them: empty lines and
 * '#' comments skipped, each line NUL-terminated */
static void
lines(const char *text)
{
	ls.len = 0;
	nls = 0;
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t l = nl ? (size_t)(nl - text) : strlen(text);

		if (l && text[0] != '#') {
			if (str_catb(&ls, text, l) == -1 ||
			    str_catc(&ls, 0) == -1)
				abort();
			nls++;
		}
		text += l + (nl ? 1 : 0);
	}
}

/* a lookup and what it should give; NULL: nothing */
struct lookup {
	const char *in, *want, *name;
};

static const char *
rfind(const char *domain)
{
	return route_find(&ls, nls, domain);
}

/* "prepend-user@domain", NULL when it stays remote */
static const char *
vrw(const char *a)
{
	static str out = STR_INIT;
	int r = vdom_rewrite(&ls, nls, a, strlen(a), &out);

	if (r == -1)
		abort();
	return r ? out.s : 0;
}

/* each lookup of t against the control file text */
static void
table(const char *text, const struct lookup *t, size_t n,
      const char *(*f)(const char *))
{
	size_t i;

	lines(text);
	for (i = 0; i < n; i++)
		is_str(f(t[i].in), t[i].want, "%s (%s)", t[i].name, t[i].in);
}

#define TABLE(text, t, f) table((text), (t), sizeof(t) / sizeof *(t), (f))

static const struct lookup routes1[] = {
    {"example.org", "relay.example.net", "exact domain"},
    {"EXAMPLE.Org", "relay.example.net", "any case"},
    {"mail.example.org", "smarthost.example.net:2525",
     ".suffix matches a subdomain"},
    {"a.b.example.org", "[192.0.2.7]",
     "the longest .suffix first, wherever it stands"},
    {"b.example.org", "upper.example.net",
     "exact before .suffix; the first of two lines for one key"},
    {"example.org.uk", "default.example.net",
     "a domain that only starts like a key takes the default"},
    {"mx.example.com", ":587", "empty relay (MX) with a port"},
    {"[192.0.2.1]", "[192.0.2.2]:26", "address literal key"},
    {"[IPv6:2001:db8::1]", "[IPv6:2001:db8::2]",
     "IPv6 literal key with colons"},
    {"[ipv6:2001:DB8::1]", "[IPv6:2001:db8::2]",
     "IPv6 literal key in any case"},
    {"[broken", "x.example.net",
     "a '[' key without \"]:\" ends at the first colon"},
    {"local.example", "", "a line with an empty value"},
    {"no colon here", "default.example.net",
     "a line without a colon has no key"},
    {"elsewhere.test", "default.example.net", "any other domain: default"},
    {"", "default.example.net", "the empty domain: default"},
};

static const struct lookup routes2[] = {
    {"[192.0.2.9]", "literal.example.net", "a literal: exact line"},
    {"[192.0.2.8]", NULL,
     "a literal is not looked up by suffix; no default: none"},
    {"1.9]", "suffix.example.net",
     "a name (not a literal) is looked up by suffix"},
    {"example.org", NULL, ".suffix does not match itself"},
    {".example.org", "smarthost.example.net",
     "a domain starting with a dot matches the .suffix line"},
    {"x.example.org.", NULL, "a trailing dot is part of the name"},
};

static void
smtproutes(void)
{
	TABLE("# control/smtproutes\n"
	      "example.org:relay.example.net\n"
	      ".example.org:smarthost.example.net:2525\n"
	      ".b.example.org:[192.0.2.7]\n"
	      "B.EXAMPLE.ORG:upper.example.net\n"
	      "b.example.org:second.example.net\n"
	      "mx.example.com::587\n"
	      "[192.0.2.1]:[192.0.2.2]:26\n"
	      "[IPv6:2001:db8::1]:[IPv6:2001:db8::2]\n"
	      "no colon here\n"
	      "[broken:x.example.net\n"
	      ":default.example.net\n"
	      "local.example:\n",
	      routes1, rfind);
	is_str(route_line(&ls, nls, "", 0), "default.example.net",
	       "route_line: the empty key");
	is_str(route_line(&ls, nls, "example", 7), NULL,
	       "route_line: a prefix of a key is not the key");
	TABLE("[192.0.2.9]:literal.example.net\n"
	      ".9]:suffix.example.net\n"
	      ".example.org:smarthost.example.net\n",
	      routes2, rfind);
	lines("");
	is_str(rfind("example.org"), NULL, "no smtproutes: no route");
}

static const struct {
	const char *v;
	int r;
	const char *relay; /* when r is ROUTE_OK */
	unsigned port;
} values[] = {
    {"relay.example.net", ROUTE_OK, "relay.example.net", 25},
    {"relay.example.net:2525", ROUTE_OK, "relay.example.net", 2525},
    {"", ROUTE_OK, "", 25},
    {":2525", ROUTE_OK, "", 2525},
    {"[192.0.2.1]", ROUTE_OK, "[192.0.2.1]", 25},
    {"[192.0.2.1]:26", ROUTE_OK, "[192.0.2.1]", 26},
    {"[IPv6:2001:db8::1]:587", ROUTE_OK, "[IPv6:2001:db8::1]", 587},
    {"[ipv6:2001:db8::1]", ROUTE_OK, "[ipv6:2001:db8::1]", 25},
    {"[2001:db8::1]:2525", ROUTE_OK, "[IPv6:2001:db8::1]", 2525},
    {"relay.example.net:1", ROUTE_OK, "relay.example.net", 1},
    {"relay.example.net:65535", ROUTE_OK, "relay.example.net", 65535},
    {"relay.example.net:0025", ROUTE_OK, "relay.example.net", 25},
    {"relay.example.net:", ROUTE_EBAD, 0, 0},
    {"relay.example.net:0", ROUTE_EBAD, 0, 0},
    {"relay.example.net:65536", ROUTE_EBAD, 0, 0},
    {"relay.example.net:99999999999999999999999", ROUTE_EBAD, 0, 0},
    {"relay.example.net:25x", ROUTE_EBAD, 0, 0},
    {"relay.example.net:-1", ROUTE_EBAD, 0, 0},
    {"relay.example.net: 25", ROUTE_EBAD, 0, 0},
    {"relay.example.net:25:26", ROUTE_EBAD, 0, 0},
    {"[192.0.2.1", ROUTE_EBAD, 0, 0},
    {"[192.0.2.1]x", ROUTE_EBAD, 0, 0},
    {"[192.0.2.1]:", ROUTE_EBAD, 0, 0},
    {"[2001:db8::1", ROUTE_EBAD, 0, 0},
};

static void
parse_values(void)
{
	str relay = STR_INIT;
	unsigned port;
	size_t i;

	for (i = 0; i < sizeof values / sizeof *values; i++) {
		int r = route_parse(values[i].v, &relay, &port);

		if (!is_int(r, values[i].r, "route_parse(\"%s\")",
		            values[i].v) ||
		    r != ROUTE_OK)
			continue;
		is_str(relay.s, values[i].relay, "route_parse(\"%s\"): relay",
		       values[i].v);
		is_int(port, values[i].port, "route_parse(\"%s\"): port",
		       values[i].v);
	}
	str_free(&relay);
}

/* the example of moat-send(8) */
static const struct lookup vdoms1[] = {
    {"sales@example.net", "joe-sales@example.net",
     "domain line: prepend-user@domain"},
    {"bob@example.net", NULL, "user@domain exception: remote"},
    {"x@a.lists.example.net", "lists-x@a.lists.example.net", ".suffix line"},
    {"Sales@EXAMPLE.NET", "joe-Sales@EXAMPLE.NET",
     "keys in any case, the address kept as written"},
    {"BOB@Example.Net", NULL, "user@domain key in any case"},
    {"x@lists.example.net", NULL, ".suffix does not match the domain itself"},
    {"x@sub.example.net", NULL, "a domain line is exact"},
    {"x@example.org", NULL, "no line: remote"},
};

static const struct lookup vdoms2[] = {
    {"u@a.b.example.com", "narrow-u@a.b.example.com",
     "the longest .suffix first, wherever it stands"},
    {"u@a.example.com", "wide-u@a.example.com", "shorter .suffix"},
    {"u@c.b.example.com", NULL, "a domain exception beats wider lines"},
    {"u@x.example.com", "first-u@x.example.com",
     "of two lines for one key, the first"},
    {"joe@x.example.com", "joe-joe@x.example.com",
     "the whole address before the domain"},
    {"u@elsewhere.test", "catchall-u@elsewhere.test",
     "the empty key catches the rest"},
    {"a@b@x.example.com", "first-a@b@x.example.com",
     "the domain is after the last '@'"},
    {"u@colons.example", "a:b-u@colons.example",
     "the key ends at the first colon, the prepend may hold more"},
    {"nodomain", NULL, "an address without '@': nothing"},
    {"u@no colon", "catchall-u@no colon", "a line without a colon has no key"},
};

static void
virtualdomains(void)
{
	size_t pl = 99;

	TABLE("# control/virtualdomains\n"
	      "example.net:joe\n"
	      "bob@example.net:\n"
	      ".lists.example.net:lists\n",
	      vdoms1, vrw);
	TABLE(".example.com:wide\n"
	      ":catchall\n"
	      ".b.example.com:narrow\n"
	      "c.b.example.com:\n"
	      "x.example.com:first\n"
	      "X.example.com:second\n"
	      "joe@x.example.com:joe\n"
	      "no colon\n"
	      "colons.example:a:b\n",
	      vdoms2, vrw);
	is_str(vdom_find(&ls, nls, "u@", 2, &pl), "catchall",
	       "an empty domain: the empty key");
	is_int(pl, 8, "vdom_find: prepend length");
	is_str(vdom_line(&ls, nls, "c.b.example.com", 15, &pl), "",
	       "vdom_line: an exception");
	is_int(pl, 0, "vdom_line: an exception has length 0");
	lines("");
	is_str(vrw("u@example.net"), NULL, "no virtualdomains: remote");
}

int
main(void)
{
	smtproutes();
	parse_values();
	virtualdomains();
	str_free(&ls);
	return done_testing();
}
