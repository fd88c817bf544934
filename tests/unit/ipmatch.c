/*
 * ipmatch.c: unit tests for src/lib/ipmatch.c (TAP on stdout).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ipmatch.h"

static int n_test;
static int failed;

static void
ok(int cond, const char *what, const char *arg)
{
	n_test++;
	printf("%sok %d - %s %s\n", cond ? "" : "not ", n_test, what, arg);
	if (!cond)
		failed = 1;
}

/* does rule match address? -1 if either fails to parse */
static int
matches(const char *rule, const char *addr)
{
	struct ipnet net;
	unsigned char ip[IP_LEN];

	if (ipnet_parse(rule, strlen(rule), &net) == -1 ||
	    ip_parse(addr, strlen(addr), ip) == -1)
		return -1;
	return ipnet_match(&net, ip);
}

/* clang-format off */
static const char *good_addr[] = {
	"0.0.0.0", "127.0.0.1", "255.255.255.255", "10.0.0.1", "::", "::1",
	"2001:db8::1", "fe80::1:2:3:4", "::ffff:192.0.2.1",
	"1:2:3:4:5:6:7:8",
};

static const char *bad_addr[] = {
	"", "1", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04", "01.2.3.4",
	"1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.", "a.b.c.d", "1.2.3.1000",
	":::", "1:2:3:4:5:6:7:8:9", "[::1]", "::1%lo", "fe80::g", "1.2.3.4/8",
	"2001:db8::1111111111111111111111111111111111111111111111111111",
};

static const char *good_rule[] = {
	"1.2.3.4", "10.0.0.0/8", "0.0.0.0/0", "1.2.3.4/32", "192.168.",
	"10.", "172.16.0.", "::1", "2001:db8::/32", "::/0", "::1/128",
};

static const char *bad_rule[] = {
	"", "/", "1.2.3.4/", "1.2.3.4/33", "::/129", "1.2.3.4/08",
	"1.2.3.4/-1", "1.2.3.4/8/8", "1.2.3.4.", "192.168", ".", "10..",
	"256.", "2001:db8::/", "2001:db8::/1234", "1.2.3.4/ 8", "localhost",
	"1.2.3.4:allow", "*",
};

static const struct {
	const char *rule, *addr;
	int want;
} match_cases[] = {
	{"127.0.0.1", "127.0.0.1", 1},
	{"127.0.0.1", "127.0.0.2", 0},
	{"127.", "127.0.0.2", 1},
	{"127.", "128.0.0.1", 0},
	{"192.168.", "192.168.7.9", 1},
	{"192.168.", "192.169.0.1", 0},
	{"172.16.0.", "172.16.0.255", 1},
	{"172.16.0.", "172.16.1.0", 0},
	{"10.0.0.0/8", "10.255.1.2", 1},
	{"10.0.0.0/8", "11.0.0.0", 0},
	{"10.1.2.3/8", "10.9.9.9", 1}, /* host bits ignored */
	{"172.16.0.0/12", "172.31.255.255", 1},
	{"172.16.0.0/12", "172.32.0.0", 0},
	{"0.0.0.0/0", "203.0.113.5", 1},
	{"0.0.0.0/0", "::1", 0}, /* an IPv4 rule matches IPv4 only */
	{"1.2.3.4", "::ffff:1.2.3.4", 1},
	{"::ffff:1.2.3.0/120", "1.2.3.77", 1},
	{"::1", "::1", 1},
	{"::1", "::2", 0},
	{"::1", "127.0.0.1", 0},
	{"2001:db8::/32", "2001:db8:ffff::1", 1},
	{"2001:db8::/32", "2001:db9::1", 0},
	{"2001:db8::/33", "2001:db8:7fff::1", 1},
	{"2001:db8::/33", "2001:db8:8000::1", 0},
	{"::/0", "2001:db8::1", 1},
	{"::/0", "127.0.0.1", 1}, /* documented: ::/0 is everything */
	{"fe80::/10", "febf::1", 1},
	{"fe80::/10", "fec0::1", 0},
};

static const struct {
	const char *in, *out;
} fmt_cases[] = {
	{"127.0.0.1", "127.0.0.1"},
	{"::ffff:192.0.2.1", "192.0.2.1"},
	{"::1", "::1"},
	{"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
};

/* clang-format on */

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

int
main(void)
{
	size_t i;
	unsigned char ip[IP_LEN];
	struct ipnet net, nets[2];
	char buf[IP_FMT];
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	unsigned port;

	printf("1..%zu\n", COUNT(good_addr) + COUNT(bad_addr) +
	                       COUNT(good_rule) + COUNT(bad_rule) +
	                       COUNT(match_cases) + COUNT(fmt_cases) + 7);
	for (i = 0; i < COUNT(good_addr); i++)
		ok(ip_parse(good_addr[i], strlen(good_addr[i]), ip) == 0,
		   "address parses:", good_addr[i]);
	for (i = 0; i < COUNT(bad_addr); i++)
		ok(ip_parse(bad_addr[i], strlen(bad_addr[i]), ip) == -1,
		   "address refused:", bad_addr[i]);
	for (i = 0; i < COUNT(good_rule); i++)
		ok(ipnet_parse(good_rule[i], strlen(good_rule[i]), &net) == 0,
		   "rule parses:", good_rule[i]);
	for (i = 0; i < COUNT(bad_rule); i++)
		ok(ipnet_parse(bad_rule[i], strlen(bad_rule[i]), &net) == -1,
		   "rule refused:", bad_rule[i]);
	for (i = 0; i < COUNT(match_cases); i++) {
		char what[128];

		snprintf(what, sizeof what, "%s %s",
		         match_cases[i].want ? "matches" : "does not match",
		         match_cases[i].addr);
		ok(matches(match_cases[i].rule, match_cases[i].addr) ==
		       match_cases[i].want,
		   match_cases[i].rule, what);
	}
	for (i = 0; i < COUNT(fmt_cases); i++) {
		ip_parse(fmt_cases[i].in, strlen(fmt_cases[i].in), ip);
		ip_fmt(buf, ip);
		ok(!strcmp(buf, fmt_cases[i].out), "formats as",
		   fmt_cases[i].out);
	}

	/* a length shorter than the string: only those bytes count */
	ok(ip_parse("1.2.3.45", 7, ip) == 0 && ip[15] == 4, "length bounds",
	   "1.2.3.4|5");
	ok(ipnet_parse("10.0.0.0/8", 9, &net) == -1, "length bounds",
	   "10.0.0.0/|8");

	memset(&s4, 0, sizeof s4);
	s4.sin_family = AF_INET;
	s4.sin_port = htons(2525);
	s4.sin_addr.s_addr = htonl(0x7f000002);
	ok(ip_from_sa((struct sockaddr *)&s4, sizeof s4, ip, &port) == 0 &&
	       port == 2525 && ip_is4(ip) && ip_fmt(buf, ip) &&
	       !strcmp(buf, "127.0.0.2"),
	   "sockaddr_in", "127.0.0.2:2525");
	memset(&s6, 0, sizeof s6);
	s6.sin6_family = AF_INET6;
	s6.sin6_port = htons(25);
	s6.sin6_addr = in6addr_loopback;
	ok(ip_from_sa((struct sockaddr *)&s6, sizeof s6, ip, &port) == 0 &&
	       port == 25 && !ip_is4(ip) && ip_fmt(buf, ip) &&
	       !strcmp(buf, "::1"),
	   "sockaddr_in6", "[::1]:25");
	s6.sin6_family = AF_UNIX;
	ok(ip_from_sa((struct sockaddr *)&s6, sizeof s6, ip, &port) == -1,
	   "other family", "refused");

	ipnet_parse("10.", 3, &nets[0]);
	ipnet_parse("::1", 3, &nets[1]);
	ip_parse("::1", 3, ip);
	ok(ipnet_any(nets, 2, ip) == 1, "ipnet_any", "finds the second rule");
	ok(ipnet_any(nets, 0, ip) == 0, "ipnet_any", "of no rules is false");
	return failed;
}
