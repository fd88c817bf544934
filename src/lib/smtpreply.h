/*
 * smtpreply.h: replies from an SMTP server, read by a client that does not
 * trust it (RFC 5321 4.2).
 *
 * smtp_reply_parse() takes the bytes received so far and cuts one whole
 * reply off their front: one or more lines "DDD-text" ending with a last
 * line "DDD text" (or a bare "DDD").  A line ends at LF; a CR just before
 * the LF is dropped, any other CR is text.  The rules are strict because a
 * reply that two programs could split differently is how a hostile server
 * would smuggle text into logs or bounces:
 *   - every line starts with three digits, the first 2..5, followed by
 *     '-', ' ' or the end of the line; anything else is a protocol error;
 *   - every line of one reply carries the same code;
 *   - a line is at most SMTP_REPLY_LINE_MAX bytes with its line end, a
 *     reply at most SMTP_REPLY_MAX bytes: more is an error at once, without
 *     waiting for the rest.
 * Nothing is allocated or read beyond the given length, so the parser takes
 * bytes straight from the network; it never looks past the reply it cuts.
 *
 * The text that comes out is clean: control bytes, DEL and non-ASCII
 * become '?', tabs become spaces.  `text` is the whole reply as one line
 * (the lines joined by a space, codes included, as a bounce quotes them),
 * cut at SMTP_REPLY_TEXT_MAX bytes with "..." at the end; `lines` holds
 * each line's text after the code and separator, NUL-terminated, for the
 * EHLO keywords.
 */
#ifndef MOAT_SMTPREPLY_H
#define MOAT_SMTPREPLY_H

#include <stddef.h>

#include "str.h"

#define SMTP_REPLY_LINE_MAX 1000 /* one line, CRLF included (RFC: 512) */
#define SMTP_REPLY_MAX 65536     /* one whole reply */
#define SMTP_REPLY_TEXT_MAX 450  /* bytes kept of the joined text */

struct smtp_reply {
	int code;     /* 200..599 */
	size_t nline; /* lines in the reply, at least 1 */
	str text;     /* cleaned one-line text, NUL-terminated */
	str lines;    /* nline cleaned texts after "DDD-", each NUL-ended */
};

/* clang-format off */
#define SMTP_REPLY_INIT {0, 0, STR_INIT, STR_INIT}
/* clang-format on */

/*
 * One reply from buf[0..len): returns 1 and sets *used to the bytes it
 * took, 0 when the reply is not complete yet (more bytes needed), -1 with
 * errno EPROTO for a malformed reply (errno ENOMEM when out of memory).
 */
int smtp_reply_parse(const char *buf, size_t len, size_t *used,
                     struct smtp_reply *r);

/* 1 if an EHLO reply (lines after the first) offers keyword kw (any case);
 * *arg then points to its parameters (after the keyword and spaces) */
int smtp_reply_ehlo(const struct smtp_reply *r, const char *kw,
                    const char **arg);

void smtp_reply_free(struct smtp_reply *r);

#endif
