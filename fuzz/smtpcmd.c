/*
 * smtpcmd.c: fuzz target for the SMTP command parsers, the way moat-smtpd
 * uses them: smtp_cmd() on the line, then for MAIL and RCPT smtp_prefix(),
 * addr_path() and the smtp_param() loop, with smtp_number() on SIZE.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* every parameter of s[0..len): positions must only move forward */
static void
params(const char *s, size_t len)
{
	struct smtp_param p;
	size_t pos = 0, last = 0, count = 0;
	unsigned long long v;
	int r;

	while ((r = smtp_param(s, len, &pos, &p)) == 1) {
		if (pos <= last && count)
			abort();
		if (pos > len || p.keylen == 0 || p.key < s ||
		    p.key + p.keylen > s + pos)
			abort();
		if (p.val && (p.vallen == 0 || p.val < p.key + p.keylen ||
			      p.val + p.vallen > s + pos || memchr(p.val, '=', p.vallen)))
			abort();
		if (p.keylen == 4 && !strncasecmp(p.key, "SIZE", 4) && p.val) {
			if (smtp_number(p.val, p.vallen, &v) == 0 && p.vallen > 20)
				abort();
		}
		last = pos;
		if (++count > len + 1)
			abort(); /* no progress */
	}
	if (r != 0 && r != -1)
		abort();
	if (r == 0 && pos != len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static str out;
	const char *line = (const char *)data;
	struct smtp_cmd c;
	unsigned long long v;
	size_t off, rest;

	smtp_cmd(line, size, &c);
	if (c.verb == SMTP_BAD)
		return 0;
	if (memchr(line, 0, size))
		abort(); /* a NUL must make the line SMTP_BAD */
	if (c.arg < line || c.arg > line + size || c.arglen > size ||
	    c.arg + c.arglen > line + size)
		abort();
	if (c.arglen && (c.arg[0] == ' ' || c.arg[c.arglen - 1] == ' '))
		abort();
	smtp_number(c.arg, c.arglen, &v);
	if (c.verb != SMTP_MAIL && c.verb != SMTP_RCPT) {
		params(c.arg, c.arglen);
		return 0;
	}
	if (!smtp_prefix(c.arg, c.arglen,
			 c.verb == SMTP_MAIL ? "FROM:" : "TO:", &off))
		return 0;
	if (off > c.arglen)
		abort();
	if (addr_path(c.arg + off, c.arglen - off,
		      c.verb == SMTP_RCPT ? ADDR_NOAT : 0, &out, &rest) != ADDR_OK)
		return 0;
	if (rest > c.arglen - off || out.s[out.len])
		abort();
	params(c.arg + off + rest, c.arglen - off - rest);
	return 0;
}
