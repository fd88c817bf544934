/*
 * json.c: JSON string literals; see json.h.
 */
#include "json.h"

#include <string.h>

/* length of the valid UTF-8 sequence at s (at most n bytes), or 0 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0], cp;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0; /* overlong, surrogate or out of range */
	return len;
}

int
json_str(str *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, len = out->len;

	if (str_catc(out, '"') == -1)
		return -1;
	while (i < n) {
		unsigned c = u[i];
		size_t l;
		int r;

		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			r = str_catb(out, e, 2);
			l = 1;
		} else if (c == '\n') {
			r = str_catb(out, "\\n", 2), l = 1;
		} else if (c == '\t') {
			r = str_catb(out, "\\t", 2), l = 1;
		} else if (c == '\r') {
			r = str_catb(out, "\\r", 2), l = 1;
		} else if (c < 0x20 || c == 0x7f ||
		           (c >= 0x80 && !utf8_len(u + i, n - i))) {
			char e[6] = {'\\', 'u',         '0',
			             '0',  hex[c >> 4], hex[c & 15]};
			r = str_catb(out, e, 6);
			l = 1;
		} else if (c >= 0x80) {
			l = utf8_len(u + i, n - i);
			r = str_catb(out, s + i, l);
		} else {
			/* a run of plain ASCII at once */
			for (l = 1;
			     i + l < n && u[i + l] >= 0x20 && u[i + l] < 0x7f &&
			     u[i + l] != '"' && u[i + l] != '\\';
			     l++)
				;
			r = str_catb(out, s + i, l);
		}
		if (r == -1) {
			out->len = len;
			return -1;
		}
		i += l;
	}
	if (str_catc(out, '"') == -1) {
		out->len = len;
		return -1;
	}
	return 0;
}

int
json_strs(str *out, const char *s)
{
	return json_str(out, s, strlen(s));
}
