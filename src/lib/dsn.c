/*
 * dsn.c: delivery status notifications; see dsn.h.
 *
 * The two generated parts are built first, each in its own string; then
 * the original (or its header section) is read; then a boundary is chosen
 * that occurs in none of them, and the whole message is assembled in out.
 *
 * Fields follow RFC 3464: the per-message block (Original-Envelope-Id,
 * Reporting-MTA, Arrival-Date, then moat's extension field X-Moat-Queue-ID),
 * and one block per recipient (Final-Recipient, Action, Status, Remote-MTA,
 * Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until), each after a blank
 * line.
 */
#include "dsn.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "date.h"

#define BPREFIX "=_moat_"
#define HEXDIGITS 16 /* the counter at the end of a boundary */

static int
isdig(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * The length of the status code class.subject.detail at p[0..n), class 2, 4
 * or 5, subject and detail of one to three digits, not followed by a digit
 * or by a dot and a digit; 0 if there is none.
 */
static size_t
code_at(const char *p, size_t n)
{
	size_t i, d;

	if (n < 5 || (p[0] != '2' && p[0] != '4' && p[0] != '5') || p[1] != '.')
		return 0;
	for (i = 2, d = 0; i < n && isdig((unsigned char)p[i]); i++)
		d++;
	if (d < 1 || d > 3 || i >= n || p[i] != '.')
		return 0;
	for (i++, d = 0; i < n && isdig((unsigned char)p[i]); i++)
		d++;
	if (d < 1 || d > 3)
		return 0;
	if (i < n && p[i] == '.' && i + 1 < n && isdig((unsigned char)p[i + 1]))
		return 0;
	return i;
}

/* an SMTP reply code ("550 " or "550-") at p[0..n) */
static int
reply_at(const char *p, size_t n)
{
	return n >= 4 && p[0] >= '2' && p[0] <= '5' &&
	       isdig((unsigned char)p[1]) && isdig((unsigned char)p[2]) &&
	       (p[3] == ' ' || p[3] == '-');
}

static int
blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
dsn_status(const char *t, size_t n, int permanent, char out[DSN_STATUS_SIZE])
{
	const char *found = 0;
	size_t i, j, k = 0;

	if (!t) {
		t = "";
		n = 0;
	}
	/* qmail's "(#5.1.1)" anywhere */
	for (i = 0; i + 2 < n && !found; i++)
		if (t[i] == '(' && t[i + 1] == '#' &&
		    (k = code_at(t + i + 2, n - i - 2)) && i + 2 + k < n &&
		    t[i + 2 + k] == ')')
			found = t + i + 2;
	/* a code at the start */
	for (i = 0; i < n && blank((unsigned char)t[i]); i++)
		;
	if (!found && (k = code_at(t + i, n - i)))
		found = t + i;
	/* the first SMTP reply that carries one */
	for (i = 0; i < n && !found; i++) {
		if (i > 0 && !blank((unsigned char)t[i - 1]) && t[i - 1] != ':')
			continue;
		if (!reply_at(t + i, n - i))
			continue;
		for (j = i + 4; j < n && t[j] == ' '; j++)
			;
		if ((k = code_at(t + j, n - j)))
			found = t + j;
	}
	if (!found) {
		memcpy(out, permanent ? "5.0.0" : "4.0.0", 6);
		return 0;
	}
	out[0] = permanent ? '5' : '4';
	memcpy(out + 1, found + 1, k - 1);
	out[k] = 0;
	return 1;
}

/*
 * Append s cleaned to one line of printable ASCII: controls (CR, LF, TAB
 * among them) become spaces, runs of spaces one space, leading and trailing
 * spaces go, bytes beyond ASCII become '?'.  More than DSN_TEXT_MAX bytes
 * are cut, ending in "...".
 */
static int
cat_clean(str *out, const char *s)
{
	size_t start = out->len, i;
	int space = 0, cut = 0;

	if (!s)
		return 0;
	for (i = 0; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 127) {
			space = 1;
			continue;
		}
		if (out->len - start + (space && out->len > start) >=
		    DSN_TEXT_MAX) {
			cut = 1;
			break;
		}
		if (space && out->len > start && str_catc(out, ' '))
			return -1;
		space = 0;
		if (str_catc(out, c > 126 ? '?' : (char)c))
			return -1;
	}
	if (cut) {
		out->len = start + DSN_TEXT_MAX - 3;
		while (out->len > start && out->s[out->len - 1] == ' ')
			out->len--;
		return str_cats(out, "...");
	}
	return 0;
}

/* append at most max bytes of s that are letters, digits or in extra */
static int
cat_token(str *out, const char *s, size_t max, const char *extra)
{
	size_t i, n = 0;

	for (i = 0; s && s[i] && n < max; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    isdig((unsigned char)c) || (c && strchr(extra, c))) {
			if (str_catc(out, c))
				return -1;
			n++;
		}
	}
	return 0;
}

static int
cat_date(str *out, time_t t)
{
	char buf[64];

	return str_catb(out, buf, date_rfc5322(buf, sizeof buf, t));
}

/* the status of r: its own if valid, else from its diagnostic */
static void
rcpt_status(const struct dsn_rcpt *r, char out[DSN_STATUS_SIZE])
{
	int perm = r->action == DSN_FAILED;
	size_t n;

	if (r->status) {
		n = strlen(r->status);
		if (n && code_at(r->status, n) == n) {
			dsn_status(r->status, n, perm, out);
			return;
		}
	}
	dsn_status(r->diag, r->diag ? strlen(r->diag) : 0, perm, out);
}

/* the recipients with one action, for people */
static int
list_rcpts(str *b, const struct dsn *d, char action)
{
	size_t i, mark;

	for (i = 0; i < d->nrcpt; i++) {
		const struct dsn_rcpt *r = &d->rcpts[i];

		if (r->action != action)
			continue;
		if (str_cats(b, "<") || cat_clean(b, r->addr) ||
		    str_cats(b, ">:\n"))
			return -1;
		mark = b->len;
		if (str_cats(b, "    ") || cat_clean(b, r->diag))
			return -1;
		if (b->len == mark + 4)
			b->len = mark;
		else if (str_cats(b, "\n"))
			return -1;
		if (str_cats(b, "\n"))
			return -1;
	}
	return 0;
}

/* part 1: text/plain, what happened, in words */
static int
explain(str *b, const struct dsn *d, size_t nfail, size_t ndelay, int orig)
{
	if (str_cats(b, "This is the mail delivery system at ") ||
	    cat_clean(b, d->reporting_mta) || str_cats(b, ".\n\n"))
		return -1;
	if (nfail &&
	    (str_cats(b, "I could not deliver your message to the following "
			 "recipients.\nThis is a permanent error; I have "
			 "given up.\n\n") ||
	     list_rcpts(b, d, DSN_FAILED)))
		return -1;
	if (ndelay) {
		if (str_cats(b, "Your message has not been delivered yet to "
				"the following recipients.\nI am still "
				"trying; you do not need to send it again.\n"))
			return -1;
		if (d->retry_until &&
		    (str_cats(b, "If it still cannot be delivered by\n") ||
		     cat_date(b, d->retry_until) ||
		     str_cats(b, ", I will give up and tell you.\n")))
			return -1;
		if (str_cats(b, "\n") || list_rcpts(b, d, DSN_DELAYED))
			return -1;
	}
	if (d->queue_id && *d->queue_id &&
	    (str_cats(b, "The message's queue id was ") ||
	     cat_clean(b, d->queue_id) || str_cats(b, ".\n")))
		return -1;
	return str_cats(b, orig == 1 ? "The delivery report and your message "
				       "follow.\n"
			   : orig == 2 ? "The delivery report and the header "
					 "of your message follow.\n"
				       : "The delivery report follows.\n");
}

/* does the cleaned text at s[0..n) look like an SMTP reply? */
static int
smtp_like(const char *s, size_t n)
{
	return n >= 3 && s[0] >= '2' && s[0] <= '5' &&
	       isdig((unsigned char)s[1]) && isdig((unsigned char)s[2]) &&
	       (n == 3 || s[3] == ' ' || s[3] == '-');
}

/* Diagnostic-Code, typed by what the cleaned text looks like; none if empty */
static int
diag_line(str *b, const char *diag)
{
	size_t mark = b->len, tl;
	const char *type;

	if (cat_clean(b, diag))
		return -1;
	if (b->len == mark)
		return 0;
	type = smtp_like(b->s + mark, b->len - mark)
		       ? "Diagnostic-Code: smtp; "
		       : "Diagnostic-Code: x-moat; ";
	tl = strlen(type);
	if (str_readyplus(b, tl))
		return -1;
	memmove(b->s + mark + tl, b->s + mark, b->len - mark);
	memcpy(b->s + mark, type, tl);
	b->len += tl;
	return str_cats(b, "\n");
}

/* part 2: message/delivery-status */
static int
report(str *b, const struct dsn *d)
{
	char st[DSN_STATUS_SIZE];
	size_t i;

	if (d->original_envid && *d->original_envid &&
	    (str_cats(b, "Original-Envelope-Id: ") ||
	     cat_clean(b, d->original_envid) || str_cats(b, "\n")))
		return -1;
	if (str_cats(b, "Reporting-MTA: dns; ") ||
	    cat_clean(b, d->reporting_mta) || str_cats(b, "\n"))
		return -1;
	if (d->arrival && (str_cats(b, "Arrival-Date: ") ||
			   cat_date(b, d->arrival) || str_cats(b, "\n")))
		return -1;
	if (d->queue_id && *d->queue_id &&
	    (str_cats(b, "X-Moat-Queue-ID: ") || cat_clean(b, d->queue_id) ||
	     str_cats(b, "\n")))
		return -1;
	for (i = 0; i < d->nrcpt; i++) {
		const struct dsn_rcpt *r = &d->rcpts[i];

		rcpt_status(r, st);
		if (str_cats(b, "\nFinal-Recipient: rfc822; ") ||
		    cat_clean(b, r->addr) ||
		    str_cats(b, r->action == DSN_FAILED ? "\nAction: failed"
							: "\nAction: delayed") ||
		    str_cats(b, "\nStatus: ") || str_cats(b, st) ||
		    str_cats(b, "\n"))
			return -1;
		if (r->remote_mta && *r->remote_mta &&
		    (str_cats(b, "Remote-MTA: dns; ") ||
		     cat_clean(b, r->remote_mta) || str_cats(b, "\n")))
			return -1;
		if (diag_line(b, r->diag))
			return -1;
		if (str_cats(b, "Last-Attempt-Date: ") || cat_date(b, d->now) ||
		    str_cats(b, "\n"))
			return -1;
		if (r->action == DSN_DELAYED && d->retry_until &&
		    (str_cats(b, "Will-Retry-Until: ") ||
		     cat_date(b, d->retry_until) || str_cats(b, "\n")))
			return -1;
	}
	return 0;
}

/*
 * Read msgfd from offset 0 into b (replacing it): at most limit bytes;
 * *more is set when there is more.
 */
static int
read_orig(int fd, str *b, size_t limit, int *more)
{
	off_t off = 0;
	ssize_t r;
	size_t want;
	char c;

	b->len = 0;
	*more = 0;
	for (;;) {
		if (b->len == limit) {
			do
				r = pread(fd, &c, 1, off);
			while (r < 0 && errno == EINTR);
			if (r < 0)
				return -1;
			*more = r > 0;
			return 0;
		}
		want = limit - b->len;
		if (want > 65536)
			want = 65536;
		if (str_readyplus(b, want))
			return -1;
		r = pread(fd, b->s + b->len, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		b->len += (size_t)r;
		off += r;
	}
}

/*
 * The header section of the original in b[0..n): through the LF that ends
 * its last line.  When the blank line was not found, all of it if it ended
 * (more == 0), else the complete lines.
 */
static size_t
header_len(const char *b, size_t n, int more)
{
	const char *p;
	size_t i;

	if (n && b[0] == '\n')
		return 0;
	p = n ? memmem(b, n, "\n\n", 2) : 0;
	if (p)
		return (size_t)(p - b) + 1;
	if (!more)
		return n;
	for (i = n; i > 0 && b[i - 1] != '\n'; i--)
		;
	return i;
}

/*
 * Fetch what to include of the original into o: *kind 1 whole (message/
 * rfc822), 2 the header section (text/rfc822-headers), 0 nothing.
 */
static int
get_orig(str *o, const struct dsn *d, int fd, int *kind)
{
	struct stat st;
	int more = 0, big;

	*kind = 0;
	o->len = 0;
	if (fd < 0)
		return 0;
	big = d->headers_only ||
	      (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 0 &&
	       (uintmax_t)st.st_size > d->cap);
	if (!big) {
		if (read_orig(fd, o, d->cap, &more))
			return -1;
		if (!more) {
			*kind = o->len ? 1 : 0;
			return 0;
		}
	}
	if (read_orig(fd, o, DSN_HEAD_MAX, &more))
		return -1;
	o->len = header_len(o->s, o->len, more);
	*kind = o->len ? 2 : 0;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x, y;

	memcpy(&x, a, sizeof x);
	memcpy(&y, b, sizeof y);
	return x < y ? -1 : x > y;
}

/* note in used the counter of every prefix+counter in s[0..n) */
static int
scan(str *used, const char *s, size_t n, const char *pre, size_t plen)
{
	const char *p, *end;
	uint64_t v;
	size_t i;

	if (!s)
		return 0;
	end = s + n;
	while ((p = memmem(s, (size_t)(end - s), pre, plen))) {
		s = p + 1;
		if ((size_t)(end - p) - plen < HEXDIGITS)
			continue;
		for (v = 0, i = 0; i < HEXDIGITS; i++) {
			char c = p[plen + i];

			if (isdig((unsigned char)c))
				v = v << 4 | (uint64_t)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v << 4 | (uint64_t)(c - 'a' + 10);
			else
				break;
		}
		if (i == HEXDIGITS && str_catb(used, (char *)&v, sizeof v))
			return -1;
	}
	return 0;
}

/*
 * A boundary: a prefix from the time and queue id, then the smallest
 * counter whose boundary occurs in none of the n texts.  Each occurrence of
 * the prefix rules out at most one counter, so one is always free.
 */
static int
boundary(str *bd, const struct dsn *d, const str *const *texts, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	str used = STR_INIT;
	uint64_t k = 0, v;
	size_t i, plen;
	int shift;

	bd->len = 0;
	if (str_cats(bd, BPREFIX) || str_catu(bd, (unsigned long long)d->now) ||
	    str_cats(bd, "_") || cat_token(bd, d->queue_id, 20, "") ||
	    str_cats(bd, "_"))
		return -1;
	plen = bd->len;
	for (i = 0; i < n; i++)
		if (scan(&used, texts[i]->s, texts[i]->len, bd->s, plen)) {
			str_free(&used);
			return -1;
		}
	if (used.len) {
		qsort(used.s, used.len / sizeof v, sizeof v, cmp_u64);
		for (i = 0; i < used.len; i += sizeof v) {
			memcpy(&v, used.s + i, sizeof v);
			if (v == k)
				k++;
			else if (v > k)
				break;
		}
	}
	str_free(&used);
	for (shift = (HEXDIGITS - 1) * 4; shift >= 0; shift -= 4)
		if (str_catc(bd, hex[(k >> shift) & 15]))
			return -1;
	return 0;
}

static int
eightbit(const str *s)
{
	size_t i;

	for (i = 0; i < s->len; i++)
		if ((unsigned char)s->s[i] > 127)
			return 1;
	return 0;
}

/* <time.queueid.bounce@me>, or .delay@ for a delay warning */
static int
msgid(str *out, const struct dsn *d, size_t ndelay)
{
	size_t mark;

	if (str_catu(out, (unsigned long long)d->now))
		return -1;
	mark = out->len;
	if (str_cats(out, ".") || cat_token(out, d->queue_id, 20, ""))
		return -1;
	if (out->len == mark + 1)
		out->len = mark;
	if (str_cats(out, ndelay == d->nrcpt ? ".delay@" : ".bounce@"))
		return -1;
	mark = out->len;
	if (cat_token(out, d->reporting_mta, 255, ".-"))
		return -1;
	if (out->len == mark && str_cats(out, "localhost"))
		return -1;
	return 0;
}

static int
assemble(str *out, const struct dsn *d, size_t ndelay, const str *p1,
	 const str *p2, const str *orig, int kind, const str *bd)
{
	int eight = kind && eightbit(orig);

	if (str_cats(out, "From: \"Mail Delivery System\" <") ||
	    cat_clean(out, d->from) || str_cats(out, ">\nTo: <") ||
	    cat_clean(out, d->to) || str_cats(out, ">\nSubject: ") ||
	    str_cats(out, ndelay == d->nrcpt
				  ? "Delayed Mail (still being retried)"
				  : "Undelivered Mail Returned to Sender") ||
	    str_cats(out, "\nDate: ") || cat_date(out, d->now) ||
	    str_cats(out, "\nMessage-ID: <") || msgid(out, d, ndelay) ||
	    str_cats(out, ">\nAuto-Submitted: auto-replied\n"
			  "MIME-Version: 1.0\n"
			  "Content-Type: multipart/report; "
			  "report-type=delivery-status;\n\tboundary=\"") ||
	    str_catb(out, bd->s, bd->len) || str_cats(out, "\"\n") ||
	    (eight && str_cats(out, "Content-Transfer-Encoding: 8bit\n")) ||
	    str_cats(out, "\nThis is a MIME-encapsulated message.\n\n--") ||
	    str_catb(out, bd->s, bd->len) ||
	    str_cats(out, "\nContent-Description: Notification\n"
			  "Content-Type: text/plain; charset=us-ascii\n\n") ||
	    str_catb(out, p1->s, p1->len) || str_cats(out, "\n--") ||
	    str_catb(out, bd->s, bd->len) ||
	    str_cats(out, "\nContent-Description: Delivery report\n"
			  "Content-Type: message/delivery-status\n\n") ||
	    str_catb(out, p2->s, p2->len) || str_cats(out, "\n--") ||
	    str_catb(out, bd->s, bd->len))
		return -1;
	if (kind &&
	    (str_cats(out, kind == 1 ? "\nContent-Description: Original message"
				       "\nContent-Type: message/rfc822\n"
				     : "\nContent-Description: Header of the "
				       "original message\n"
				       "Content-Type: text/rfc822-headers\n") ||
	     (eight && str_cats(out, "Content-Transfer-Encoding: 8bit\n")) ||
	     str_cats(out, "\n") || str_catb(out, orig->s, orig->len) ||
	     str_cats(out, "\n--") || str_catb(out, bd->s, bd->len)))
		return -1;
	return str_cats(out, "--\n");
}

int
dsn_build(str *out, const struct dsn *d, int msgfd)
{
	str p1 = STR_INIT, p2 = STR_INIT, orig = STR_INIT, bd = STR_INIT;
	const str *texts[3];
	size_t i, ndelay = 0;
	int kind = 0, r = -1, e;

	out->len = 0;
	if (!d || !d->reporting_mta || !d->from || !d->to || !d->rcpts ||
	    !d->nrcpt) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < d->nrcpt; i++) {
		if (!d->rcpts[i].addr || (d->rcpts[i].action != DSN_FAILED &&
					  d->rcpts[i].action != DSN_DELAYED)) {
			errno = EINVAL;
			return -1;
		}
		ndelay += d->rcpts[i].action == DSN_DELAYED;
	}
	if (get_orig(&orig, d, msgfd, &kind) ||
	    explain(&p1, d, d->nrcpt - ndelay, ndelay, kind) || report(&p2, d))
		goto done;
	texts[0] = &p1;
	texts[1] = &p2;
	texts[2] = &orig;
	if (boundary(&bd, d, texts, 3) ||
	    assemble(out, d, ndelay, &p1, &p2, &orig, kind, &bd))
		goto done;
	r = 0;
done:
	e = errno;
	if (r)
		out->len = 0;
	str_free(&p1);
	str_free(&p2);
	str_free(&orig);
	str_free(&bd);
	errno = e;
	return r;
}
