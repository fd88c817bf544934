/*
 * lasterr.c: the last error of each recipient; see lasterr.h.
 */
#include "lasterr.h"

#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
lasterr_rec(str *out, const char *rcpt, char kind, time_t when,
            const char *text)
{
	size_t len = out->len;

	if (str_catc(out, 'T') == -1 || str_cats(out, rcpt) == -1 ||
	    str_catc(out, 0) == -1 || str_catc(out, kind) == -1 ||
	    str_catu(out, when > 0 ? (unsigned long long)when : 0) == -1 ||
	    str_catc(out, ' ') == -1 ||
	    str_catb(out, text, strnlen(text, LASTERR_TEXT)) == -1 ||
	    str_catc(out, 0) == -1) {
		out->len = len;
		return -1;
	}
	return 0;
}

/* by recipient, the newest first */
static int
cmp_rcpt(const void *a, const void *b)
{
	const struct lasterr_ent *x = a, *y = b;
	int c = strcmp(x->rcpt, y->rcpt);

	if (c)
		return c;
	return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static int
parse_when(const char *f, long long *when, const char **text)
{
	long long v = 0;

	if (*f < '0' || *f > '9')
		return -1;
	for (; *f >= '0' && *f <= '9'; f++)
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, *f - '0', &v))
			return -1;
	if (*f != ' ')
		return -1;
	*when = v;
	*text = f + 1;
	return 0;
}

int
lasterr_parse(struct lasterr *le)
{
	const char *rcpt = 0;
	size_t i = 0, cap = 0, k, n = 0, seq = 0;

	free(le->v);
	le->v = 0;
	le->n = 0;
	while (i < le->data.len) {
		const char *f = le->data.s + i;
		size_t l = strnlen(f, le->data.len - i);
		const char *text;
		long long when;

		if (i + l >= le->data.len)
			break; /* no NUL: a torn tail */
		i += l + 1;
		if (l && f[0] == 'T') {
			rcpt = f + 1;
			continue;
		}
		if (rcpt && l && (f[0] == 'Z' || f[0] == 'D') &&
		    parse_when(f + 1, &when, &text) == 0) {
			if (n == cap) {
				struct lasterr_ent *nv;
				size_t nc = cap ? cap * 2 : 16;

				if (nc > (size_t)-1 / sizeof *nv ||
				    !(nv = realloc(le->v, nc * sizeof *nv))) {
					errno = ENOMEM;
					return -1;
				}
				le->v = nv;
				cap = nc;
			}
			le->v[n].rcpt = rcpt;
			le->v[n].text = text;
			le->v[n].when = when;
			le->v[n].kind = f[0];
			le->v[n].seq = seq++;
			n++;
		}
		rcpt = 0;
	}
	if (n)
		qsort(le->v, n, sizeof *le->v, cmp_rcpt);
	/* keep the first (newest) of each recipient */
	for (i = 0, k = 0; i < n; i++)
		if (k == 0 || strcmp(le->v[k - 1].rcpt, le->v[i].rcpt))
			le->v[k++] = le->v[i];
	le->n = k;
	return 0;
}

/* whole file, at most max bytes (more: EFBIG); ENOENT is an empty file */
static int
slurp(const char *path, str *out, size_t max)
{
	if (io_readfile(path, out, max, O_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	return 0;
}

int
lasterr_read(const char *path, struct lasterr *le)
{
	if (slurp(path, &le->data, 4 * (size_t)LASTERR_MAX) == -1)
		return -1;
	return lasterr_parse(le);
}

const struct lasterr_ent *
lasterr_find(const struct lasterr *le, const char *rcpt)
{
	size_t lo = 0, hi = le->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rcpt, le->v[mid].rcpt);

		if (!c)
			return &le->v[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

void
lasterr_free(struct lasterr *le)
{
	str_free(&le->data);
	free(le->v);
	le->v = 0;
	le->n = 0;
}

static int
cmp_seq(const void *a, const void *b)
{
	const struct lasterr_ent *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* the newest pair of each recipient, newest recipients first, within
 * LASTERR_MAX / 2 bytes, written to tmp and renamed over path */
static int
compact(const char *path, const char *tmp, const str *recs)
{
	struct lasterr le = LASTERR_INIT;
	str out = STR_INIT;
	size_t i, keep = 0, total = 0;
	int fd, r = -1, e;

	if (slurp(path, &le.data, 4 * (size_t)LASTERR_MAX) == -1) {
		if (errno != EFBIG)
			goto out;
		le.data.len = 0; /* not ours: start again */
	}
	if (str_catc(&le.data, 0) == -1 ||
	    str_catb(&le.data, recs->s, recs->len) == -1 ||
	    lasterr_parse(&le) == -1)
		goto out;
	/* newest first, then cut at the budget */
	for (i = 0; i < le.n; i++)
		le.v[i].seq = (size_t)-1 - le.v[i].seq;
	qsort(le.v, le.n, sizeof *le.v, cmp_seq);
	for (keep = 0; keep < le.n; keep++) {
		size_t sz =
		    strlen(le.v[keep].rcpt) + strlen(le.v[keep].text) + 26;

		if (total + sz > LASTERR_MAX / 2)
			break;
		total += sz;
	}
	for (i = keep; i-- > 0;)
		if (lasterr_rec(&out, le.v[i].rcpt, le.v[i].kind,
		                (time_t)le.v[i].when, le.v[i].text) == -1)
			goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd == -1)
		goto out;
	if (io_writeall(fd, out.s, out.len, 0) == -1) {
		e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		goto out;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		e = errno;
		unlink(tmp);
		errno = e;
		goto out;
	}
	r = 0;
out:
	e = errno;
	lasterr_free(&le);
	str_free(&out);
	errno = e;
	return r;
}

int
lasterr_write(const char *path, const char *tmp, const str *recs)
{
	int fd, e;
	struct stat st;
	char last;

	if (!recs->len)
		return 0;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd == -1)
		return -1;
	if (fstat(fd, &st) == -1)
		goto fail;
	if (st.st_size < 0 || (unsigned long long)st.st_size >= LASTERR_MAX ||
	    (size_t)st.st_size + recs->len > LASTERR_MAX) {
		close(fd);
		return compact(path, tmp, recs);
	}
	/* a torn tail: end it, so the new pair parses */
	if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) == 1 &&
	    last != 0 && io_writeall(fd, "", 1, 0) == -1)
		goto fail;
	if (io_writeall(fd, recs->s, recs->len, 0) == -1)
		goto fail;
	return close(fd);
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
