/* unit tests for src/lib/str.c */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "tap.h"

/* under ASan, let a huge realloc() fail with NULL instead of aborting */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

static int
unchanged(const str *x, const char *s, size_t len, size_t a)
{
	return x->s && x->len == len && x->a == a && !memcmp(x->s, s, len);
}

static void
test_size(void)
{
	size_t r = 7;

	errno = 0;
	is_int(size_add(&r, 2, 3), 0, "size_add 2+3");
	is_int(r, 5, "size_add result");
	ok(size_add(&r, SIZE_MAX - 1, 1) == 0 && r == SIZE_MAX,
	   "size_add up to SIZE_MAX");
	errno = 0;
	is_int(size_add(&r, SIZE_MAX, 1), -1, "size_add SIZE_MAX+1 fails");
	is_int(errno, ERANGE, "size_add overflow: ERANGE");
	errno = 0;
	is_int(size_add(&r, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1), -1,
	       "size_add two halves fails");
	is_int(errno, ERANGE, "... ERANGE");

	is_int(size_mul(&r, 6, 7), 0, "size_mul 6*7");
	is_int(r, 42, "size_mul result");
	ok(size_mul(&r, 0, SIZE_MAX) == 0 && r == 0, "size_mul 0*SIZE_MAX");
	ok(size_mul(&r, SIZE_MAX, 1) == 0 && r == SIZE_MAX,
	   "size_mul SIZE_MAX*1");
	errno = 0;
	is_int(size_mul(&r, SIZE_MAX / 2 + 1, 2), -1, "size_mul overflow");
	is_int(errno, ERANGE, "size_mul overflow: ERANGE");
	errno = 0;
	is_int(size_mul(&r, (size_t)1 << (sizeof(size_t) * 4),
			(size_t)1 << (sizeof(size_t) * 4)),
	       -1, "size_mul 2^32*2^32 overflows");
	is_int(errno, ERANGE, "... ERANGE");
}

static void
test_growth(void)
{
	str x = STR_INIT;
	size_t i, changes = 0, last_a = 0;
	int good = 1;

	is_int(str_ready(&x, 0), 0, "str_ready(0) on an empty str");
	ok(x.s != NULL, "... allocates");
	is_int(x.len, 0, "... len stays 0");
	str_free(&x);
	ok(x.s == NULL && x.len == 0 && x.a == 0, "str_free resets");

	is_int(str_ready(&x, 100), 0, "str_ready(100)");
	ok(x.a >= 100, "... a >= 100");
	is_int(str_ready(&x, 50), 0, "str_ready smaller keeps");
	ok(x.a >= 100, "... a not shrunk");
	str_free(&x);

	for (i = 0; i < 200000; i++) {
		if (str_catc(&x, (char)('a' + i % 26)) == -1) {
			good = 0;
			break;
		}
		if (x.a != last_a) {
			changes++;
			last_a = x.a;
		}
		if (x.a < x.len)
			good = 0;
	}
	ok(good, "200000 str_catc succeed, a >= len throughout");
	is_int(x.len, 200000, "len after 200000 str_catc");
	ok(changes < 40, "geometric growth: %zu reallocations", changes);
	good = 1;
	for (i = 0; i < x.len; i++)
		if (x.s[i] != (char)('a' + i % 26))
			good = 0;
	ok(good, "content intact after growth");

	is_int(str_readyplus(&x, 1000000), 0, "str_readyplus(1000000)");
	ok(x.a >= x.len + 1000000, "... room for that much more");
	is_int(x.len, 200000, "... len unchanged");
	str_free(&x);
}

static void
test_copycat(void)
{
	str x = STR_INIT;
	char big[5000];

	is_int(str_copys(&x, "hello"), 0, "str_copys");
	is_mem(x.s, x.len, "hello", 5, "copys content");
	is_int(str_cats(&x, ", world"), 0, "str_cats");
	is_mem(x.s, x.len, "hello, world", 12, "cats content");
	is_int(str_catb(&x, "!\0?", 3), 0, "str_catb with a NUL");
	is_mem(x.s, x.len, "hello, world!\0?", 15, "catb keeps NUL bytes");
	is_int(str_catc(&x, 0), 0, "str_catc NUL");
	is_int(x.len, 16, "catc counts the NUL");
	is_int(str_catb(&x, NULL, 0), 0, "str_catb of nothing");
	is_int(x.len, 16, "... len unchanged");
	is_int(str_copyb(&x, "ab", 2), 0, "str_copyb shorter");
	is_mem(x.s, x.len, "ab", 2, "copyb replaces");
	is_int(str_copys(&x, ""), 0, "str_copys empty");
	is_int(x.len, 0, "... len 0");
	is_int(str_cats(&x, ""), 0, "str_cats empty");
	is_int(x.len, 0, "... len 0");

	/* copy from inside itself (no growth needed) */
	str_copys(&x, "0123456789");
	is_int(str_copyb(&x, x.s + 3, 4), 0, "str_copyb from itself");
	is_mem(x.s, x.len, "3456", 4, "... overlapping copy right");

	memset(big, 'z', sizeof big);
	is_int(str_copyb(&x, big, sizeof big), 0, "str_copyb 5000 bytes");
	ok(x.len == sizeof big && !memcmp(x.s, big, sizeof big),
	   "... content");
	is_int(str_catb(&x, big, sizeof big), 0, "str_catb 5000 more");
	ok(x.len == 2 * sizeof big && !memcmp(x.s + sizeof big, big, sizeof big),
	   "... content");
	str_free(&x);

	/* cat onto a str that was never grown */
	is_int(str_cats(&x, "x"), 0, "str_cats onto STR_INIT");
	is_mem(x.s, x.len, "x", 1, "... content");
	str_free(&x);
}

static void
test_catu(void)
{
	static const struct {
		unsigned long long u;
		const char *s;
	} t[] = {
		{0, "0"},
		{1, "1"},
		{9, "9"},
		{10, "10"},
		{23, "23"},
		{100, "100"},
		{1234567890ULL, "1234567890"},
		{4294967295ULL, "4294967295"},
		{4294967296ULL, "4294967296"},
		{10000000000000000000ULL, "10000000000000000000"},
		{ULLONG_MAX, "18446744073709551615"},
	};
	str x = STR_INIT;
	size_t i;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		x.len = 0;
		is_int(str_catu(&x, t[i].u), 0, "str_catu %s", t[i].s);
		is_mem(x.s, x.len, t[i].s, strlen(t[i].s), "str_catu -> %s",
		       t[i].s);
	}
	str_copys(&x, "id=");
	str_catu(&x, 42);
	str_catc(&x, '/');
	str_catu(&x, 0);
	is_mem(x.s, x.len, "id=42/0", 7, "str_catu appends");
	str_free(&x);
}

static void
test_zero(void)
{
	str x = STR_INIT;

	is_int(str_0(&x), 0, "str_0 on STR_INIT");
	ok(x.s && x.s[0] == 0, "... empty C string");
	is_int(x.len, 0, "... not counted");
	str_copys(&x, "abc");
	is_int(str_0(&x), 0, "str_0");
	is_int(x.len, 3, "str_0 does not count the NUL");
	is_str(x.s, "abc", "str_0 terminates");
	is_int(str_0(&x), 0, "str_0 twice");
	is_int(x.len, 3, "... still 3");
	/* exactly full: str_0 must grow */
	str_free(&x);
	str_ready(&x, 4);
	while (x.len < x.a)
		str_catc(&x, 'q');
	is_int(str_0(&x), 0, "str_0 on a full str grows it");
	ok(x.a > x.len && x.s[x.len] == 0, "... and terminates");
	str_free(&x);
}

static void
test_overflow(void)
{
	str x = STR_INIT;
	char *s0;
	size_t len0, a0;

	str_copys(&x, "keep me");
	s0 = x.s;
	len0 = x.len;
	a0 = x.a;

	errno = 0;
	is_int(str_readyplus(&x, SIZE_MAX), -1, "str_readyplus(SIZE_MAX) fails");
	is_int(errno, ERANGE, "... ERANGE");
	ok(x.s == s0 && unchanged(&x, "keep me", len0, a0), "... str unchanged");

	errno = 0;
	is_int(str_readyplus(&x, SIZE_MAX - len0 + 1), -1,
	       "str_readyplus that wraps to 0 fails");
	is_int(errno, ERANGE, "... ERANGE");
	ok(x.s == s0 && unchanged(&x, "keep me", len0, a0), "... str unchanged");

	errno = 0;
	is_int(str_readyplus(&x, PTRDIFF_MAX), -1,
	       "str_readyplus(PTRDIFF_MAX) on a non-empty str fails");
	is_int(errno, ERANGE, "... ERANGE (beyond PTRDIFF_MAX)");
	ok(x.s == s0 && unchanged(&x, "keep me", len0, a0), "... str unchanged");

	errno = 0;
	is_int(str_catb(&x, "abc", SIZE_MAX), -1, "str_catb SIZE_MAX bytes fails");
	is_int(errno, ERANGE, "... ERANGE");
	ok(unchanged(&x, "keep me", len0, a0), "... str unchanged");

	errno = 0;
	is_int(str_ready(&x, SIZE_MAX), -1, "str_ready(SIZE_MAX) fails");
	is_int(errno, ERANGE, "... ERANGE");
	errno = 0;
	is_int(str_ready(&x, (size_t)PTRDIFF_MAX + 1), -1,
	       "str_ready(PTRDIFF_MAX+1) fails");
	is_int(errno, ERANGE, "... ERANGE");
	ok(unchanged(&x, "keep me", len0, a0), "... str unchanged");

	/* representable but not allocatable: must fail cleanly, not crash */
	errno = 0;
	is_int(str_ready(&x, PTRDIFF_MAX), -1, "str_ready(PTRDIFF_MAX) fails");
	is_int(errno, ENOMEM, "... ENOMEM");
	ok(unchanged(&x, "keep me", len0, a0), "... str unchanged");
	errno = 0;
	is_int(str_ready(&x, PTRDIFF_MAX - 100), -1,
	       "str_ready(PTRDIFF_MAX-100) fails (growth headroom overflows)");
	is_int(errno, ENOMEM, "... ENOMEM");
	errno = 0;
	is_int(str_ready(&x, (size_t)PTRDIFF_MAX / 3 * 2), -1,
	       "str_ready(2/3 PTRDIFF_MAX) fails");
	is_int(errno, ENOMEM, "... ENOMEM");
	ok(unchanged(&x, "keep me", len0, a0), "... str unchanged");

	/* still usable afterwards */
	is_int(str_cats(&x, "!"), 0, "str usable after failures");
	is_mem(x.s, x.len, "keep me!", 8, "... content");
	str_free(&x);

	/* on a str that was never grown */
	errno = 0;
	is_int(str_readyplus(&x, SIZE_MAX), -1,
	       "str_readyplus(SIZE_MAX) on STR_INIT fails");
	is_int(errno, ERANGE, "... ERANGE");
	ok(x.s == NULL && x.len == 0 && x.a == 0, "... str still empty");
}

static void
test_drop(void)
{
	str x = STR_INIT;
	size_t pos = 0, k, taken = 0;
	int same = 1;

	str_drop(&x, 0);
	is_int(x.len, 0, "str_drop on STR_INIT");
	str_copys(&x, "abcdef");
	str_drop(&x, 2);
	ok(x.len == 4 && !memcmp(x.s, "cdef", 4), "str_drop: the rest moves up");
	str_drop(&x, 4);
	is_int(x.len, 0, "str_drop of all of it");
	/* str_done: 1000 bytes taken 7 at a time read back in order, and
	 * the str is empty exactly when all of it is done */
	for (k = 0; k < 1000; k++)
		str_catc(&x, (char)('a' + k % 26));
	while (x.len) {
		size_t n = x.len - pos < 7 ? x.len - pos : 7;

		for (k = 0; k < n; k++)
			if (x.s[pos + k] != (char)('a' + (taken + k) % 26))
				same = 0;
		taken += n;
		str_done(&x, &pos, n);
		if (x.len && pos >= x.len)
			same = 0;
	}
	ok(same && taken == 1000 && pos == 0, "str_done: every byte once, "
	   "in order, then empty");
	/* bytes added meanwhile come after the undone ones */
	str_copys(&x, "0123456789");
	str_done(&x, &pos, 3);
	str_cats(&x, "ab");
	str_done(&x, &pos, 6);
	ok(x.len - pos == 3 && !memcmp(x.s + pos, "9ab", 3),
	   "str_done keeps what is added after the undone bytes");
	str_free(&x);
}

int
main(void)
{
	test_size();
	test_growth();
	test_copycat();
	test_catu();
	test_zero();
	test_drop();
	test_overflow();
	return done_testing();
}
