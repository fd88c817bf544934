/*
 * dotqmail.c: the delivery instructions of a .qmail file; see dotqmail.h.
 */
#include "dotqmail.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define STR_(x) #x
#define XSTR_(x) STR_(x)

const char *
dotqmail_strerror(int err)
{
	switch (err) {
	case DOTQMAIL_OK:
		return "no error";
	case DOTQMAIL_ENOMEM:
		return "out of memory";
	case DOTQMAIL_EBLANK:
		return "first line of .qmail file is blank";
	case DOTQMAIL_ENUL:
		return ".qmail contains a NUL byte";
	case DOTQMAIL_ELONG:
		return ".qmail has a line longer than " XSTR_(
		    DOTQMAIL_LINE_MAX) " bytes";
	case DOTQMAIL_EPROGX:
		return ".qmail has prog delivery but has x bit set";
	case DOTQMAIL_EFILEX:
		return ".qmail has file delivery but has x bit set";
	case DOTQMAIL_EDELIVERIES:
		return ".qmail has more than " XSTR_(
		    DOTQMAIL_DELIVERY_MAX) " deliveries";
	case DOTQMAIL_EFORWARDS:
		return ".qmail has more than " XSTR_(
		    DOTQMAIL_FORWARD_MAX) " forward addresses";
	case DOTQMAIL_EADDRLEN:
		return ".qmail has a forward address that is empty or too "
		       "long";
	case DOTQMAIL_EADDRCHAR:
		return ".qmail has a forward address with spaces or brackets";
	}
	return "unknown error";
}

void
dotqmail_free(struct dotqmail *d)
{
	free(d->v);
	free(d->buf);
	memset(d, 0, sizeof *d);
}

/* room for one more instruction: 0, or -1 out of memory */
static int
room(struct dotqmail *d, size_t *alloc)
{
	struct dotqmail_instr *v;
	size_t a;

	if (d->n < *alloc)
		return 0;
	a = *alloc ? *alloc * 2 : 16;
	if (a < *alloc || a > SIZE_MAX / sizeof *v)
		return -1;
	v = realloc(d->v, a * sizeof *v);
	if (!v)
		return -1;
	d->v = v;
	*alloc = a;
	return 0;
}

static int
add(struct dotqmail *d, size_t *alloc, enum dotqmail_type t, const char *arg)
{
	if (room(d, alloc) == -1)
		return DOTQMAIL_ENOMEM;
	d->v[d->n].type = t;
	d->v[d->n].arg = arg;
	d->n++;
	return DOTQMAIL_OK;
}

static int
add_forward(struct dotqmail *d, size_t *alloc, const char *a, size_t n)
{
	size_t i;

	if (!n || n > DOTQMAIL_ADDR_MAX)
		return DOTQMAIL_EADDRLEN;
	for (i = 0; i < n; i++)
		if ((unsigned char)a[i] <= 32 || a[i] == 127 || a[i] == '<' ||
		    a[i] == '>')
			return DOTQMAIL_EADDRCHAR;
	if (d->nforward >= DOTQMAIL_FORWARD_MAX)
		return DOTQMAIL_EFORWARDS;
	d->nforward++;
	return add(d, alloc, DOTQMAIL_FORWARD, a);
}

static int
add_delivery(struct dotqmail *d, size_t *alloc, enum dotqmail_type t,
             const char *arg)
{
	if (d->forwardonly)
		return t == DOTQMAIL_PROGRAM ? DOTQMAIL_EPROGX
		                             : DOTQMAIL_EFILEX;
	if (d->ndelivery >= DOTQMAIL_DELIVERY_MAX)
		return DOTQMAIL_EDELIVERIES;
	d->ndelivery++;
	return add(d, alloc, t, arg);
}

/* one line s[0..n), NUL-terminated, trailing blanks gone */
static int
parse_line(struct dotqmail *d, size_t *alloc, const char *s, size_t n,
           int first)
{
	if (!n)
		return first ? DOTQMAIL_EBLANK : DOTQMAIL_OK;
	if (n > DOTQMAIL_LINE_MAX)
		return DOTQMAIL_ELONG;
	switch (s[0]) {
	case '#':
		return DOTQMAIL_OK;
	case '+':
		if (!strcmp(s, "+list"))
			d->forwardonly = 1;
		return DOTQMAIL_OK;
	case '.':
	case '/':
		return add_delivery(
		    d, alloc,
		    s[n - 1] == '/' ? DOTQMAIL_MAILDIR : DOTQMAIL_MBOX, s);
	case '|':
		return add_delivery(d, alloc, DOTQMAIL_PROGRAM, s + 1);
	case '&':
		return add_forward(d, alloc, s + 1, n - 1);
	}
	return add_forward(d, alloc, s, n);
}

int
dotqmail_parse(struct dotqmail *d, const char *s, size_t len, int forwardonly)
{
	const char *nul;
	size_t alloc = 0, i = 0;
	char *b;

	dotqmail_free(d);
	d->forwardonly = !!forwardonly;
	if (len == SIZE_MAX)
		return DOTQMAIL_ENOMEM;
	/* a copy with a final newline: each newline becomes a NUL */
	b = d->buf = malloc(len + 1);
	if (!b)
		return DOTQMAIL_ENOMEM;
	if (len)
		memcpy(b, s, len);
	if (!len || b[len - 1] != '\n')
		b[len++] = '\n';
	nul = memchr(b, 0, len);
	if (nul) {
		const char *p;

		d->line = 1;
		for (p = b; p < nul; p++)
			d->line += *p == '\n';
		return DOTQMAIL_ENUL;
	}
	while (i < len) {
		char *line = b + i, *nl = memchr(line, '\n', len - i);
		size_t n = (size_t)(nl - line);
		int r;

		d->line++;
		*nl = 0;
		while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
		             line[n - 1] == '\r'))
			line[--n] = 0;
		r = parse_line(d, &alloc, line, n, i == 0);
		if (r != DOTQMAIL_OK)
			return r;
		i = (size_t)(nl - b) + 1;
	}
	d->line = 0;
	return DOTQMAIL_OK;
}
