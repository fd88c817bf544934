/*
 * str.h: growable byte strings with size_t lengths.
 *
 * Every growth is checked for overflow before memory is touched: a request
 * that cannot be represented fails with errno = ERANGE instead of wrapping,
 * and an allocation failure fails with errno = ENOMEM.  Functions that can
 * fail return 0 on success and -1 on failure; the string is unchanged then.
 * A str need not be NUL-terminated; str_0() adds a terminator that is not
 * counted in len.
 */
#ifndef MOAT_STR_H
#define MOAT_STR_H

#include <stddef.h>

typedef struct {
	char *s;  /* bytes, or NULL before the first growth */
	size_t len; /* bytes in use */
	size_t a;   /* bytes allocated */
} str;

#define STR_INIT {0, 0, 0}

int str_ready(str *, size_t);     /* room for at least n bytes in all */
int str_readyplus(str *, size_t); /* room for n more bytes */
int str_copyb(str *, const char *, size_t);
int str_copys(str *, const char *);
int str_catb(str *, const char *, size_t);
int str_cats(str *, const char *);
int str_catc(str *, char);
int str_catu(str *, unsigned long long);
int str_0(str *); /* NUL after the last byte, not counted in len */
void str_drop(str *, size_t); /* remove the first n bytes (n <= len) */
/* n more bytes from offset *pos on are done with (written, say): they are
 * removed once all of x is, or half of it, so that taking a big buffer a
 * piece at a time stays linear; x is empty exactly when all is done */
void str_done(str *, size_t *pos, size_t n);
void str_free(str *);

/* checked size arithmetic: 0 on success, -1 (errno ERANGE) on overflow */
int size_add(size_t *, size_t, size_t);
int size_mul(size_t *, size_t, size_t);

#endif
