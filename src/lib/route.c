/*
 * route.c: the smtproutes and virtualdomains lookups; see route.h.
 */
#include "route.h"

#include <string.h>
#include <strings.h>

/* the next item of lines at *off */
static const char *
item(const str *lines, size_t *off)
{
	const char *it = lines->s + *off;

	*off += strlen(it) + 1;
	return it;
}

const char *
route_line(const str *lines, size_t n, const char *key, size_t klen)
{
	size_t i, off = 0;

	for (i = 0; i < n; i++) {
		const char *it = item(lines, &off);
		const char *c = strchr(it, ':');

		if (it[0] == '[') {
			/* an address literal key may hold colons itself */
			const char *e = strchr(it, ']');
			if (e && e[1] == ':')
				c = e + 1;
		}
		if (c && (size_t)(c - it) == klen &&
		    !strncasecmp(it, key, klen))
			return c + 1;
	}
	return 0;
}

const char *
route_find(const str *lines, size_t n, const char *domain)
{
	const char *v = route_line(lines, n, domain, strlen(domain)), *d;

	if (!v && domain[0] != '[') {
		for (d = strchr(domain, '.'); d && !v; d = strchr(d + 1, '.'))
			v = route_line(lines, n, d, strlen(d));
	}
	if (!v)
		v = route_line(lines, n, "", 0);
	return v;
}

int
route_parse(const char *v, str *relay, unsigned *port)
{
	const char *p = 0;
	size_t n;

	*port = ROUTE_PORT;
	relay->len = 0;
	if (*v == '[') {
		const char *c = strchr(v, ']');
		if (!c || (c[1] && c[1] != ':'))
			return ROUTE_EBAD;
		n = (size_t)(c - v) + 1;
		if (c[1])
			p = c + 2;
	} else {
		const char *c = strchr(v, ':');
		n = c ? (size_t)(c - v) : strlen(v);
		if (c)
			p = c + 1;
	}
	if (*v == '[' && memchr(v, ':', n) && strncasecmp(v, "[IPv6:", 6)) {
		/* "[2001:db8::1]": take it as the tagged form */
		if (str_copys(relay, "[IPv6:") == -1 ||
		    str_catb(relay, v + 1, n - 1) == -1)
			return ROUTE_ENOMEM;
	} else if (str_copyb(relay, v, n) == -1) {
		return ROUTE_ENOMEM;
	}
	if (str_0(relay) == -1)
		return ROUTE_ENOMEM;
	if (p) {
		unsigned long u = 0;
		const char *d;

		if (!*p)
			return ROUTE_EBAD;
		for (d = p; *d; d++) {
			if (*d < '0' || *d > '9')
				return ROUTE_EBAD;
			u = u * 10 + (unsigned long)(*d - '0');
			if (u > 65535)
				return ROUTE_EBAD;
		}
		if (u == 0)
			return ROUTE_EBAD;
		*port = (unsigned)u;
	}
	return ROUTE_OK;
}

const char *
vdom_line(const str *lines, size_t n, const char *key, size_t klen,
          size_t *plen)
{
	size_t i, off = 0;

	for (i = 0; i < n; i++) {
		const char *it = item(lines, &off);
		const char *colon = strchr(it, ':');

		if (colon && (size_t)(colon - it) == klen &&
		    !strncasecmp(it, key, klen)) {
			*plen = strlen(colon + 1);
			return colon + 1;
		}
	}
	return 0;
}

const char *
vdom_find(const str *lines, size_t n, const char *a, size_t alen, size_t *plen)
{
	const char *at = memrchr(a, '@', alen), *dom, *pre;
	size_t dl, i;

	if (!at)
		return 0;
	dom = at + 1;
	dl = alen - (size_t)(dom - a);
	pre = vdom_line(lines, n, a, alen, plen);
	if (!pre)
		pre = vdom_line(lines, n, dom, dl, plen);
	for (i = 0; !pre && i < dl; i++)
		if (dom[i] == '.')
			pre = vdom_line(lines, n, dom + i, dl - i, plen);
	if (!pre)
		pre = vdom_line(lines, n, "", 0, plen);
	return pre;
}

int
vdom_rewrite(const str *lines, size_t n, const char *a, size_t alen, str *out)
{
	const char *pre;
	size_t pl = 0;

	pre = vdom_find(lines, n, a, alen, &pl);
	if (!pre || !pl)
		return 0; /* no line, or an exception */
	/* prepend-user@domain: a is user@domain */
	if (str_copyb(out, pre, pl) == -1 || str_catc(out, '-') == -1 ||
	    str_catb(out, a, alen) == -1 || str_0(out) == -1)
		return -1;
	return 1;
}
