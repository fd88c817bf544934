/*
 * ipmatch.c: fuzz target for the address and rule parsers of ipmatch.h.
 *
 * Any input is parsed as an address and as a rule; what parses must format
 * and parse back to the same bytes, and a rule must match its own address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipmatch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	unsigned char ip[IP_LEN], back[IP_LEN];
	char buf[IP_FMT];
	struct ipnet net;
	size_t n;

	if (ip_parse(s, size, ip) == 0) {
		n = ip_fmt(buf, ip);
		if (n == 0 || n >= IP_FMT || ip_parse(buf, n, back) != 0 ||
		    memcmp(ip, back, IP_LEN))
			abort();
	}
	if (ipnet_parse(s, size, &net) == 0) {
		if (net.bits > 128 || !ipnet_match(&net, net.ip))
			abort();
	}
	return 0;
}
