/*
 * dsn.h: delivery status notifications, the bounces and delay warnings
 * that moat-send injects.
 *
 * A notification is a multipart/report (RFC 6522) with report-type
 * delivery-status and three parts: a text/plain explanation for people, a
 * message/delivery-status report for programs (RFC 3464), and the original
 * message (message/rfc822), or only its header section (text/rfc822-headers)
 * when it is larger than the cap or headers_only is set.  The result has LF
 * line endings, as every message in the queue.
 *
 * Everything that came from elsewhere (addresses, the remote server's reply,
 * host names, the envelope id) is cleaned before it is written: printable
 * ASCII only, one line, at most DSN_TEXT_MAX bytes, so a hostile server
 * cannot add a header or a MIME part.  No generated line is longer than 998
 * bytes; the original message is included as it is stored.  The boundary is
 * chosen so that it occurs nowhere in the included text.
 */
#ifndef MOAT_DSN_H
#define MOAT_DSN_H

#include <stddef.h>
#include <time.h>

#include "str.h"

#define DSN_FAILED 'f'  /* given up: Action: failed, status 5.x.x */
#define DSN_DELAYED 'd' /* still trying: Action: delayed, status 4.x.x */

#define DSN_TEXT_MAX 900     /* bytes kept of one cleaned text or address */
#define DSN_HEAD_MAX 65536   /* bytes kept of the original's header section */
#define DSN_STATUS_SIZE 16   /* room for "5.999.999" and its NUL */

struct dsn_rcpt {
	const char *addr;       /* the recipient, as in the envelope */
	char action;            /* DSN_FAILED or DSN_DELAYED */
	const char *status;     /* "5.1.1", or NULL (or invalid): from diag */
	const char *diag;       /* the agent's or remote server's text, or NULL */
	const char *remote_mta; /* the remote host's name, or NULL */
};

struct dsn {
	const char *reporting_mta;  /* control/me */
	const char *from;           /* bouncefrom@bouncehost */
	const char *to;             /* the original envelope sender */
	const char *original_envid; /* the ENVID given at MAIL, or NULL */
	time_t arrival;             /* when the original was queued; 0: omitted */
	time_t now;                 /* Date and Last-Attempt-Date */
	time_t retry_until;         /* delayed: Will-Retry-Until; 0: omitted */
	const char *queue_id;       /* the original's queue id, or NULL */
	const struct dsn_rcpt *rcpts;
	size_t nrcpt;               /* at least 1 */
	size_t cap;                 /* largest original included whole */
	int headers_only;           /* include only the original's header */
};

/*
 * Build the notification into out (its previous content is replaced).  The
 * original message is read from msgfd from offset 0 with pread(), so the
 * descriptor's offset is left alone; msgfd -1 leaves the original out.
 * Returns 0, or -1 with errno (EINVAL for a missing reporting_mta, from, to
 * or recipient, or an unknown action; ENOMEM, ERANGE; a read error) and
 * out->len 0.
 */
int dsn_build(str *out, const struct dsn *d, int msgfd);

/*
 * The enhanced status code (RFC 3463) in text[0..len): a qmail-style
 * "(#5.1.1)" anywhere, else a code at the start ("5.1.1 ..."), else the
 * first SMTP reply with one ("550 5.1.1 ...", "550-5.1.1", also after
 * "said: "); without any, 5.0.0 or 4.0.0.  The class is forced to agree with
 * permanent: 5 if it is non-zero, else 4.  Writes the NUL-terminated code to
 * out; returns 1 when the code came from text, 0 for the default.
 */
int dsn_status(const char *text, size_t len, int permanent,
	       char out[DSN_STATUS_SIZE]);

#endif
