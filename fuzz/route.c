/*
 * route.c: fuzz target for the smtproutes and virtualdomains lookups
 * (route.h).  The first line of the input is a domain (up to a NUL: it
 * comes from the command line) and an address (all of it); the other
 * lines, those without a NUL, are the control file's lines, as
 * ctl_list() gives them.  Checked:
 *
 *   - route_find() returns NULL or the value of a line, exactly the one a
 *     model written here picks by the rules of moat-remote(8): exact
 *     domain, then (not for a '[' literal) each ".suffix", longest first,
 *     then the empty key; the first line of a key; a '[' line's key ends
 *     at "]:" when its first ']' is followed by ':', else at the first
 *     ':'; keys in any case;
 *   - vdom_find() likewise against a model of moat-send(8): whole
 *     address, domain after the last '@', each ".suffix", then ""; the
 *     key ends at the first ':'; NULL without an '@'; *plen is the
 *     length of the prepend; vdom_rewrite() gives "prepend-address" for
 *     a non-empty prepend and 0 otherwise;
 *   - route_parse(), on the value found and on every line taken whole,
 *     agrees with a model: ROUTE_OK or ROUTE_EBAD as the model says; on
 *     success the port is 1 to 65535 (25 when none is given), and the
 *     relay is NUL-free, NUL-terminated, at most 5 bytes longer than the
 *     value (the "[IPv6:" tag) and the one the model builds;
 *   - every call gives the same result again (determinism), the relay
 *     str reused;
 *   - nothing leaks (LeakSanitizer).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* a[0..n) and b[0..n) equal in any case */
static int
same(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

struct line {
	const char *s; /* NUL-terminated, in the lines str */
	size_t keylen; /* SIZE_MAX: no key */
};

static struct line *v;
static size_t nv;

/* where the key of line s ends; SIZE_MAX when it has none */
static size_t
key_end(const char *s, int smtproutes)
{
	size_t i, first_colon = SIZE_MAX;

	for (i = 0; s[i]; i++)
		if (s[i] == ':') {
			first_colon = i;
			break;
		}
	if (smtproutes && s[0] == '[') {
		for (i = 0; s[i] && s[i] != ']'; i++)
			;
		if (s[i] == ']' && s[i + 1] == ':')
			return i + 1;
	}
	return first_colon;
}

/* the model's value for one key: the first line with it, or NULL */
static const char *
model_key(const char *k, size_t kl)
{
	size_t i;

	for (i = 0; i < nv; i++)
		if (v[i].keylen == kl && same(v[i].s, k, kl))
			return v[i].s + kl + 1;
	return 0;
}

static const char *
model_route(const char *dom)
{
	size_t dl = strlen(dom), i;
	const char *r = model_key(dom, dl);

	if (dom[0] != '[')
		for (i = 0; !r && i < dl; i++)
			if (dom[i] == '.')
				r = model_key(dom + i, dl - i);
	return r ? r : model_key("", 0);
}

static const char *
model_vdom(const char *a, size_t alen)
{
	size_t at = alen, i;
	const char *r;

	for (i = 0; i < alen; i++)
		if (a[i] == '@')
			at = i;
	if (at == alen)
		return 0;
	r = model_key(a, alen);
	for (i = at + 1; !r && i <= alen; i++)
		if (i == at + 1 || i == alen || a[i] == '.')
			r = model_key(a + i, alen - i);
	return r;
}

/* the model of route_parse: ROUTE_OK with the relay in want */
static int
model_parse(const char *s, char *want, unsigned *port)
{
	size_t n = strlen(s), e, i;
	const char *p = 0;
	unsigned long u = 0;

	if (s[0] == '[') {
		for (e = 0; e < n && s[e] != ']'; e++)
			;
		if (e == n || (e + 1 < n && s[e + 1] != ':'))
			return ROUTE_EBAD;
		e++;
		if (e < n)
			p = s + e + 1;
	} else {
		for (e = 0; e < n && s[e] != ':'; e++)
			;
		if (e < n)
			p = s + e + 1;
	}
	if (s[0] == '[' && memchr(s, ':', e) && !same(s, "[IPv6:", 6)) {
		memcpy(want, "[IPv6:", 6);
		memcpy(want + 6, s + 1, e - 1);
		want[e + 5] = 0;
	} else {
		memcpy(want, s, e);
		want[e] = 0;
	}
	*port = 25;
	if (!p)
		return ROUTE_OK;
	if (!*p)
		return ROUTE_EBAD;
	for (i = 0; p[i]; i++) {
		if (p[i] < '0' || p[i] > '9')
			return ROUTE_EBAD;
		if (u <= 65535)
			u = u * 10 + (unsigned long)(p[i] - '0');
	}
	if (u < 1 || u > 65535)
		return ROUTE_EBAD;
	*port = (unsigned)u;
	return ROUTE_OK;
}

static void
check_parse(const char *s, str *relay)
{
	size_t n = strlen(s);
	char *want = malloc(n + 6);
	unsigned port = 0, wport = 0, port2 = 0;
	int r, w;

	if (!want)
		abort();
	r = route_parse(s, relay, &port);
	w = model_parse(s, want, &wport);
	if (r != w)
		abort();
	if (r == ROUTE_OK) {
		if (port < 1 || port > 65535 || port != wport)
			abort();
		if (relay->len > n + 5 || !relay->s ||
		    memchr(relay->s, 0, relay->len) || relay->s[relay->len] ||
		    strcmp(relay->s, want))
			abort();
		/* the same again, into the used str */
		strcpy(want, relay->s);
		if (route_parse(s, relay, &port2) != ROUTE_OK ||
		    port2 != port || strcmp(relay->s, want))
			abort();
	} else if (route_parse(s, relay, &port2) != r) {
		abort();
	}
	free(want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data, *nl = memchr(d, '\n', size);
	size_t alen = nl ? (size_t)(nl - d) : size, off, i, pl = 0, pl2 = 0;
	str lines = STR_INIT, a = STR_INIT, relay = STR_INIT, out = STR_INIT;
	const char *got, *want;
	int r;

	/* the first line: the address, and the domain up to a NUL */
	if (str_copyb(&a, d, alen) == -1 || str_0(&a) == -1)
		abort();
	nv = 0;
	v = 0;
	off = nl ? alen + 1 : size;
	while (off < size) {
		const char *s = d + off, *e = memchr(s, '\n', size - off);
		size_t l = e ? (size_t)(e - s) : size - off;

		off += l + 1;
		if (memchr(s, 0, l))
			continue;
		if (str_catb(&lines, s, l) == -1 || str_catc(&lines, 0) == -1)
			abort();
		nv++;
	}
	if (nv && !(v = calloc(nv, sizeof *v)))
		abort();
	for (i = 0, off = 0; i < nv; i++) {
		v[i].s = lines.s + off;
		off += strlen(v[i].s) + 1;
	}

	/* smtproutes */
	for (i = 0; i < nv; i++)
		v[i].keylen = key_end(v[i].s, 1);
	got = route_find(&lines, nv, a.s);
	want = model_route(a.s);
	if (got != want || route_find(&lines, nv, a.s) != got)
		abort();
	if (got)
		check_parse(got, &relay);
	for (i = 0; i < nv; i++)
		check_parse(v[i].s, &relay);
	check_parse(a.s, &relay);

	/* virtualdomains */
	for (i = 0; i < nv; i++)
		v[i].keylen = key_end(v[i].s, 0);
	got = vdom_find(&lines, nv, a.s, a.len, &pl);
	want = model_vdom(a.s, a.len);
	if (got != want || vdom_find(&lines, nv, a.s, a.len, &pl2) != got)
		abort();
	if (got && (pl != strlen(got) || pl2 != pl))
		abort();
	r = vdom_rewrite(&lines, nv, a.s, a.len, &out);
	if (r != (got && pl ? 1 : 0))
		abort();
	if (r == 1 && (out.len != pl + 1 + a.len || memcmp(out.s, got, pl) ||
	               out.s[pl] != '-' || memcmp(out.s + pl + 1, a.s, a.len) ||
	               out.s[out.len]))
		abort();

	free(v);
	str_free(&lines);
	str_free(&a);
	str_free(&relay);
	str_free(&out);
	return 0;
}
