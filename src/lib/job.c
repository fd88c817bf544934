/*
 * job.c: encoding and incremental decoding of delivery jobs; see job.h.
 */
#include "job.h"

#include <errno.h>
#include <string.h>

static int
field(str *out, char tag, const char *v, size_t n)
{
	if (n > JOB_FIELD_MAX || (n && memchr(v, 0, n))) {
		errno = EINVAL;
		return -1;
	}
	if (str_catc(out, tag) == -1 || str_catb(out, v, n) == -1 ||
	    str_catc(out, 0) == -1)
		return -1;
	return 0;
}

static int
numfield(str *out, char tag, unsigned long long v)
{
	if (str_catc(out, tag) == -1 || str_catu(out, v) == -1 ||
	    str_catc(out, 0) == -1)
		return -1;
	return 0;
}

int
job_put(str *out, unsigned long n, unsigned long long id, const char *sender,
	const char *rcpts, size_t nrcpt)
{
	size_t i, off = 0, len = out->len;

	if (nrcpt == 0 || nrcpt > JOB_RCPT_MAX || n > 0xffffffffUL)
		goto inval;
	if (numfield(out, 'J', n) == -1 || numfield(out, 'M', id) == -1 ||
	    field(out, 'F', sender, strlen(sender)) == -1)
		goto fail;
	for (i = 0; i < nrcpt; i++) {
		size_t l = strlen(rcpts + off);
		if (l == 0)
			goto inval;
		if (field(out, 'T', rcpts + off, l) == -1)
			goto fail;
		off += l + 1;
	}
	if (str_catc(out, 0) == -1)
		goto fail;
	return 0;
inval:
	errno = EINVAL;
fail:
	out->len = len;
	return -1;
}

int
job_cattext(str *out, const char *t, size_t n)
{
	size_t i;

	if (n > JOB_TEXT_MAX)
		n = JOB_TEXT_MAX;
	for (i = 0; i < n; i++) {
		char c = t[i];
		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		else if (c < 32 || c > 126)
			c = '?';
		if (str_catc(out, c) == -1)
			return -1;
	}
	return str_catc(out, 0);
}

int
result_put(str *out, unsigned long n, const char *status, const char *texts,
	   size_t nres)
{
	size_t i, off = 0, len = out->len;

	if (nres == 0 || nres > JOB_RCPT_MAX || n > 0xffffffffUL) {
		errno = EINVAL;
		return -1;
	}
	if (numfield(out, 'J', n) == -1)
		goto fail;
	for (i = 0; i < nres; i++) {
		size_t l = strlen(texts + off);
		if (status[i] != 'K' && status[i] != 'Z' && status[i] != 'D') {
			errno = EINVAL;
			goto fail;
		}
		if (str_catc(out, 'R') == -1 || str_catc(out, status[i]) == -1 ||
		    job_cattext(out, texts + off, l) == -1)
			goto fail;
		off += l + 1;
	}
	if (str_catc(out, 0) == -1)
		goto fail;
	return 0;
fail:
	out->len = len;
	return -1;
}

/* the length of the whole record at s (len bytes there), 0 if incomplete,
 * -1 if bad */
static long
record_end(const char *s, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *f = s + pos;
		const char *nul = memchr(f, 0, len - pos);
		size_t l;

		/* a tag and at most JOB_FIELD_MAX bytes, as field() writes */
		if (!nul)
			return len - pos > JOB_FIELD_MAX + 1 ? -1 : 0;
		l = (size_t)(nul - f);
		if (l > JOB_FIELD_MAX + 1)
			return -1;
		pos += l + 1;
		if (l == 0)
			return (long)pos;
	}
	return 0;
}

static int
parse_num(const char *s, size_t n, unsigned long long max,
	  unsigned long long *v)
{
	size_t i;

	if (n == 0 || n > 20)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    __builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (unsigned)(s[i] - '0'), v))
			return -1;
	}
	return *v > max ? -1 : 0;
}

int
job_get(const str *buf, size_t *at, struct job *j)
{
	const char *s;
	long end;
	size_t pos = 0, stage = 0;
	unsigned long long v;

	if (*at >= buf->len)
		return 0;
	s = buf->s + *at;
	end = record_end(s, buf->len - *at);
	if (end <= 0) {
		if (end < 0)
			errno = EPROTO;
		return (int)end;
	}
	j->sender.len = 0;
	j->rcpts.len = 0;
	j->nrcpt = 0;
	while (pos < (size_t)end) {
		const char *f = s + pos;
		size_t l = strlen(f);

		pos += l + 1;
		if (l == 0)
			break;
		if (stage == 0 && f[0] == 'J' &&
		    parse_num(f + 1, l - 1, 0xffffffffUL, &v) == 0) {
			j->n = (unsigned long)v;
			stage = 1;
		} else if (stage == 1 && f[0] == 'M' &&
			   parse_num(f + 1, l - 1, ~0ULL, &v) == 0) {
			j->id = v;
			stage = 2;
		} else if (stage == 2 && f[0] == 'F') {
			if (str_copyb(&j->sender, f + 1, l - 1) == -1 ||
			    str_0(&j->sender) == -1)
				return -1;
			stage = 3;
		} else if (stage == 3 && f[0] == 'T' && l > 1 &&
			   j->nrcpt < JOB_RCPT_MAX) {
			if (str_catb(&j->rcpts, f + 1, l) == -1)
				return -1;
			j->nrcpt++;
		} else {
			goto bad;
		}
	}
	if (stage != 3 || j->nrcpt == 0)
		goto bad;
	*at += (size_t)end;
	return 1;
bad:
	errno = EPROTO;
	return -1;
}

/* as job_cattext() writes it: printable ASCII, at most JOB_TEXT_MAX */
static int
text_ok(const char *t, size_t n)
{
	size_t i;

	if (n > JOB_TEXT_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (t[i] < 32 || t[i] > 126)
			return 0;
	return 1;
}

int
result_get(const str *buf, size_t *at, struct job_result *r)
{
	const char *s;
	long end;
	size_t pos = 0;
	int have_n = 0;
	unsigned long long v;

	if (*at >= buf->len)
		return 0;
	s = buf->s + *at;
	end = record_end(s, buf->len - *at);
	if (end <= 0) {
		if (end < 0)
			errno = EPROTO;
		return (int)end;
	}
	r->nres = 0;
	r->texts.len = 0;
	while (pos < (size_t)end) {
		const char *f = s + pos;
		size_t l = strlen(f);

		pos += l + 1;
		if (l == 0)
			break;
		if (!have_n && f[0] == 'J' &&
		    parse_num(f + 1, l - 1, 0xffffffffUL, &v) == 0) {
			r->n = (unsigned long)v;
			have_n = 1;
		} else if (have_n && f[0] == 'R' && l >= 2 &&
			   (f[1] == 'K' || f[1] == 'Z' || f[1] == 'D') &&
			   r->nres < JOB_RCPT_MAX && text_ok(f + 2, l - 2)) {
			r->status[r->nres++] = f[1];
			if (str_catb(&r->texts, f + 2, l - 1) == -1)
				return -1;
		} else {
			goto bad;
		}
	}
	if (!have_n || r->nres == 0)
		goto bad;
	*at += (size_t)end;
	return 1;
bad:
	errno = EPROTO;
	return -1;
}

void
job_free(struct job *j)
{
	str_free(&j->sender);
	str_free(&j->rcpts);
}

void
result_free(struct job_result *r)
{
	str_free(&r->texts);
}
