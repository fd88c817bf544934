/*
 * job.c: fuzz target for the delivery-job protocol of job.h: job_get() and
 * result_get() on the same bytes, and job_put(), result_put() and
 * job_cattext() on arguments cut from them.
 *
 * The first two bytes are the sizes (1 to 256) of the pieces in which the
 * rest, the stream, is handed to an incremental reader, alternately, which
 * drops each record it has read; a second reader gets the whole stream at
 * once and only moves its offset.  Checked, for jobs and for results alike:
 *  - both readers give the same records and end the same way: 0 with the
 *    same incomplete tail left, or -1 with errno EPROTO and the offset
 *    where it was;
 *  - a record read is within the limits: n below 2^32, 1 to JOB_RCPT_MAX
 *    recipients or results, no value longer than JOB_FIELD_MAX (a text no
 *    longer than JOB_TEXT_MAX, printable ASCII), statuses K, Z or D, every
 *    address and text NUL-terminated, recipients not empty;
 *  - a record written back with job_put() or result_put() reads back the
 *    same, from exactly the bytes written.
 * Then the stream is cut at its NULs: the first piece as a sender and the
 * others as recipients for job_put(), each piece as a status byte and a
 * text for result_put().  Each must succeed exactly when the arguments are
 * within the limits, add nothing when it fails, and what it writes must
 * read back the same (texts as job_cattext() makes them: at most
 * JOB_TEXT_MAX bytes, tab, CR and LF as spaces, other unprintable bytes
 * as '?').
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a reader that is handed the stream in pieces */
struct feed {
	const char *data;
	size_t size, fed, step[2];
	unsigned turn;
	str buf;
};

/* a record of either kind: jobs when res is 0, results when 1 */
struct rec {
	struct job j;
	struct job_result r;
};

static int
get(int res, const str *buf, size_t *pos, struct rec *x)
{
	return res ? result_get(buf, pos, &x->r) : job_get(buf, pos, &x->j);
}

/* the next record, with more pieces fed while the reader wants them */
static int
feed_get(struct feed *f, int res, struct rec *x)
{
	for (;;) {
		size_t n, pos = 0;
		int r = get(res, &f->buf, &pos, x);

		str_drop(&f->buf, pos);
		if (r != 0 || f->fed == f->size)
			return r;
		n = f->step[f->turn++ % 2];
		if (n > f->size - f->fed)
			n = f->size - f->fed;
		if (str_catb(&f->buf, f->data + f->fed, n) == -1)
			abort();
		f->fed += n;
	}
}

/* n NUL-terminated strings in s, each at most max bytes long */
static void
check_list(const str *s, size_t n, int nonempty, size_t max, int printable)
{
	size_t i, off = 0;

	for (i = 0; i < n; i++) {
		const char *p = s->s + off;
		const char *nul;
		size_t k;

		if (off >= s->len || !(nul = memchr(p, 0, s->len - off)))
			abort();
		if ((nonempty && nul == p) || (size_t)(nul - p) > max)
			abort();
		for (k = 0; printable && p + k < nul; k++)
			if (p[k] < 32 || p[k] > 126)
				abort();
		off += (size_t)(nul - p) + 1;
	}
	if (off != s->len)
		abort();
}

static int
same_str(const str *a, const str *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->s, b->s, a->len));
}

static void
check_job(const struct job *j)
{
	if (j->n > 0xffffffffUL || j->nrcpt < 1 || j->nrcpt > JOB_RCPT_MAX)
		abort();
	if (!j->sender.s || j->sender.s[j->sender.len] ||
	    j->sender.len > JOB_FIELD_MAX ||
	    memchr(j->sender.s, 0, j->sender.len))
		abort();
	check_list(&j->rcpts, j->nrcpt, 1, JOB_FIELD_MAX, 0);
}

static int
same_job(const struct job *a, const struct job *b)
{
	return a->n == b->n && a->id == b->id && a->nrcpt == b->nrcpt &&
	       same_str(&a->sender, &b->sender) &&
	       same_str(&a->rcpts, &b->rcpts);
}

static void
check_result(const struct job_result *r)
{
	size_t i;

	if (r->n > 0xffffffffUL || r->nres < 1 || r->nres > JOB_RCPT_MAX)
		abort();
	for (i = 0; i < r->nres; i++)
		if (r->status[i] != 'K' && r->status[i] != 'Z' &&
		    r->status[i] != 'D')
			abort();
	check_list(&r->texts, r->nres, 0, JOB_TEXT_MAX, 1);
}

static int
same_result(const struct job_result *a, const struct job_result *b)
{
	return a->n == b->n && a->nres == b->nres &&
	       !memcmp(a->status, b->status, a->nres) &&
	       same_str(&a->texts, &b->texts);
}

static int
same(int res, const struct rec *x, const struct rec *y)
{
	return res ? same_result(&x->r, &y->r) : same_job(&x->j, &y->j);
}

/* x written back with job_put() or result_put() */
static int
put(int res, str *out, const struct rec *x)
{
	const struct job *j = &x->j;
	const struct job_result *r = &x->r;

	if (res)
		return result_put(out, r->n, r->status, r->texts.s, r->nres);
	return job_put(out, j->n, j->id, j->sender.s, j->rcpts.s, j->nrcpt);
}

/*
 * Every record of s[0..n), read whole and in pieces into x[0] and x[1]
 * and, written back, into x[2].
 */
static void
read_all(int res, const char *s, size_t n, const size_t step[2],
         struct rec x[3])
{
	struct feed f = {s, n, 0, {step[0], step[1]}, 0, STR_INIT};
	str all = STR_INIT, out = STR_INIT;
	size_t i, apos = 0;
	int r;

	if (str_copyb(&all, s, n) == -1)
		abort();
	do {
		size_t was = apos, opos = 0;

		errno = 0;
		r = get(res, &all, &apos, &x[0]);
		if (feed_get(&f, res, &x[1]) != r)
			abort();
		if (r == 1) {
			if (res)
				check_result(&x[0].r);
			else
				check_job(&x[0].j);
			if (!same(res, &x[0], &x[1]))
				abort();
			out.len = 0;
			if (apos <= was || put(res, &out, &x[0]) ||
			    get(res, &out, &opos, &x[2]) != 1 ||
			    opos != out.len || !same(res, &x[0], &x[2]))
				abort();
		} else if (r == 0) {
			if (apos != was || all.len - apos != f.buf.len ||
			    (f.buf.len &&
			     memcmp(all.s + apos, f.buf.s, f.buf.len)))
				abort();
		} else if (r != -1 || errno != EPROTO || apos != was) {
			abort();
		}
	} while (r == 1);
	for (i = 0; i < 3; i++) {
		job_free(&x[i].j);
		result_free(&x[i].r);
	}
	str_free(&f.buf);
	str_free(&all);
	str_free(&out);
}

/* what job_cattext must make of t[0..n), worked out here */
static void
cattext_want(str *out, const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n && i < JOB_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c == '\t' || c == '\n' || c == '\r')
			c = ' ';
		else if (c < 32 || c > 126)
			c = '?';
		if (str_catc(out, (char)c) == -1)
			abort();
	}
	if (str_catc(out, 0) == -1)
		abort();
}

/* the stream cut at its NULs, as arguments for the encoders */
static void
encode(const char *s, size_t n)
{
	static struct job_result res;
	static struct job job;
	static char status[JOB_RCPT_MAX];
	str sender = STR_INIT, rcpts = STR_INIT, texts = STR_INIT;
	str want = STR_INIT, out = STR_INIT;
	size_t off = 0, k = 0, i, pos;
	unsigned long long id = 0;
	int job_ok = 1, res_ok = 1;

	for (i = 0; i < n && i < 8; i++)
		id = id << 8 | (unsigned char)s[i];
	for (;;) {
		const char *p = s + off, *nul = memchr(p, 0, n - off);
		size_t l = nul ? (size_t)(nul - p) : n - off;

		if (l > JOB_FIELD_MAX || (k && l == 0))
			job_ok = 0;
		if (str_catb(k ? &rcpts : &sender, p, l) == -1 ||
		    str_catc(k ? &rcpts : &sender, 0) == -1)
			abort();
		if (k < JOB_RCPT_MAX)
			status[k] = l ? p[0] : 0;
		if (!l || (p[0] != 'K' && p[0] != 'Z' && p[0] != 'D'))
			res_ok = 0;
		if (str_catb(&texts, l ? p + 1 : p, l ? l - 1 : 0) == -1 ||
		    str_catc(&texts, 0) == -1)
			abort();
		cattext_want(&want, l ? p + 1 : p, l ? l - 1 : 0);
		k++;
		if (!nul)
			break;
		off += l + 1;
	}
	if (k - 1 < 1 || k - 1 > JOB_RCPT_MAX)
		job_ok = 0;
	if (k > JOB_RCPT_MAX)
		res_ok = 0;

	if (job_put(&out, n, id, sender.s, rcpts.s, k - 1) != (job_ok ? 0 : -1))
		abort();
	pos = 0;
	if (job_ok && (job_get(&out, &pos, &job) != 1 || pos != out.len ||
	               job.n != n ||
	               job.id != id || job.nrcpt != k - 1 ||
	               job.sender.len + 1 != sender.len ||
	               memcmp(job.sender.s, sender.s, sender.len) ||
	               !same_str(&job.rcpts, &rcpts)))
		abort();
	if (!job_ok && out.len)
		abort();

	out.len = 0;
	if (result_put(&out, n, status, texts.s, k) != (res_ok ? 0 : -1))
		abort();
	pos = 0;
	if (res_ok && (result_get(&out, &pos, &res) != 1 || pos != out.len ||
	               res.n != n ||
	               res.nres != k || memcmp(res.status, status, k) ||
	               !same_str(&res.texts, &want)))
		abort();
	if (!res_ok && out.len)
		abort();
	out.len = 0;

	/* the whole stream as one text */
	want.len = 0;
	cattext_want(&want, s, n);
	if (job_cattext(&out, s, n) == -1 || !same_str(&out, &want))
		abort();

	job_free(&job);
	result_free(&res);
	str_free(&sender);
	str_free(&rcpts);
	str_free(&texts);
	str_free(&want);
	str_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct rec x[3];
	const char *s = (const char *)data + 2;
	size_t step[2];

	if (size < 2 || size - 2 > 64 * 1024)
		return 0;
	step[0] = (size_t)data[0] + 1;
	step[1] = (size_t)data[1] + 1;
	read_all(0, s, size - 2, step, x);
	read_all(1, s, size - 2, step, x);
	encode(s, size - 2);
	return 0;
}
