/*
 * addr.c: SMTP path parser; see addr.h.
 *
 * The grammar is RFC 5321's: Mailbox = Local-part "@" ( Domain /
 * address-literal ), Local-part = Dot-string / Quoted-string.  Only ASCII is
 * accepted (SMTPUTF8 is not offered).  No byte of a path may be a control
 * character, so nothing parsed here can forge a log line or an envelope
 * record.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static int
is_atext(unsigned char c)
{
	return is_alnum(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* sub-domain *("." sub-domain), each let-dig [ldh-str] */
static int
dotted_ok(const char *d, size_t n)
{
	size_t i, lab = 0;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (lab == 0 || d[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (c == '-') {
			if (lab == 0)
				return 0;
		} else if (!is_alnum(c) && c != '_') {
			/* '_' is not in RFC 5321 but exists in real names */
			return 0;
		}
		if (++lab > 63)
			return 0;
	}
	return lab > 0 && d[n - 1] != '-';
}

int
addr_domain_ok(const char *d, size_t n)
{
	char buf[64];
	unsigned char bin[16];

	if (n > ADDR_DOMAIN_MAX)
		return 0;
	if (n >= 2 && d[0] == '[' && d[n - 1] == ']') {
		const char *in = d + 1;
		size_t l = n - 2;

		if (memchr(in, 0, l))
			return 0; /* inet_pton would stop at it */
		if (l >= 5 && !strncasecmp(in, "IPv6:", 5)) {
			in += 5;
			l -= 5;
			if (l == 0 || l >= sizeof buf)
				return 0;
			memcpy(buf, in, l);
			buf[l] = 0;
			return inet_pton(AF_INET6, buf, bin) == 1;
		}
		if (l == 0 || l >= sizeof buf)
			return 0;
		memcpy(buf, in, l);
		buf[l] = 0;
		return inet_pton(AF_INET, buf, bin) == 1;
	}
	return dotted_ok(d, n);
}

/* local part at s[0..n): unquoted into out; returns bytes used or -1 */
static long
local_part(const char *s, size_t n, str *out)
{
	size_t i = 0;

	if (n && s[0] == '"') {
		for (i = 1; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			if (c == '"') /* an empty local part is no address */
				return i > 1 ? (long)i + 1 : -1;
			if (c == '\\') {
				if (++i >= n)
					return -1;
				c = (unsigned char)s[i];
			}
			if (c < 32 || c > 126)
				return -1;
			if (str_catc(out, (char)c) == -1)
				return -2;
		}
		return -1; /* no closing quote */
	}
	while (i < n && is_atext((unsigned char)s[i])) {
		if (str_catc(out, s[i]) == -1)
			return -2;
		if (++i < n && s[i] == '.' && i + 1 < n &&
		    is_atext((unsigned char)s[i + 1])) {
			if (str_catc(out, '.') == -1)
				return -2;
			i++;
		}
	}
	return i ? (long)i : -1;
}

int
addr_path(const char *arg, size_t len, int flags, str *out, size_t *rest)
{
	size_t i = 0, start, end, at;
	int bracket = 0;
	long l;

	out->len = 0;
	while (i < len && arg[i] == ' ')
		i++;
	if (i < len && arg[i] == '<') {
		bracket = 1;
		i++;
		if (i < len && arg[i] == '>') {
			*rest = i + 1;
			return str_0(out) == -1 ? ADDR_NOMEM : ADDR_OK;
		}
		if (i < len && arg[i] == '@') {
			/* source route: "@" domain *("," "@" domain) ":" */
			size_t c = i;
			while (c < len && arg[c] != ':' && arg[c] != '>')
				c++;
			if (c >= len || arg[c] != ':')
				return ADDR_SYNTAX;
			for (size_t k = i; k < c;) {
				size_t e = k + 1;
				if (arg[k] != '@')
					return ADDR_SYNTAX;
				while (e < c && arg[e] != ',')
					e++;
				if (!addr_domain_ok(arg + k + 1, e - k - 1))
					return ADDR_SYNTAX;
				k = e + (e < c);
				if (e < c && k == c)
					return ADDR_SYNTAX;
			}
			i = c + 1;
		}
	}
	start = i;
	l = local_part(arg + i, len - i, out);
	if (l == -2)
		return ADDR_NOMEM;
	if (l < 0)
		return ADDR_SYNTAX;
	if ((size_t)l > ADDR_PATH_MAX - 2)
		return ADDR_TOOLONG; /* the path limit: addr.h */
	i += (size_t)l;
	if (i < len && arg[i] == '@') {
		at = ++i;
		end = at;
		while (end < len && arg[end] != '>' && arg[end] != ' ')
			end++;
		if (end - at > ADDR_DOMAIN_MAX)
			return ADDR_TOOLONG;
		if (!addr_domain_ok(arg + at, end - at))
			return ADDR_SYNTAX;
		if (str_catc(out, '@') == -1 ||
		    str_catb(out, arg + at, end - at) == -1)
			return ADDR_NOMEM;
		i = end;
	} else if (!(flags & ADDR_NOAT)) {
		return ADDR_SYNTAX;
	}
	if (i - start > ADDR_PATH_MAX - 2)
		return ADDR_TOOLONG;
	if (bracket) {
		if (i >= len || arg[i] != '>')
			return ADDR_SYNTAX;
		i++;
	} else if (i < len && arg[i] != ' ') {
		return ADDR_SYNTAX;
	}
	*rest = i;
	return str_0(out) == -1 ? ADDR_NOMEM : ADDR_OK;
}

const char *
addr_domain(const char *a, size_t len, size_t *dlen)
{
	const char *at = 0;
	size_t i;

	for (i = 0; i < len; i++)
		if (a[i] == '@')
			at = a + i;
	if (!at)
		return 0;
	*dlen = len - (size_t)(at + 1 - a);
	return at + 1;
}
