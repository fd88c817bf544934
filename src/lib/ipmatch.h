/*
 * ipmatch.h: IP addresses and the address rules of control/relayclients.
 *
 * Every address is kept as 16 bytes: an IPv6 address as it is, an IPv4
 * address as the IPv4-mapped IPv6 address ::ffff:a.b.c.d.  So one rule type
 * covers both families, and an IPv4 client that reaches a dual-stack socket
 * as ::ffff:a.b.c.d is the same client as one that reaches an IPv4 socket.
 *
 * A rule (struct ipnet) is an address and a prefix length in bits, written
 * as one of
 *   1.2.3.4          one IPv4 address
 *   10.0.0.0/8       an IPv4 prefix (host bits are ignored)
 *   192.168.         a qmail-style prefix: one to three octets, each
 *                    followed by a dot
 *   2001:db8::1      one IPv6 address
 *   2001:db8::/32    an IPv6 prefix
 * An IPv4 rule matches IPv4 clients only.  An IPv6 rule is compared with
 * the 16-byte form, so ::/0 matches every client, IPv4 ones included.
 * IPv4 octets are decimal without leading zeros ("010" is refused, not read
 * as octal).  Nothing here allocates or reads past the given length, so
 * the parsers take bytes straight from a file or the network.
 */
#ifndef MOAT_IPMATCH_H
#define MOAT_IPMATCH_H

#include <stddef.h>
#include <sys/socket.h>

#define IP_LEN 16
#define IP_FMT 46 /* room for ip_fmt()'s text and its NUL */

struct ipnet {
	unsigned char ip[IP_LEN];
	unsigned bits; /* 0..128, counted on the 16-byte form */
};

/* an IPv4 or IPv6 address of n bytes (no brackets, no prefix): 0 or -1 */
int ip_parse(const char *s, size_t n, unsigned char ip[IP_LEN]);
/* 1 if ip is an IPv4 (IPv4-mapped) address */
int ip_is4(const unsigned char ip[IP_LEN]);
/* the address (and port, if port is not NULL) of an AF_INET or AF_INET6
 * socket address; -1 (EAFNOSUPPORT) for any other family */
int ip_from_sa(const struct sockaddr *, socklen_t, unsigned char ip[IP_LEN],
               unsigned *port);
/* text form into buf (IP_FMT bytes): dotted quad for IPv4 and IPv4-mapped
 * addresses, RFC 5952 form for the rest; returns its length */
size_t ip_fmt(char *buf, const unsigned char ip[IP_LEN]);

/* one rule of n bytes, forms above: 0, or -1 if it is not a rule */
int ipnet_parse(const char *s, size_t n, struct ipnet *);
/* 1 if ip lies within the rule */
int ipnet_match(const struct ipnet *, const unsigned char ip[IP_LEN]);
/* 1 if ip lies within any of n rules */
int ipnet_any(const struct ipnet *, size_t n, const unsigned char ip[IP_LEN]);

#endif
