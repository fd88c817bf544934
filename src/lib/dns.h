/*
 * dns.h: finding where to deliver mail for a domain (RFC 5321 section 5,
 * RFC 7505), through c-ares.
 *
 * dns_mx() looks up the MX records of a domain and then the addresses
 * (AAAA and A) of every MX host.  The hosts come out sorted by preference,
 * hosts of equal preference in random order; each host's IPv6 addresses
 * come before its IPv4 ones, each family in the order the server gave.  A
 * domain with no MX records but with addresses is its own mail exchanger
 * at preference 0 (the implicit MX).  An address literal ("[192.0.2.1]",
 * "[IPv6:2001:db8::1]") is returned as itself without any query.  CNAMEs
 * are followed by the resolver; answers longer than 512 bytes come over
 * TCP (c-ares retries a truncated UDP answer over TCP by itself).
 *
 * The resolver is the system's (/etc/resolv.conf) unless control/nameservers
 * names servers, one a line: "192.0.2.1", "192.0.2.1:5353", "2001:db8::1",
 * "[2001:db8::1]" or "[2001:db8::1]:5353".  Every call is bounded as a
 * whole by control/timeoutdns seconds (default 30); a query still
 * unanswered then is a temporary failure.  Search domains are never
 * applied: names are taken as fully qualified.
 *
 * Return codes, and the enhanced status code a caller should report:
 *   DNS_OK             at least one host has an address (see mxlist_status)
 *   DNS_TEMP           4.4.3  server failure, timeout, refused, no memory
 *   DNS_PERM_NXDOMAIN  5.1.2  the domain does not exist (or is no name)
 *   DNS_NULLMX         5.1.10 the domain accepts no mail ("MX 0 .")
 *   DNS_PERM_NOADDR    5.4.4  no MX host (nor the domain) has an address
 * On failure, err holds a short reason in words (NUL-terminated).
 */
#ifndef MOAT_DNS_H
#define MOAT_DNS_H

#include <stddef.h>

#include "ipmatch.h"
#include "str.h"

#define DNS_OK 0
#define DNS_TEMP -1
#define DNS_PERM_NXDOMAIN -2
#define DNS_NULLMX -3
#define DNS_PERM_NOADDR -4

#define DNS_HOST_MAX 64  /* MX hosts kept (the best ones) */
#define DNS_ADDR_MAX 100 /* addresses kept per host and family */

struct mxhost {
	char *name;    /* NUL-terminated; the literal's address for literals */
	unsigned pref; /* 0..65535 */
	str ips;       /* nip addresses of IP_LEN bytes (ipmatch.h form) */
	size_t nip;
	int status; /* DNS_OK, or why no address was found */
	str why;    /* the reason when status is not DNS_OK */
};

struct mxlist {
	struct mxhost *host;
	size_t n;
	int implicit; /* no MX records: the domain's own addresses */
	int literal;  /* an address literal */
};

/* clang-format off */
#define MXLIST_INIT {0, 0, 0, 0}
/* clang-format on */

/* MX then addresses of domain (or the literal); out is replaced */
int dns_mx(const char *domain, struct mxlist *out, str *err);
/* addresses only (no MX): one host, name, at preference 0 */
int dns_host(const char *name, struct mxlist *out, str *err);

/* parse an address literal "[a.b.c.d]" or "[IPv6:...]" of n bytes: 0 or -1 */
int dns_literal(const char *s, size_t n, unsigned char ip[IP_LEN]);

/* DNS_OK if some host has an address; else DNS_TEMP if some host's lookup
 * failed temporarily; else DNS_PERM_NOADDR (also for an empty list) */
int mxlist_status(const struct mxlist *);
/* remove host i, keeping the order */
void mxlist_drop(struct mxlist *, size_t i);
void mxlist_free(struct mxlist *);

#endif
