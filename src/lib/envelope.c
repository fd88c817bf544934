/*
 * envelope.c: building and reading qmail-queue envelopes; see envelope.h.
 */
#include "envelope.h"

#include <errno.h>
#include <string.h>

const struct env_limits env_default_limits = {
	.addr_max = 1000,
	.rcpt_max = 100000,
	.total_max = 64 * 1024 * 1024,
};

int
env_add(str *out, char tag, const char *s, size_t n)
{
	size_t need;

	if (n && memchr(s, 0, n)) {
		errno = EINVAL;
		return -1;
	}
	if (size_add(&need, n, 2) == -1 || str_readyplus(out, need) == -1)
		return -1;
	out->s[out->len++] = tag;
	if (n)
		memcpy(out->s + out->len, s, n);
	out->len += n;
	out->s[out->len++] = 0;
	return 0;
}

/* one record (without its NUL) into rec; returns QQ_OK or an exit code */
static int
record(io *in, const struct env_limits *lim, str *rec, size_t *total)
{
	int r;

	rec->len = 0;
	r = io_getline(in, rec, 0, lim->addr_max + 2); /* tag, NUL */
	if (r == IO_ERR)
		return errno == ETIMEDOUT ? QQ_TIMEOUT
		       : errno == ENOMEM  ? QQ_NOMEM
					  : QQ_READ;
	if (r == IO_EOF)
		return QQ_READ;
	if (r == IO_LONG)
		return QQ_ADDRLONG;
	rec->len--; /* the NUL */
	if (size_add(total, *total, rec->len + 1) == -1 ||
	    *total > lim->total_max)
		return QQ_FORMAT;
	return QQ_OK;
}

int
env_read(io *in, const struct env_limits *lim, str *sender, str *rcpts,
	 size_t *nrcpt)
{
	str rec = STR_INIT;
	size_t total = 0;
	int r;

	sender->len = 0;
	rcpts->len = 0;
	*nrcpt = 0;
	r = record(in, lim, &rec, &total);
	if (r)
		goto out;
	r = QQ_FORMAT;
	if (rec.len < 1 || rec.s[0] != 'F')
		goto out;
	if (rec.len - 1 > lim->addr_max) {
		r = QQ_ADDRLONG;
		goto out;
	}
	r = QQ_NOMEM;
	if (str_copyb(sender, rec.s + 1, rec.len - 1) == -1 || str_0(sender))
		goto out;
	for (;;) {
		r = record(in, lim, &rec, &total);
		if (r)
			goto out;
		if (rec.len == 0)
			break; /* the final NUL */
		r = QQ_FORMAT;
		if (rec.s[0] != 'T' || *nrcpt >= lim->rcpt_max)
			goto out;
		if (rec.len - 1 > lim->addr_max) {
			r = QQ_ADDRLONG;
			goto out;
		}
		r = QQ_NOMEM;
		if (str_catb(rcpts, rec.s + 1, rec.len - 1) == -1 ||
		    str_catc(rcpts, 0) == -1)
			goto out;
		++*nrcpt;
	}
	r = QQ_OK;
out:
	str_free(&rec);
	return r;
}
