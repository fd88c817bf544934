/*
 * base64.c: strict RFC 4648 base64 (see base64.h).
 */
#include "base64.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
b64_encode(str *out, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		unsigned long v = (unsigned long)u[i] << 16 |
				  (unsigned long)u[i + 1] << 8 | u[i + 2];
		char q[4] = {alphabet[v >> 18], alphabet[v >> 12 & 63],
			     alphabet[v >> 6 & 63], alphabet[v & 63]};
		if (str_catb(out, q, 4) == -1)
			return -1;
	}
	if (n - i == 1) {
		char q[4] = {alphabet[u[i] >> 2], alphabet[(u[i] & 3) << 4], '=',
			     '='};
		if (str_catb(out, q, 4) == -1)
			return -1;
	} else if (n - i == 2) {
		unsigned long v = (unsigned long)u[i] << 8 | u[i + 1];
		char q[4] = {alphabet[v >> 10], alphabet[v >> 4 & 63],
			     alphabet[(v & 15) << 2], '='};
		if (str_catb(out, q, 4) == -1)
			return -1;
	}
	return str_0(out);
}

static int
value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
b64_decode(str *out, const char *s, size_t n)
{
	size_t i;

	out->len = 0;
	if (str_ready(out, n / 4 * 3 + 1) == -1)
		return -1;
	if (n % 4)
		goto bad;
	for (i = 0; i < n; i += 4) {
		int a = value(s[i]), b = value(s[i + 1]), c, d;
		int last = i + 4 == n;

		if (a < 0 || b < 0)
			goto bad;
		c = s[i + 2] == '=' && last ? -2 : value(s[i + 2]);
		d = s[i + 3] == '=' && last ? -2 : value(s[i + 3]);
		if (c == -1 || d == -1 || (c == -2 && d != -2))
			goto bad;
		out->s[out->len++] = (char)(a << 2 | b >> 4);
		if (c == -2) {
			if (b & 15)
				goto bad;
			break;
		}
		out->s[out->len++] = (char)((b & 15) << 4 | c >> 2);
		if (d == -2) {
			if (c & 3)
				goto bad;
			break;
		}
		out->s[out->len++] = (char)((c & 3) << 6 | d);
	}
	out->s[out->len] = 0;
	return 0;
bad:
	out->len = 0;
	out->s[0] = 0;
	return -2;
}
