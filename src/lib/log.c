/*
 * log.c: stderr logging with escaping; see log.h.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog = "moat";

void
log_init(const char *p)
{
	const char *slash = strrchr(p, '/');

	prog = slash ? slash + 1 : p;
}

const char *
log_prog(void)
{
	return prog;
}

void
log_escape(char *out, size_t outsize, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (!outsize)
		return;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f) {
			if (o + 1 >= outsize)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 4 >= outsize)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = 0;
}

static void
emit(const char *tag, const char *fmt, va_list ap, int err)
{
	char raw[2048], line[4096];
	int n;
	size_t len;

	n = vsnprintf(raw, sizeof raw, fmt, ap);
	if (n < 0)
		n = 0;
	len = (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1;
	log_escape(line, sizeof line, raw, len);
	if (err)
		fprintf(stderr, "%s: %s%s: %s\n", prog, tag, line, strerror(err));
	else
		fprintf(stderr, "%s: %s%s\n", prog, tag, line);
	fflush(stderr);
}

void
log_msg(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	emit("", fmt, ap, 0);
	va_end(ap);
	errno = e;
}

void
log_sys(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	emit("", fmt, ap, e);
	va_end(ap);
	errno = e;
}

void
die(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit("fatal: ", fmt, ap, 0);
	va_end(ap);
	_exit(code);
}

void
die_sys(int code, const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	va_start(ap, fmt);
	emit("fatal: ", fmt, ap, e);
	va_end(ap);
	_exit(code);
}
