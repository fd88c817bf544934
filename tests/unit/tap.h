/*
 * tap.h: a tiny Test Anything Protocol helper for the unit tests.
 *
 *   plan(n);                     optional: "1..n" up front
 *   ok(cond, "name %d", i);      "ok N - name" or "not ok N - name"
 *   is_int(got, want, "name");   ok() that shows both values on failure
 *   is_str(got, want, "name");   NUL-terminated strings (NULL allowed)
 *   is_mem(got, glen, want, wlen, "name");  byte strings, escaped on failure
 *   diag("...");                 "# ..." on stderr
 *   return done_testing();       prints "1..N" if no plan was given, a
 *                                summary, and returns the exit status
 *                                (non-zero if any test failed or the plan
 *                                was not followed)
 *
 * Every line is flushed at once, so a test may fork without duplicating
 * buffered output.
 */
#ifndef MOAT_TAP_H
#define MOAT_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_planned = -1;
static int tap_run;
static int tap_failed;

static inline void
plan(int n)
{
	tap_planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void __attribute__((format(printf, 1, 2)))
diag(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("# ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static inline int __attribute__((format(printf, 4, 5)))
tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	++tap_run;
	if (!pass)
		++tap_failed;
	printf("%sok %d - ", pass ? "" : "not ", tap_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!pass)
		diag("  Failed test at %s line %d.", file, line);
	return pass;
}

#define ok(cond, ...) tap_ok_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                              \
	tap_is_int_((long long)(got), (long long)(want), __FILE__, __LINE__, \
		    __VA_ARGS__)

static inline int __attribute__((format(printf, 5, 6)))
tap_is_int_(long long got, long long want, const char *file, int line,
	    const char *fmt, ...)
{
	char name[512];
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	tap_ok_(pass, file, line, "%s", name);
	if (!pass)
		diag("         got: %lld\n#     expected: %lld", got, want);
	return pass;
}

/* s[0..n) with non-printable bytes as \xHH, into a static buffer */
static inline const char *
tap_esc_(const char *s, size_t n, char *out, size_t outsize)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (!s)
		return "(null)";
	out[o++] = '"';
	for (i = 0; i < n && o + 6 < outsize; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (i < n) {
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o++] = '"';
	out[o] = 0;
	return out;
}

#define is_mem(got, glen, want, wlen, ...)                                   \
	tap_is_mem_((got), (glen), (want), (wlen), __FILE__, __LINE__,      \
		    __VA_ARGS__)
#define is_str(got, want, ...)                                               \
	tap_is_str_((got), (want), __FILE__, __LINE__, __VA_ARGS__)

static inline int __attribute__((format(printf, 7, 8)))
tap_is_mem_(const char *got, size_t glen, const char *want, size_t wlen,
	    const char *file, int line, const char *fmt, ...)
{
	char name[512], b1[600], b2[600];
	va_list ap;
	int pass;

	if (!got || !want)
		pass = got == want;
	else
		pass = glen == wlen && (!glen || !memcmp(got, want, glen));
	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	tap_ok_(pass, file, line, "%s", name);
	if (!pass)
		diag("         got: %s (%zu bytes)\n#     expected: %s (%zu bytes)",
		     tap_esc_(got, glen, b1, sizeof b1), glen,
		     tap_esc_(want, wlen, b2, sizeof b2), wlen);
	return pass;
}

static inline int __attribute__((format(printf, 5, 6)))
tap_is_str_(const char *got, const char *want, const char *file, int line,
	    const char *fmt, ...)
{
	char name[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof name, fmt, ap);
	va_end(ap);
	return tap_is_mem_(got, got ? strlen(got) : 0, want,
			   want ? strlen(want) : 0, file, line, "%s", name);
}

static inline int
done_testing(void)
{
	if (tap_planned < 0) {
		printf("1..%d\n", tap_run);
		fflush(stdout);
	} else if (tap_planned != tap_run) {
		diag("planned %d tests but ran %d", tap_planned, tap_run);
		return 255;
	}
	if (tap_failed) {
		diag("failed %d of %d tests", tap_failed, tap_run);
		return tap_failed < 254 ? tap_failed : 254;
	}
	return 0;
}

#endif
