/*
 * str.c: growable byte strings; see str.h.
 *
 * Growth is geometric (half again) so appending n bytes one at a time costs
 * O(n); every size computation goes through size_add/size_mul.
 */
#include "str.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
size_add(size_t *r, size_t a, size_t b)
{
	if (__builtin_add_overflow(a, b, r)) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}

int
size_mul(size_t *r, size_t a, size_t b)
{
	if (__builtin_mul_overflow(a, b, r)) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}

int
str_ready(str *x, size_t n)
{
	size_t want;
	char *p;

	if (x->s && n <= x->a)
		return 0;
	/* ask for n plus half again, but fall back to n if that overflows */
	if (size_add(&want, n, n / 2) == -1 || size_add(&want, want, 16) == -1)
		want = n;
	if (want > PTRDIFF_MAX) {
		if (n > PTRDIFF_MAX) {
			errno = ERANGE;
			return -1;
		}
		want = n;
	}
	p = realloc(x->s, want ? want : 1);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	x->s = p;
	x->a = want;
	return 0;
}

int
str_readyplus(str *x, size_t n)
{
	size_t want;

	if (size_add(&want, x->len, n) == -1)
		return -1;
	return str_ready(x, want);
}

int
str_catb(str *x, const char *b, size_t n)
{
	if (str_readyplus(x, n) == -1)
		return -1;
	if (n)
		memcpy(x->s + x->len, b, n);
	x->len += n;
	return 0;
}

int
str_copyb(str *x, const char *b, size_t n)
{
	if (str_ready(x, n) == -1)
		return -1;
	if (n)
		memmove(x->s, b, n);
	x->len = n;
	return 0;
}

int
str_copys(str *x, const char *s)
{
	return str_copyb(x, s, strlen(s));
}

int
str_cats(str *x, const char *s)
{
	return str_catb(x, s, strlen(s));
}

int
str_catc(str *x, char c)
{
	return str_catb(x, &c, 1);
}

int
str_catu(str *x, unsigned long long u)
{
	char buf[24];
	size_t i = sizeof buf;

	do {
		buf[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return str_catb(x, buf + i, sizeof buf - i);
}

int
str_0(str *x)
{
	if (str_readyplus(x, 1) == -1)
		return -1;
	x->s[x->len] = 0;
	return 0;
}

void
str_drop(str *x, size_t n)
{
	if (n >= x->len) {
		x->len = 0;
		return;
	}
	memmove(x->s, x->s + n, x->len - n);
	x->len -= n;
}

void
str_done(str *x, size_t *pos, size_t n)
{
	*pos += n;
	if (*pos >= x->len) {
		x->len = 0;
		*pos = 0;
	} else if (*pos >= x->len / 2) {
		str_drop(x, *pos);
		*pos = 0;
	}
}

void
str_free(str *x)
{
	free(x->s);
	x->s = 0;
	x->len = 0;
	x->a = 0;
}
