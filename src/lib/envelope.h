/*
 * envelope.h: the NUL-record envelope of the qmail-queue protocol.
 *
 * On the wire: 'F' sender NUL, then 'T' recipient NUL for each recipient,
 * then one more NUL.  Inside the queue the same records are used, with more
 * tags.  env_add() builds records; env_read() parses a whole envelope with
 * limits and says which qmail-queue exit code a failure deserves.
 */
#ifndef MOAT_ENVELOPE_H
#define MOAT_ENVELOPE_H

#include <stddef.h>

#include "io.h"
#include "str.h"

/* qmail-queue exit codes */
#define QQ_OK 0
#define QQ_ADDRLONG 11
#define QQ_NOMEM 51
#define QQ_TIMEOUT 52
#define QQ_WRITE 53
#define QQ_READ 54
#define QQ_CONFIG 55
#define QQ_HOME 61
#define QQ_QUEUEDIR 62
#define QQ_PID 63
#define QQ_MESS 64
#define QQ_INTD 65
#define QQ_TODO 66
#define QQ_BUG 81
#define QQ_FORMAT 91

struct env_limits {
	size_t addr_max;  /* longest address (bytes) */
	size_t rcpt_max;  /* most recipients */
	size_t total_max; /* most envelope bytes in all */
};

extern const struct env_limits env_default_limits;

/* append tag, the n bytes of s and a NUL; -1 (EINVAL) if s holds a NUL */
int env_add(str *out, char tag, const char *s, size_t n);

/*
 * Read a whole envelope from in.  On success returns QQ_OK with the sender
 * in *sender (NUL-terminated, len without it) and the recipients in *rcpts
 * as consecutive NUL-terminated strings, *nrcpt of them.  Otherwise returns
 * the exit code: QQ_READ (read error or EOF before the final NUL),
 * QQ_TIMEOUT, QQ_ADDRLONG, QQ_FORMAT (bad tag, too many recipients, too
 * large), QQ_NOMEM.
 */
int env_read(io *in, const struct env_limits *, str *sender, str *rcpts,
	     size_t *nrcpt);

#endif
