/*
 * log.h: one-line log messages and fatal exits, on stderr.
 *
 * Every line starts with the program name.  Bytes that could forge a line
 * or a terminal sequence (control characters, DEL, non-ASCII) are shown as
 * \xHH, so text that came from the network can be logged safely.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

#include <stddef.h>

void log_init(const char *progname);
const char *log_prog(void);
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_sys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
_Noreturn void die_sys(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* copy n bytes of s into out (size outsize, NUL-terminated), escaped */
void log_escape(char *out, size_t outsize, const char *s, size_t n);

#endif
