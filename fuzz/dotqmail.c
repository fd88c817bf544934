/*
 * dotqmail.c: fuzz target for dotqmail_parse() (the instructions of a
 * .qmail file), on the input as a whole file, parsed both as an ordinary
 * file and as a forward-only one (the x bit).  Checked:
 *
 *   - the result is a known code with a text; line is 0 on success and a
 *     line of the input after an error;
 *   - every argument is NUL-terminated, free of newlines and trailing
 *     blanks, at most DOTQMAIL_LINE_MAX bytes, and points into the
 *     parse's copy where the same bytes are in the input; Maildir and
 *     mbox paths start with '.' or '/', Maildirs end with '/' and mboxes
 *     do not; forward addresses are 1 to DOTQMAIL_ADDR_MAX bytes with no
 *     blank, control byte or angle bracket (only a program may be empty:
 *     a "|" line);
 *   - the counts match the instructions and stay within
 *     DOTQMAIL_DELIVERY_MAX and DOTQMAIL_FORWARD_MAX;
 *   - a forward-only parse has no Maildir, mbox or program; it succeeds,
 *     with the same instructions, exactly when the ordinary parse succeeds
 *     with forwards only; where the ordinary parse succeeds with
 *     deliveries, it is refused for the x bit;
 *   - after an error, parsing only the lines above the one at fault gives
 *     the same instructions without error (NUL bytes: none at all);
 *   - parsing is deterministic (the same again, into a fresh struct and
 *     into a used one) and leaves the input alone;
 *   - the instructions written back as a .qmail file parse the same;
 *   - dotqmail_free() releases everything (LeakSanitizer sees the rest).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotqmail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const struct dotqmail *a, const struct dotqmail *b)
{
	size_t i;

	if (a->n != b->n || a->ndelivery != b->ndelivery ||
	    a->nforward != b->nforward)
		return 0;
	for (i = 0; i < a->n; i++)
		if (a->v[i].type != b->v[i].type ||
		    strcmp(a->v[i].arg, b->v[i].arg))
			return 0;
	return 1;
}

static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static void
check_instr(const struct dotqmail *d, const struct dotqmail_instr *in,
            const char *data, size_t size)
{
	const char *a = in->arg;
	size_t n, i, off;

	/* in the parse's copy, at the offset of the same bytes in data */
	if (!a || a < d->buf || a > d->buf + size)
		abort();
	off = (size_t)(a - d->buf);
	n = strlen(a);
	if (n > DOTQMAIL_LINE_MAX || n > size - off || memchr(a, '\n', n) ||
	    (n && blank(a[n - 1])) || memcmp(a, data + off, n))
		abort();
	switch (in->type) {
	case DOTQMAIL_MAILDIR:
		if (!n || (a[0] != '.' && a[0] != '/') || a[n - 1] != '/')
			abort();
		break;
	case DOTQMAIL_MBOX:
		if (!n || (a[0] != '.' && a[0] != '/') || a[n - 1] == '/')
			abort();
		break;
	case DOTQMAIL_PROGRAM:
		break;
	case DOTQMAIL_FORWARD:
		if (!n || n > DOTQMAIL_ADDR_MAX)
			abort();
		for (i = 0; i < n; i++)
			if ((unsigned char)a[i] <= 32 || a[i] == 127 ||
			    a[i] == '<' || a[i] == '>')
				abort();
		break;
	default:
		abort();
	}
}

/* the whole result of one parse */
static void
check(const struct dotqmail *d, int r, const char *data, size_t size)
{
	size_t i, nd = 0, nf = 0, lines = 1;

	if (r < DOTQMAIL_OK || r > DOTQMAIL_EADDRCHAR ||
	    !strcmp(dotqmail_strerror(r), "unknown error"))
		abort();
	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (r == DOTQMAIL_OK ? d->line != 0 : d->line < 1 || d->line > lines)
		abort();
	if (d->n && (!d->v || !d->buf))
		abort();
	for (i = 0; i < d->n; i++) {
		check_instr(d, &d->v[i], data, size);
		if (d->v[i].type == DOTQMAIL_FORWARD)
			nf++;
		else
			nd++;
	}
	if (nd != d->ndelivery || nf != d->nforward ||
	    nd > DOTQMAIL_DELIVERY_MAX || nf > DOTQMAIL_FORWARD_MAX)
		abort();
	if (r == DOTQMAIL_ENUL && (d->n || !memchr(data, 0, size)))
		abort();
}

/* the lines above the one at fault parse the same, without error */
static void
check_above(const struct dotqmail *d, int r, const char *data, size_t size,
            int forwardonly)
{
	struct dotqmail above = DOTQMAIL_INIT;
	size_t off = 0, line = 1;

	if (r == DOTQMAIL_OK || r == DOTQMAIL_ENUL || r == DOTQMAIL_ENOMEM)
		return;
	while (line < d->line) {
		const char *nl = memchr(data + off, '\n', size - off);

		if (!nl)
			abort();
		off = (size_t)(nl - data) + 1;
		line++;
	}
	if (off == 0) {
		if (d->n)
			abort();
		return;
	}
	if (dotqmail_parse(&above, data, off, forwardonly) != DOTQMAIL_OK ||
	    !same(&above, d))
		abort();
	dotqmail_free(&above);
}

/* the instructions written back as a .qmail file parse the same */
static void
check_rewrite(const struct dotqmail *d)
{
	struct dotqmail again = DOTQMAIL_INIT;
	size_t len = 2, i;
	char *text, *p;

	for (i = 0; i < d->n; i++)
		len += strlen(d->v[i].arg) + 2;
	text = p = malloc(len);
	if (!text)
		abort();
	*p++ = '#';
	*p++ = '\n';
	for (i = 0; i < d->n; i++) {
		size_t n = strlen(d->v[i].arg);

		if (d->v[i].type == DOTQMAIL_PROGRAM)
			*p++ = '|';
		else if (d->v[i].type == DOTQMAIL_FORWARD)
			*p++ = '&';
		memcpy(p, d->v[i].arg, n);
		p += n;
		*p++ = '\n';
	}
	if (dotqmail_parse(&again, text, (size_t)(p - text), 0) !=
	        DOTQMAIL_OK ||
	    !same(&again, d))
		abort();
	dotqmail_free(&again);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dotqmail used = DOTQMAIL_INIT;
	struct dotqmail d = DOTQMAIL_INIT, x = DOTQMAIL_INIT,
	                again = DOTQMAIL_INIT;
	const char *s = (const char *)data;
	char *copy = malloc(size + 1);
	int r, rx, fo;

	if (!copy)
		abort();
	if (size)
		memcpy(copy, data, size);
	r = dotqmail_parse(&d, s, size, 0);
	rx = dotqmail_parse(&x, s, size, 1);
	if (r == DOTQMAIL_ENOMEM || rx == DOTQMAIL_ENOMEM)
		goto out;
	if (size && memcmp(copy, data, size))
		abort();
	check(&d, r, s, size);
	check(&x, rx, s, size);
	check_above(&d, r, s, size, 0);
	check_above(&x, rx, s, size, 1);

	/* forward-only: forwards only, and the same as far as it goes */
	if (x.ndelivery || !x.forwardonly)
		abort();
	fo = r == DOTQMAIL_OK && !d.ndelivery;
	if (fo && (rx != DOTQMAIL_OK || !same(&x, &d)))
		abort();
	if (r == DOTQMAIL_OK && d.ndelivery && rx != DOTQMAIL_EPROGX &&
	    rx != DOTQMAIL_EFILEX)
		abort();
	if (rx == DOTQMAIL_OK && (r != DOTQMAIL_OK || !same(&x, &d)))
		abort();

	/* deterministic, into a fresh struct and into a used one */
	if (dotqmail_parse(&again, s, size, 0) != r || again.line != d.line ||
	    again.forwardonly != d.forwardonly || !same(&again, &d))
		abort();
	if (dotqmail_parse(&used, s, size, 1) != rx || used.line != x.line ||
	    !same(&used, &x))
		abort();

	if (r == DOTQMAIL_OK)
		check_rewrite(&d);
out:
	dotqmail_free(&d);
	dotqmail_free(&x);
	dotqmail_free(&again);
	if (d.v || d.buf || d.n || x.v || x.buf || again.v || again.buf)
		abort();
	free(copy);
	return 0;
}
