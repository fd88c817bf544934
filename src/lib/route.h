/*
 * route.h: the lookups in control/smtproutes (moat-remote) and
 * control/virtualdomains (moat-send); see moat-remote(8), moat-send(8)
 * and moat-control(5).
 *
 * Every function takes the file's lines as ctl_list() returns them (n
 * NUL-terminated items one after another in lines->s) and reads nothing
 * else: no file, no exit.  Keys match in any case; of several lines with
 * the same key the first wins.  Uses nothing beyond libc and str.h.
 *
 * smtproutes: "key:relay[:port]".  The key ends at the first ':', except
 * that in a line starting with '[' whose first ']' is followed by ':' it
 * ends at that ']' (an address literal may hold colons).  Lines without a
 * ':' have no key.  A domain is looked up exactly, then (unless it
 * starts with '[', an address literal) by each of its suffixes that
 * starts with a dot, longest first, then by the empty key.
 *
 * virtualdomains: "key:prepend", the key ending at the first ':'.  An
 * address user@domain is looked up whole, then by its domain, then by
 * each suffix of the domain that starts with a dot, longest first, then
 * by the empty key.  An empty prepend is an exception (remote).
 */
#ifndef MOAT_ROUTE_H
#define MOAT_ROUTE_H

#include <stddef.h>

#include "str.h"

/* results of route_parse() */
enum route_err {
	ROUTE_OK,
	ROUTE_ENOMEM,
	ROUTE_EBAD, /* the value does not parse */
};

#define ROUTE_PORT 25 /* the port when the value names none */

/* the value of the smtproutes line for key (exactly), or NULL */
const char *route_line(const str *lines, size_t n, const char *key,
                       size_t klen);

/* the value of the smtproutes line that routes domain: exact, .suffixes,
 * then the default; NULL when none does */
const char *route_find(const str *lines, size_t n, const char *domain);

/*
 * Parse an smtproutes value "relay[:port]" (NUL-terminated) into relay
 * (NUL-terminated; empty means MX; "[2001:db8::1]" becomes
 * "[IPv6:2001:db8::1]") and port (1 to 65535, ROUTE_PORT when absent).
 * Returns ROUTE_OK, ROUTE_EBAD (a bracket not closed or followed by
 * something else than ":port", a port empty, not decimal or out of
 * range) or ROUTE_ENOMEM.
 */
int route_parse(const char *v, str *relay, unsigned *port);

/* the prepend of the virtualdomains line for key (exactly), or NULL;
 * *plen its length (0: an exception) */
const char *vdom_line(const str *lines, size_t n, const char *key, size_t klen,
                      size_t *plen);

/* the prepend for the address a (alen bytes, the domain after its last
 * '@'): whole address, domain, .suffixes, then ""; NULL when no line
 * matches or a has no '@' */
const char *vdom_find(const str *lines, size_t n, const char *a, size_t alen,
                      size_t *plen);

/* the local address a becomes, "prepend-user@domain", into out
 * (NUL-terminated; not the memory of a): 1; 0 when a stays remote (no
 * line, or an exception); -1 out of memory (out may then be changed) */
int vdom_rewrite(const str *lines, size_t n, const char *a, size_t alen,
                 str *out);

#endif
