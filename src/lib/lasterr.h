/*
 * lasterr.h: the last error of each recipient, kept in queue/error/N/id.
 *
 * moat-send appends a record whenever a delivery of a preprocessed message
 * is deferred or fails for good; `moat queue` shows the newest record of
 * each recipient.  The file is a sequence of NUL-terminated fields, taken
 * in pairs:
 *
 *   'T' recipient                 as in the channel file (local/, remote/)
 *   'Z' or 'D', time, ' ', text   deferral or permanent failure; time is
 *                                 the decimal Unix time of the result;
 *                                 text at most LASTERR_TEXT bytes
 *
 * A field that does not fit the pattern (a tail torn by a crash) is
 * skipped; an append after a torn tail starts with a NUL so the new pair
 * parses.  The file only informs: it is not fsynced, and moat-send removes
 * it before info/ when the message is retired (and before preprocessing,
 * as a leftover).  It stays bounded: an append that would take it past
 * LASTERR_MAX bytes rewrites it first (through a temporary file and
 * rename) with only the newest pair of each recipient, dropping the oldest
 * of those until at most LASTERR_MAX / 2 bytes remain.
 */
#ifndef MOAT_LASTERR_H
#define MOAT_LASTERR_H

#include <stddef.h>
#include <time.h>

#include "str.h"

#define LASTERR_TEXT 512
#define LASTERR_MAX (256 * 1024)

/* append one pair for rcpt to out; kind 'Z' or 'D'; text is cut at
 * LASTERR_TEXT bytes (and at a NUL); 0 or -1 (no memory) */
int lasterr_rec(str *out, const char *rcpt, char kind, time_t when,
                const char *text);

/* append the pairs in recs to the file path (created 0600), compacting
 * through tmp when it would grow past LASTERR_MAX; 0 or -1 (errno) */
int lasterr_write(const char *path, const char *tmp, const str *recs);

struct lasterr_ent {
	const char *rcpt; /* NUL-terminated, points into data */
	const char *text; /* NUL-terminated, points into data */
	long long when;
	size_t seq; /* position in the file: larger is newer */
	char kind;  /* 'Z' deferral, 'D' permanent failure */
};

struct lasterr {
	str data;
	struct lasterr_ent *v; /* newest per recipient, sorted by rcpt */
	size_t n;
};

#define LASTERR_INIT                                                           \
	{                                                                      \
		STR_INIT, 0, 0                                                 \
	}

/* parse the bytes in le->data (already filled in) */
int lasterr_parse(struct lasterr *le);
/* read and parse path: 0 (n = 0 when there is no file), -1 (errno) */
int lasterr_read(const char *path, struct lasterr *le);
/* the newest entry for rcpt (exact bytes), or NULL */
const struct lasterr_ent *lasterr_find(const struct lasterr *le,
                                       const char *rcpt);
void lasterr_free(struct lasterr *le);

#endif
