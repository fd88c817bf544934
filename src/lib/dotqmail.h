/*
 * dotqmail.h: the delivery instructions of a .qmail file (see
 * moat-dot-qmail(5)).
 *
 * dotqmail_parse() turns the bytes of a .qmail file into a list of
 * instructions: Maildir, mbox, program and forward lines.  It touches no
 * file and never exits: a mistake in the file is an error code, and the
 * caller decides what it means (moat-local defers the message).  .qmail
 * files are written by users, so every limit is checked here: no NUL
 * byte, no blank first line, lines of at most DOTQMAIL_LINE_MAX bytes,
 * at most DOTQMAIL_DELIVERY_MAX Maildir, mbox and program lines and
 * DOTQMAIL_FORWARD_MAX forward addresses, forward addresses of 1 to
 * DOTQMAIL_ADDR_MAX bytes with no blank, control byte or angle bracket,
 * and only forwards in a forward-only file (the x bit, or a "+list"
 * line above).  The size of the whole file is the reader's limit.
 *
 * A forward address without '@' is returned as written: qualifying it
 * (control/envnoathost) is the caller's job.  Uses nothing beyond libc.
 */
#ifndef MOAT_DOTQMAIL_H
#define MOAT_DOTQMAIL_H

#include <stddef.h>

#define DOTQMAIL_LINE_MAX 16384    /* bytes in a line, trailing blanks gone */
#define DOTQMAIL_DELIVERY_MAX 1000 /* Maildir, mbox and program lines */
#define DOTQMAIL_FORWARD_MAX 10000 /* forward addresses */
#define DOTQMAIL_ADDR_MAX 1000     /* bytes in a forward address */

/* in this order: moat-local -n prints a word for each, by index */
enum dotqmail_type {
	DOTQMAIL_MAILDIR, /* a path ending in '/', as written */
	DOTQMAIL_MBOX,    /* a path starting with '.' or '/', as written */
	DOTQMAIL_PROGRAM, /* the command after '|' (may be empty) */
	DOTQMAIL_FORWARD, /* the address, without a leading '&' */
};

/* results of dotqmail_parse(); dotqmail_strerror() has their text */
enum dotqmail_err {
	DOTQMAIL_OK,
	DOTQMAIL_ENOMEM,
	DOTQMAIL_EBLANK,      /* the first line is blank */
	DOTQMAIL_ENUL,        /* a NUL byte */
	DOTQMAIL_ELONG,       /* a line longer than DOTQMAIL_LINE_MAX */
	DOTQMAIL_EPROGX,      /* a program in a forward-only file */
	DOTQMAIL_EFILEX,      /* a Maildir or mbox in a forward-only file */
	DOTQMAIL_EDELIVERIES, /* more than DOTQMAIL_DELIVERY_MAX */
	DOTQMAIL_EFORWARDS,   /* more than DOTQMAIL_FORWARD_MAX */
	DOTQMAIL_EADDRLEN,    /* a forward address empty or too long */
	DOTQMAIL_EADDRCHAR,   /* a forward address with blanks or brackets */
};

struct dotqmail_instr {
	enum dotqmail_type type;
	/* NUL-terminated, no NUL inside; points into the parse's own copy
	 * of the file.  A caller may point it elsewhere (to a qualified
	 * address, say): that memory stays the caller's. */
	const char *arg;
};

struct dotqmail {
	struct dotqmail_instr *v; /* in the order of the file */
	size_t n;
	size_t ndelivery; /* Maildir, mbox and program lines in v */
	size_t nforward;  /* forward addresses in v */
	size_t line;      /* after an error: its line, from 1 */
	int forwardonly;  /* the x bit given, or a "+list" line seen */
	char *buf;        /* the copy the args point into */
};

#define DOTQMAIL_INIT                                                          \
	{                                                                      \
		0, 0, 0, 0, 0, 0, 0                                            \
	}

/*
 * Parse the len bytes at s (a missing final newline is implied) into d,
 * which is DOTQMAIL_INIT or was parsed into before (its old contents are
 * freed).  forwardonly is the file's x bit.  Returns DOTQMAIL_OK or the
 * first error; after an error, d holds the instructions of the lines
 * above the one at fault (none for DOTQMAIL_ENUL, which is checked
 * before any line), so a caller can deal with them in order.
 * dotqmail_free() d in any case.
 */
int dotqmail_parse(struct dotqmail *d, const char *s, size_t len,
                   int forwardonly);

/* what an error means, e.g. ".qmail contains a NUL byte" */
const char *dotqmail_strerror(int err);

void dotqmail_free(struct dotqmail *d);

#endif
