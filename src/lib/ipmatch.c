/*
 * ipmatch.c: IP addresses and relayclients rules; see ipmatch.h.
 *
 * IPv4 is parsed here (strictly: four decimal octets, no leading zeros);
 * IPv6 goes through inet_pton() on a bounded, NUL-terminated copy.
 */
#include "ipmatch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
                                           0, 0, 0, 0, 0xff, 0xff};

/* a decimal number of 1..maxdigits digits, no leading zero, at most max;
 * returns the bytes used or 0 */
static size_t
decimal(const char *s, size_t n, unsigned max, size_t maxdigits, unsigned *out)
{
	size_t i = 0;
	unsigned v = 0;

	while (i < n && i < maxdigits && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (unsigned)(s[i] - '0');
		i++;
	}
	if (i == 0 || (i > 1 && s[0] == '0') || v > max)
		return 0;
	if (i < n && s[i] >= '0' && s[i] <= '9')
		return 0; /* too many digits */
	*out = v;
	return i;
}

/*
 * Up to four octets "a.b.c.d" into ip (mapped).  With prefix set, the text
 * may instead be one to three octets each followed by a dot; *octets says
 * how many were given.  Returns 0 or -1.
 */
static int
parse4(const char *s, size_t n, unsigned char ip[IP_LEN], int prefix,
       unsigned *octets)
{
	size_t pos = 0, k;
	unsigned i, v;

	memset(ip, 0, IP_LEN);
	memcpy(ip, v4mapped, sizeof v4mapped);
	for (i = 0; i < 4; i++) {
		k = decimal(s + pos, n - pos, 255, 3, &v);
		if (!k)
			return -1;
		ip[12 + i] = (unsigned char)v;
		pos += k;
		if (i == 3)
			break;
		if (pos == n || s[pos] != '.')
			return -1;
		pos++;
		if (pos == n && prefix) {
			*octets = i + 1;
			return 0;
		}
	}
	if (pos != n)
		return -1;
	*octets = 4;
	return 0;
}

static int
parse6(const char *s, size_t n, unsigned char ip[IP_LEN])
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof buf || memchr(s, 0, n))
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	return inet_pton(AF_INET6, buf, ip) == 1 ? 0 : -1;
}

int
ip_parse(const char *s, size_t n, unsigned char ip[IP_LEN])
{
	unsigned octets;

	if (n && memchr(s, ':', n))
		return parse6(s, n, ip);
	return parse4(s, n, ip, 0, &octets);
}

int
ip_is4(const unsigned char ip[IP_LEN])
{
	return !memcmp(ip, v4mapped, sizeof v4mapped);
}

int
ip_from_sa(const struct sockaddr *sa, socklen_t len, unsigned char ip[IP_LEN],
           unsigned *port)
{
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		memcpy(ip, v4mapped, sizeof v4mapped);
		memcpy(ip + 12, &s4->sin_addr, 4);
		if (port)
			*port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(ip, &s6->sin6_addr, IP_LEN);
		if (port)
			*port = ntohs(s6->sin6_port);
		return 0;
	}
	errno = EAFNOSUPPORT;
	return -1;
}

size_t
ip_fmt(char *buf, const unsigned char ip[IP_LEN])
{
	const char *r;

	if (ip_is4(ip))
		r = inet_ntop(AF_INET, ip + 12, buf, IP_FMT);
	else
		r = inet_ntop(AF_INET6, ip, buf, IP_FMT);
	if (!r)
		buf[0] = 0; /* cannot happen: IP_FMT is large enough */
	return strlen(buf);
}

int
ipnet_parse(const char *s, size_t n, struct ipnet *net)
{
	const char *slash = n ? memchr(s, '/', n) : 0;
	size_t alen = slash ? (size_t)(slash - s) : n;
	unsigned octets, bits, max;
	size_t k;
	int is6 = alen && memchr(s, ':', alen) != 0;

	if (!slash && !is6 && n && s[n - 1] == '.') {
		if (parse4(s, n, net->ip, 1, &octets) == -1 || octets == 4)
			return -1;
		net->bits = 96 + 8 * octets;
		return 0;
	}
	if (is6 ? parse6(s, alen, net->ip)
	        : parse4(s, alen, net->ip, 0, &octets))
		return -1;
	if (!slash) {
		net->bits = 128;
		return 0;
	}
	max = is6 ? 128 : 32;
	alen++; /* past the slash */
	k = decimal(s + alen, n - alen, max, 3, &bits);
	if (!k || k != n - alen)
		return -1;
	net->bits = is6 ? bits : 96 + bits;
	return 0;
}

int
ipnet_match(const struct ipnet *net, const unsigned char ip[IP_LEN])
{
	unsigned whole = net->bits / 8, rest = net->bits % 8;
	unsigned char mask;

	if (net->bits > 128)
		return 0;
	if (memcmp(net->ip, ip, whole))
		return 0;
	if (!rest)
		return 1;
	mask = (unsigned char)(0xff << (8 - rest));
	return ((net->ip[whole] ^ ip[whole]) & mask) == 0;
}

int
ipnet_any(const struct ipnet *nets, size_t n, const unsigned char ip[IP_LEN])
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ipnet_match(&nets[i], ip))
			return 1;
	return 0;
}
