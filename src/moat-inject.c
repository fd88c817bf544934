/*
 * moat-inject: fix up a message from a local user and queue it.
 *
 *   moat-inject [-aAhHnNdv] [-f sender] [--] [recipient ...]
 *
 * Runs as: the caller (root against a queue that belongs to another
 * account, as under `moat run`: that account; see below).
 * Reads: the message on standard input (CRLF or LF line ends; stored with
 * LF); control/defaulthost, defaultdomain, plusdomain, idhost, locals under
 * MOAT_ROOT or the installed prefix; the environment QMAILUSER, MAILUSER,
 * USER, LOGNAME (user), QMAILHOST, MAILHOST (host), QMAILNAME, MAILNAME,
 * NAME (personal name), QMAILSUSER, QMAILSHOST (envelope sender),
 * QMAILQUEUE (the queue program instead of moat-queue).
 * Writes: the message and its envelope to moat-queue (the qmail-queue
 * protocol); with -n, to standard output instead.
 *
 * The header is parsed (header.h) and fixed up as qmail-inject does:
 * Date (RFC 5322, numeric zone), Message-ID (<time.pid.random@idhost>)
 * and From (user and host from the environment, else the login name at
 * defaulthost) are added at the end when missing; a resent message (one
 * with a Resent- field) also gets Resent-Date, Resent-Message-ID and
 * Resent-From, at the top.  Bcc, Resent-Bcc, Return-Path and
 * Content-Length are removed.  In the address fields (From, Sender,
 * Reply-To, To, Cc, Mail-Followup-To, Mail-Reply-To and their Resent-
 * forms) and in the envelope, a mailbox without a host gets @defaulthost, a
 * host ending in '+' gets the '+' replaced by "." plusdomain, and a host
 * without a dot gets "." defaultdomain (unless it is listed in locals or
 * is defaultdomain itself: "localhost" under `moat run` stays).  Changes
 * are spliced into the field as written; comments, folding, display names
 * and encoded words are kept.  A field that has to be read and does not
 * parse stops the message (exit 100, with the reason): nothing is queued
 * that moat had to guess at.
 *
 * The header ends at an empty line.  Input whose first line is not a
 * header field has no header: all of it is the body.  A line that is not
 * a header field after some fields starts the body, and an empty line is
 * put before it.  A leading "From " line (an mbox separator) is dropped.
 *
 * Recipients: -a the arguments; -h the To, Cc and Bcc fields (Resent-To,
 * Resent-Cc, Resent-Bcc for a resent message); -H both; -A (default) the
 * arguments when there are any, else the header.  Duplicates are dropped.
 * Envelope sender: -f sender ("" or "<>": the null sender), else
 * QMAILSUSER@QMAILSHOST, each part defaulting to the From user and host.
 * -n prints the envelope (a line "F" sender, a line "T" recipient for each,
 * an empty line) and then the message, instead of queueing; -N queues (the
 * default).  -d: a line with only "." ends the input (sendmail without
 * -i).  -v: report the queue id on standard error.
 *
 * Root: moat-queue runs as its caller unless it is setuid.  When root
 * injects into a queue that belongs to another account (a `moat run`
 * directory that root started: the run account owns it) and moat-queue is
 * not setuid, moat-inject first becomes that account, so that moat-send
 * and moat-clean, which run as it, can read and remove the new files.
 *
 * Exit codes: 0 queued (or printed); 100 permanent: bad usage, a header
 * that does not parse or is too large, a bad address, no recipients, a
 * permanent refusal by the queue (its codes 11-40 and 91); 111 temporary:
 * anything else (out of memory, cannot read the input or the
 * configuration, the queue failed).
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "control.h"
#include "date.h"
#include "envelope.h"
#include "header.h"
#include "io.h"
#include "log.h"
#include "paths.h"
#include "runas.h"
#include "str.h"

#define MODE_A 1 /* -a */
#define MODE_H 2 /* -h */
#define MODE_BOTH 3

/* configuration */
static str defaulthost, defaultdomain, plusdomain, idhost, locals;
static size_t n_locals;
static int mode, opt_n, opt_dot, opt_v;
static const char *opt_f;

/* input */
static io in;
static char inbuf[65536];
static int in_eof; /* input ended (EOF, or the "." line with -d) */

/* the message */
static struct header h = HEADER_INIT;
static str first_body; /* body bytes read while looking for the header */
static int separator;  /* an empty line ended the header */
static int resent;
static str rcpts;     /* recipients: NUL-terminated, one after another */
static size_t nrcpt;
static str sender;    /* envelope sender */
static str from_user, from_host;

static _Noreturn void
nomem(void)
{
	die(111, "out of memory");
}

static _Noreturn void
usage(void)
{
	die(100, "usage: moat-inject [-aAhHnNdv] [-f sender] [--] "
		 "[recipient ...]");
}

static const char *
env_first(const char *const *names)
{
	for (; *names; names++) {
		const char *v = getenv(*names);

		if (v && *v)
			return v;
	}
	return 0;
}

/* --- addresses --- */

static int
listed_local(const char *d, size_t n)
{
	return ctl_domain_match(&locals, n_locals, d, n);
}

/* the host d (n bytes) qualified: a trailing '+' becomes "." plusdomain,
 * a name without a dot gets "." defaultdomain */
static void
qualify_host(const char *d, size_t n, str *out)
{
	out->len = 0;
	if (n && d[n - 1] == '+') {
		if (str_catb(out, d, n - 1) == -1)
			nomem();
		if (plusdomain.len && (str_catc(out, '.') == -1 ||
				       str_cats(out, plusdomain.s) == -1))
			nomem();
	} else if (str_catb(out, d, n) == -1) {
		nomem();
	}
	if (out->len && out->s[0] != '[' && !memchr(out->s, '.', out->len) &&
	    defaultdomain.len && !listed_local(out->s, out->len) &&
	    !(out->len == defaultdomain.len &&
	      !strncasecmp(out->s, defaultdomain.s, out->len)))
		if (str_catc(out, '.') == -1 ||
		    str_cats(out, defaultdomain.s) == -1)
			nomem();
	if (str_0(out) == -1)
		nomem();
}

/* an envelope address must be one the rest of moat accepts */
static void
check_addr(const char *a, size_t len, const char *where)
{
	char esc[256];
	const char *at = memrchr(a, '@', len);
	size_t ll = at ? (size_t)(at - a) : len;

	log_escape(esc, sizeof esc, a, len);
	if (!at || ll == 0)
		die(100, "%s: %s is not a complete address", where, esc);
	/* as moat-smtpd takes it: RFC 5321's path limit, the local part
	 * not held to 64 (VERP senders of list managers are longer) */
	if (len > ADDR_PATH_MAX - 2)
		die(100, "%s: %s is longer than %d bytes", where, esc,
		    ADDR_PATH_MAX - 2);
	if (!addr_domain_ok(at + 1, len - ll - 1))
		die(100, "%s: %s has an invalid domain", where, esc);
}

static void
add_rcpt(const char *a, size_t len, const char *where)
{
	check_addr(a, len, where);
	if (nrcpt >= env_default_limits.rcpt_max)
		die(100, "more than %zu recipients",
		    env_default_limits.rcpt_max);
	if (str_catb(&rcpts, a, len) == -1 || str_catc(&rcpts, 0) == -1)
		nomem();
	nrcpt++;
}

/*
 * Mailbox i of al qualified: its host into host, the whole address (the
 * internal form: local part unquoted) into full.
 */
static void
qualify_mbox(const struct hdr_alist *al, size_t i, str *host, str *full)
{
	const struct hdr_mbox *m = &al->m[i];
	const char *a = al->text.s + m->addr;
	size_t ll = m->llen;

	if (!m->has_domain) {
		qualify_host(defaulthost.s, defaulthost.len, host);
	} else {
		if (m->literal) {
			if (str_copyb(host, a + ll + 1, m->alen - ll - 1) ==
				-1 ||
			    str_0(host) == -1)
				nomem();
		} else {
			qualify_host(a + ll + 1, m->alen - ll - 1, host);
		}
	}
	if (str_copyb(full, a, ll) == -1 || str_catc(full, '@') == -1 ||
	    str_catb(full, host->s, host->len) == -1)
		nomem();
}

/*
 * The field value v (n bytes) with every mailbox of al qualified, into
 * out: "@host" inserted after a bare local part, a changed host put in
 * place of the old; nothing else is touched.  With collect, each qualified
 * address becomes a recipient.
 */
static void
fix_list(const char *v, size_t n, const struct hdr_alist *al, str *out,
	 int collect, const char *where)
{
	static str host, full;
	size_t pos = 0, i;

	out->len = 0;
	for (i = 0; i < al->n; i++) {
		const struct hdr_mbox *m = &al->m[i];
		size_t dl = m->dend - m->dstart;

		qualify_mbox(al, i, &host, &full);
		if (!m->has_domain) {
			if (str_catb(out, v + pos, m->lend - pos) == -1 ||
			    str_catc(out, '@') == -1 ||
			    str_catb(out, host.s, host.len) == -1)
				nomem();
			pos = m->lend;
		} else if (host.len != dl || memcmp(host.s, v + m->dstart, dl)) {
			/* the domain as written differs (qualified, or
			 * written with spaces or comments inside) */
			if (str_catb(out, v + pos, m->dstart - pos) == -1 ||
			    str_catb(out, host.s, host.len) == -1)
				nomem();
			pos = m->dend;
		}
		if (collect)
			add_rcpt(full.s, full.len, where);
	}
	if (str_catb(out, v + pos, n - pos) == -1)
		nomem();
}

/* parse v as an address list or stop with the reason */
static void
parse_list(const char *v, size_t n, struct hdr_alist *al, const char *where)
{
	const char *why;
	char esc[512];
	int r = hdr_alist(v, n, al, &why);

	if (r == HDR_NOMEM)
		nomem();
	if (r != HDR_OK) {
		str u = STR_INIT;

		if (hdr_unfold(v, n, &u) == -1)
			nomem();
		log_escape(esc, sizeof esc, u.s, u.len);
		die(100, "unable to parse the addresses in %s: %s: %s", where,
		    why, esc);
	}
}

/* --- reading the input --- */

/*
 * One line into s (appended), CRLF turned into LF.  Returns 1 for a whole
 * line, 2 when max bytes were read without an LF (kept), 0 at the end of
 * the input (s holds any last line without its LF).
 */
static int
get_line(str *s, size_t max)
{
	size_t start = s->len;

	if (in_eof)
		return 0;
	for (;;) {
		char c;
		int r = io_getc(&in, &c);

		if (r == -1)
			die_sys(111, "unable to read the message");
		if (r == 0) {
			in_eof = 1;
			return 0;
		}
		if (str_catc(s, c) == -1)
			nomem();
		if (c == '\n') {
			if (s->len - start >= 2 && s->s[s->len - 2] == '\r') {
				s->s[s->len - 2] = '\n';
				s->len--;
			}
			if (opt_dot && s->len - start == 2 &&
			    s->s[start] == '.') {
				s->len = start;
				in_eof = 1;
				return 0;
			}
			return 1;
		}
		if (s->len - start >= max)
			return 2;
	}
}

static void
header_error(int r, const char *why)
{
	if (r == HDR_NOMEM)
		nomem();
	die(100, "unable to parse the header: %s", why);
}

static void
read_header(void)
{
	static str line;
	int first = 1;

	for (;;) {
		const char *why;
		int r, kind;

		line.len = 0;
		r = get_line(&line, HDR_FIELD_MAX);
		if (r == 0 && line.len == 0)
			return;
		if (first && line.len >= 5 && !memcmp(line.s, "From ", 5) &&
		    r == 1) {
			first = 0;
			continue;
		}
		first = 0;
		kind = hdr_line_kind(line.s, line.len);
		if (kind == HDR_LINE_CONT && h.n == 0)
			kind = HDR_LINE_OTHER;
		if (kind == HDR_LINE_END) {
			separator = 1;
			return;
		}
		if (kind == HDR_LINE_OTHER) {
			if (str_copyb(&first_body, line.s, line.len) == -1)
				nomem();
			return;
		}
		if (r == 2)
			die(100, "unable to parse the header: a header field "
				 "longer than 64 KiB");
		r = hdr_add_line(&h, line.s,
				 line.len && line.s[line.len - 1] == '\n'
				     ? line.len - 1
				     : line.len,
				 &why);
		if (r != HDR_OK)
			header_error(r, why);
	}
}

/* --- the message out --- */

static io out;
static char outbuf[16384];
static int out_broken;

static void
put(const char *s, size_t n)
{
	if (n && !out_broken && io_put(&out, s, n) == -1)
		out_broken = 1;
}

/*
 * The rest of the input, CRLF turned into LF; with -d, up to a line with
 * only ".".  bol: at the start of a line; cr: a CR was read just before.
 */
static void
copy_body(int bol, int cr)
{
	int dot = 0;

	if (in_eof)
		return;
	for (;;) {
		char c;
		int r = io_getc(&in, &c);

		if (r == -1)
			die_sys(111, "unable to read the message");
		if (r == 0)
			break;
		if (cr) {
			cr = 0;
			if (c == '\n') {
				if (dot)
					return; /* ".\r\n" */
				put("\n", 1);
				bol = 1;
				continue;
			}
			if (dot) {
				put(".", 1);
				dot = 0;
			}
			put("\r", 1);
			bol = 0;
		}
		if (c == '\r') {
			cr = 1;
			continue;
		}
		if (dot) {
			if (c == '\n')
				return; /* ".\n" */
			put(".", 1);
			dot = 0;
		}
		if (bol && c == '.' && opt_dot) {
			dot = 1;
			bol = 0;
			continue;
		}
		put(&c, 1);
		bol = c == '\n';
	}
	if (dot)
		put(".", 1);
	if (cr)
		put("\r", 1);
}

/* a display name for a header: as it is if it is atoms, quoted if it has
 * specials, an RFC 2047 encoded word (UTF-8) if it is not ASCII */
static void
display_name(const char *name, str *o)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrs"
				  "tuvwxyz0123456789+/";
	size_t n = strlen(name), i;
	int eight = 0, special = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c >= 128)
			eight = 1;
		else if (c < 32 || c == 127 || strchr("()<>[]:;@\\,.\"", c))
			special = 1;
	}
	if (eight) {
		i = 0;
		while (i < n) {
			size_t k = n - i > 45 ? 45 : n - i, j;

			/* do not split a UTF-8 sequence */
			while (k < n - i && k > 1 &&
			       ((unsigned char)name[i + k] & 0xc0) == 0x80)
				k--;
			if (i && str_catc(o, ' ') == -1)
				nomem();
			if (str_cats(o, "=?UTF-8?B?") == -1)
				nomem();
			for (j = 0; j < k; j += 3) {
				unsigned long v = (unsigned long)(unsigned char)
							  name[i + j]
						  << 16;
				char q[4];

				if (j + 1 < k)
					v |= (unsigned long)(unsigned char)
						     name[i + j + 1]
					     << 8;
				if (j + 2 < k)
					v |= (unsigned char)name[i + j + 2];
				q[0] = b64[(v >> 18) & 63];
				q[1] = b64[(v >> 12) & 63];
				q[2] = j + 1 < k ? b64[(v >> 6) & 63] : '=';
				q[3] = j + 2 < k ? b64[v & 63] : '=';
				if (str_catb(o, q, 4) == -1)
					nomem();
			}
			if (str_cats(o, "?=") == -1)
				nomem();
			i += k;
		}
		return;
	}
	if (!special) {
		if (str_cats(o, name) == -1)
			nomem();
		return;
	}
	if (str_catc(o, '"') == -1)
		nomem();
	for (i = 0; i < n; i++) {
		char c = name[i];

		if ((unsigned char)c < 32 || c == 127)
			c = ' ';
		if ((c == '"' || c == '\\') && str_catc(o, '\\') == -1)
			nomem();
		if (str_catc(o, c) == -1)
			nomem();
	}
	if (str_catc(o, '"') == -1)
		nomem();
}

/* a local part for a header: quoted unless it is a dot-atom */
static void
local_part(const char *l, size_t n, str *o)
{
	size_t i;
	int plain = n > 0 && l[0] != '.' && l[n - 1] != '.';

	for (i = 0; i < n && plain; i++) {
		unsigned char c = (unsigned char)l[i];

		if (c == '.') {
			if (l[i + 1] == '.')
				plain = 0;
		} else if (c <= 32 || c >= 127 ||
			   strchr("()<>[]:;@\\,\"", c)) {
			plain = 0;
		}
	}
	if (plain) {
		if (str_catb(o, l, n) == -1)
			nomem();
		return;
	}
	if (str_catc(o, '"') == -1)
		nomem();
	for (i = 0; i < n; i++) {
		if ((l[i] == '"' || l[i] == '\\') && str_catc(o, '\\') == -1)
			nomem();
		if (str_catc(o, l[i]) == -1)
			nomem();
	}
	if (str_catc(o, '"') == -1)
		nomem();
}

static void
from_field(const char *name, str *o)
{
	static const char *const names[] = {"QMAILNAME", "MAILNAME", "NAME",
					    0};
	const char *pn = env_first(names);

	o->len = 0;
	if (str_cats(o, name) == -1 || str_cats(o, ": ") == -1)
		nomem();
	if (pn) {
		display_name(pn, o);
		if (str_cats(o, " <") == -1)
			nomem();
	}
	local_part(from_user.s, from_user.len, o);
	if (str_catc(o, '@') == -1 || str_catb(o, from_host.s, from_host.len) ==
					      -1)
		nomem();
	if (pn && str_catc(o, '>') == -1)
		nomem();
	if (str_catc(o, '\n') == -1)
		nomem();
}

static void
date_field(const char *name, time_t now, str *o)
{
	char d[64];

	date_rfc5322(d, sizeof d, now);
	o->len = 0;
	if (str_cats(o, name) == -1 || str_cats(o, ": ") == -1 ||
	    str_cats(o, d) == -1 || str_catc(o, '\n') == -1)
		nomem();
}

static void
msgid_field(const char *name, time_t now, str *o)
{
	unsigned long long r = 0;
	char buf[128];

	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		r = (unsigned long long)ts.tv_nsec * 2654435761u ^
		    (unsigned long long)getpid() << 32;
	}
	snprintf(buf, sizeof buf, "<%lld.%ld.%016llx@", (long long)now,
		 (long)getpid(), r);
	o->len = 0;
	if (str_cats(o, name) == -1 || str_cats(o, ": ") == -1 ||
	    str_cats(o, buf) == -1 || str_cats(o, idhost.s) == -1 ||
	    str_cats(o, ">\n") == -1)
		nomem();
}

/* --- the header's fields --- */

static const char *const addr_fields[] = {
	"From",	    "Sender",	     "Reply-To",	"To",
	"Cc",	    "Bcc",	     "Resent-From",	"Resent-Sender",
	"Resent-Reply-To", "Resent-To", "Resent-Cc",	"Resent-Bcc",
	"Mail-Followup-To", "Mail-Reply-To", 0};

static int
is_one_of(size_t i, const char *const *names)
{
	for (; *names; names++)
		if (hdr_is(&h, i, *names))
			return 1;
	return 0;
}

static int
is_rcpt_field(size_t i)
{
	static const char *const plain[] = {"To", "Cc", "Bcc", 0};
	static const char *const re[] = {"Resent-To", "Resent-Cc",
					  "Resent-Bcc", 0};

	return is_one_of(i, resent ? re : plain);
}

static int
is_removed(size_t i)
{
	static const char *const gone[] = {"Bcc", "Resent-Bcc", "Return-Path",
					   "Content-Length", 0};

	return is_one_of(i, gone);
}

/*
 * Rewrite the header into fixed (the fields to keep, in order), and
 * collect the header's recipients when wanted.
 */
static void
fix_header(str *fixed, int collect)
{
	static struct hdr_alist al = HDR_ALIST_INIT;
	static str val;
	size_t i;

	fixed->len = 0;
	for (i = 0; i < h.n; i++) {
		size_t nl, vl;
		const char *name = hdr_name(&h, i, &nl);
		const char *v = hdr_value(&h, i, &vl);
		char where[64];

		if (!is_one_of(i, addr_fields)) {
			if (!is_removed(i) &&
			    str_catb(fixed, h.raw.s + h.f[i].off,
				     h.f[i].len) == -1)
				nomem();
			continue;
		}
		snprintf(where, sizeof where, "%.*s", (int)(nl > 40 ? 40 : nl),
			 name);
		parse_list(v, vl, &al, where);
		fix_list(v, vl, &al, &val, collect && is_rcpt_field(i), where);
		if (is_removed(i))
			continue;
		if (str_catb(fixed, name, (size_t)(v - name)) == -1 ||
		    str_catb(fixed, val.s, val.len) == -1 ||
		    str_catc(fixed, '\n') == -1)
			nomem();
	}
}

/* --- the envelope --- */

static int
cmp_addr(const char *a, const char *b)
{
	const char *x = strrchr(a, '@'), *y = strrchr(b, '@');
	size_t lx = x ? (size_t)(x - a) : strlen(a);
	size_t ly = y ? (size_t)(y - b) : strlen(b);
	int r;

	if (lx != ly)
		return lx < ly ? -1 : 1;
	r = memcmp(a, b, lx);
	if (r)
		return r;
	return strcasecmp(x ? x : "", y ? y : "");
}

static const char **sort_base;

static int
cmp_idx(const void *p, const void *q)
{
	size_t i = *(const size_t *)p, j = *(const size_t *)q;
	int r = cmp_addr(sort_base[i], sort_base[j]);

	return r ? r : i < j ? -1 : i > j;
}

/* drop repeated recipients, keeping the first of each */
static void
dedupe(void)
{
	const char **a;
	size_t *idx, i, off = 0, bytes;
	char *keep;
	str uniq = STR_INIT;
	size_t kept = 0;

	if (nrcpt < 2)
		return;
	if (size_mul(&bytes, nrcpt, sizeof *a) == -1 || !(a = malloc(bytes)))
		nomem();
	if (size_mul(&bytes, nrcpt, sizeof *idx) == -1 ||
	    !(idx = malloc(bytes)) || !(keep = calloc(nrcpt, 1)))
		nomem();
	for (i = 0; i < nrcpt; i++) {
		a[i] = rcpts.s + off;
		off += strlen(a[i]) + 1;
		idx[i] = i;
	}
	sort_base = a;
	qsort(idx, nrcpt, sizeof *idx, cmp_idx);
	for (i = 0; i < nrcpt; i++)
		keep[idx[i]] = i == 0 || cmp_addr(a[idx[i - 1]], a[idx[i]]);
	for (i = 0; i < nrcpt; i++) {
		if (!keep[i])
			continue;
		if (str_cats(&uniq, a[i]) == -1 || str_catc(&uniq, 0) == -1)
			nomem();
		kept++;
	}
	free(a);
	free(idx);
	free(keep);
	str_free(&rcpts);
	rcpts = uniq;
	nrcpt = kept;
}

static void
args_rcpts(char **argv, int argc)
{
	static struct hdr_alist al = HDR_ALIST_INIT;
	static str val;
	int i;

	for (i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]);

		parse_list(argv[i], n, &al, "the argument");
		if (al.n == 0)
			die(100, "a recipient argument without an address");
		fix_list(argv[i], n, &al, &val, 1, "the argument");
	}
}

static int
valid_user(const char *u)
{
	size_t n = strlen(u), i;

	if (n == 0 || n > ADDR_LOCAL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] < 32 || (unsigned char)u[i] >= 127)
			return 0;
	return 1;
}

/* user and host of the default From, the envelope sender from them */
static void
identity(const char *login)
{
	static const char *const users[] = {"QMAILUSER", "MAILUSER", "USER",
					    "LOGNAME", 0};
	static const char *const hosts[] = {"QMAILHOST", "MAILHOST", 0};
	const char *u = env_first(users), *hs = env_first(hosts), *v;
	static str tmp;

	if (!u)
		u = login;
	if (str_copys(&from_user, u) == -1 || str_0(&from_user) == -1)
		nomem();
	if (!hs)
		hs = defaulthost.s;
	qualify_host(hs, strlen(hs), &from_host);
	/* these go into the From field as they are: nothing that could
	 * break the header */
	if (!valid_user(from_user.s))
		die(100, "the user name for From (QMAILUSER, MAILUSER, USER, "
			 "LOGNAME or the login name) has a control character "
			 "or is too long");
	if (!addr_domain_ok(from_host.s, from_host.len))
		die(100, "the host for From (QMAILHOST, MAILHOST or "
			 "defaulthost) is not a valid domain: %.100s",
		    from_host.s);

	if (opt_f) {
		struct hdr_alist al = HDR_ALIST_INIT;
		static str host;

		sender.len = 0;
		if (!*opt_f || !strcmp(opt_f, "<>")) {
			if (str_0(&sender) == -1)
				nomem();
			return;
		}
		parse_list(opt_f, strlen(opt_f), &al, "-f");
		if (al.n != 1)
			die(100, "-f needs exactly one address");
		qualify_mbox(&al, 0, &host, &sender);
		hdr_alist_free(&al);
	} else {
		v = getenv("QMAILSUSER");
		if (str_copys(&sender, v && *v ? v : from_user.s) == -1)
			nomem();
		v = getenv("QMAILSHOST");
		if (v && *v)
			qualify_host(v, strlen(v), &tmp);
		if (str_catc(&sender, '@') == -1 ||
		    str_cats(&sender, v && *v ? tmp.s : from_host.s) == -1)
			nomem();
	}
	check_addr(sender.s, sender.len, "the envelope sender");
	if (str_0(&sender) == -1)
		nomem();
}

/* --- queueing --- */

static pid_t qq_pid;
static int qq_efd, qq_idfd = -1;

static int
qq_setuid(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && (st.st_mode & S_ISUID);
}

/* root injecting into a queue it does not own becomes its owner, unless
 * moat-queue is setuid (then it writes as its owner anyway) or another
 * queue program was named */
static void
drop_root(const char *root)
{
	const char *qq = getenv("QMAILQUEUE");
	str prog = STR_INIT;
	uid_t uid;

	if (geteuid() != 0 || (qq && *qq))
		return;
	if (bin_path(&prog, "moat-queue") == -1)
		die_sys(111, "unable to find moat-queue");
	if (!qq_setuid(prog.s) && runas_queue_owner(root, &uid) == -1)
		die_sys(111, "unable to become the owner of %s/queue", root);
	str_free(&prog);
}

static void
qq_start(void)
{
	const char *qq = getenv("QMAILQUEUE");
	str prog = STR_INIT;
	int mp[2], ep[2], ip[2];

	if (!qq || !*qq) {
		if (bin_path(&prog, "moat-queue") == -1)
			die_sys(111, "unable to find moat-queue");
		qq = prog.s;
	}
	if (pipe2(mp, O_CLOEXEC) == -1 || pipe2(ep, O_CLOEXEC) == -1 ||
	    pipe2(ip, O_CLOEXEC) == -1)
		die_sys(111, "unable to make a pipe");
	qq_pid = fork();
	if (qq_pid == -1)
		die_sys(111, "unable to fork");
	if (qq_pid == 0) {
		char *argv[2];

		argv[0] = (char *)qq;
		argv[1] = 0;
		if (dup2(mp[0], 0) == -1 || dup2(ep[0], 1) == -1 ||
		    dup2(ip[1], 3) == -1)
			_exit(120);
		setenv("MOAT_IDFD", "3", 1);
		signal(SIGPIPE, SIG_DFL);
		execv(qq, argv);
		log_sys("unable to run %s", qq);
		_exit(120);
	}
	close(mp[0]);
	close(ep[0]);
	close(ip[1]);
	str_free(&prog);
	io_init(&out, mp[1], outbuf, sizeof outbuf, 0);
	qq_efd = ep[1];
	qq_idfd = ip[0];
}

static int
qq_finish(void)
{
	str e = STR_INIT;
	size_t off = 0, i;
	char id[64];
	ssize_t n;
	int status, code;

	if (!out_broken && io_flush(&out) == -1)
		out_broken = 1;
	close(out.fd);
	if (!out_broken) {
		if (env_add(&e, 'F', sender.s, sender.len) == -1)
			nomem();
		for (i = 0; i < nrcpt; i++) {
			size_t l = strlen(rcpts.s + off);

			if (env_add(&e, 'T', rcpts.s + off, l) == -1)
				nomem();
			off += l + 1;
		}
		if (str_catc(&e, 0) == -1)
			nomem();
		if (io_writeall(qq_efd, e.s, e.len, 0) == -1)
			out_broken = 1;
		str_free(&e);
	}
	close(qq_efd);
	n = read(qq_idfd, id, sizeof id - 1);
	id[n > 0 ? n : 0] = 0;
	id[strcspn(id, "\n")] = 0;
	close(qq_idfd);
	while (waitpid(qq_pid, &status, 0) == -1)
		if (errno != EINTR)
			die_sys(111, "unable to wait for the queue");
	code = WIFEXITED(status) ? WEXITSTATUS(status) : 81;
	if (code == 0 && out_broken)
		code = 53; /* never claim success */
	if (code == 0) {
		if (opt_v)
			log_msg("queued as %s for %zu recipient%s",
				id[0] ? id : "?", nrcpt, nrcpt == 1 ? "" : "s");
		return 0;
	}
	if ((code >= 11 && code <= 40) || code == 91)
		die(100, "the queue refused the message permanently (status "
			 "%d)",
		    code);
	die(111, "the queue failed (status %d); the message was not queued",
	    code);
}

/* --- main --- */

static void
config(void)
{
	if (ctl_line("defaulthost", &defaulthost) < 0 ||
	    ctl_line("defaultdomain", &defaultdomain) < 0 ||
	    ctl_line("plusdomain", &plusdomain) < 0 ||
	    ctl_line("idhost", &idhost) < 0 ||
	    ctl_list("locals", &locals, &n_locals) < 0)
		die_sys(111, "unable to read the control files in %s",
			ctl_dir());
	if (!defaulthost.len)
		die(111, "control/defaulthost (or me) is empty");
}

int
main(int argc, char **argv)
{
	static str fixed, field;
	const char *root;
	struct passwd *pw;
	char login[256];
	time_t now = time(0);
	int c, i;

	log_init("moat-inject");
	signal(SIGPIPE, SIG_IGN);
	mode = 0;
	while ((c = getopt(argc, argv, "+aAhHnNdvf:")) != -1) {
		switch (c) {
		case 'a':
			mode = MODE_A;
			break;
		case 'A':
			mode = 0;
			break;
		case 'h':
			mode = MODE_H;
			break;
		case 'H':
			mode = MODE_BOTH;
			break;
		case 'n':
			opt_n = 1;
			break;
		case 'N':
			opt_n = 0;
			break;
		case 'd':
			opt_dot = 1;
			break;
		case 'v':
			opt_v = 1;
			break;
		case 'f':
			opt_f = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (mode == 0)
		mode = argc ? MODE_A : MODE_H;
	if (mode == MODE_H && argc)
		die(100, "-h takes the recipients from the header only; give "
			 "-H for both");

	/* who we are, before any change of uid */
	pw = getpwuid(getuid());
	snprintf(login, sizeof login, "%s", pw ? pw->pw_name : "nobody");

	root = root_dir(0);
	drop_root(root);
	if (paths_setup_control(root) == -1)
		nomem();
	config();
	identity(login);

	io_init(&in, 0, inbuf, sizeof inbuf, 0);
	read_header();
	for (i = 0; (size_t)i < h.n; i++)
		if (h.f[i].namelen > 7 &&
		    !strncasecmp(h.raw.s + h.f[i].off, "Resent-", 7))
			resent = 1;
	if (mode & MODE_A)
		args_rcpts(argv, argc);
	fix_header(&fixed, mode & MODE_H);
	dedupe();
	if (!nrcpt)
		die(100, "no recipients%s",
		    mode == MODE_H ? " in the header (To, Cc, Bcc)" : "");

	if (opt_n) {
		size_t off = 0, k;

		io_init(&out, 1, outbuf, sizeof outbuf, 0);
		put("F", 1);
		put(sender.s, sender.len);
		put("\n", 1);
		for (k = 0; k < nrcpt; k++) {
			size_t l = strlen(rcpts.s + off);

			put("T", 1);
			put(rcpts.s + off, l);
			put("\n", 1);
			off += l + 1;
		}
		put("\n", 1);
	} else {
		qq_start();
	}

	if (resent) {
		if (hdr_find(&h, "Resent-Date", 0) < 0) {
			date_field("Resent-Date", now, &field);
			put(field.s, field.len);
		}
		if (hdr_find(&h, "Resent-Message-ID", 0) < 0) {
			msgid_field("Resent-Message-ID", now, &field);
			put(field.s, field.len);
		}
		if (hdr_find(&h, "Resent-From", 0) < 0) {
			from_field("Resent-From", &field);
			put(field.s, field.len);
		}
	}
	put(fixed.s, fixed.len);
	if (hdr_find(&h, "From", 0) < 0) {
		from_field("From", &field);
		put(field.s, field.len);
	}
	if (hdr_find(&h, "Date", 0) < 0) {
		date_field("Date", now, &field);
		put(field.s, field.len);
	}
	if (hdr_find(&h, "Message-ID", 0) < 0) {
		msgid_field("Message-ID", now, &field);
		put(field.s, field.len);
	}
	if (separator || first_body.len)
		put("\n", 1);
	if (first_body.len) {
		int bol = first_body.s[first_body.len - 1] == '\n', cr = 0;

		/* a long first line may have stopped just after a CR */
		if (first_body.s[first_body.len - 1] == '\r') {
			first_body.len--;
			cr = 1;
		}
		put(first_body.s, first_body.len);
		copy_body(bol, cr);
	} else {
		copy_body(1, 0);
	}

	if (opt_n) {
		if (io_flush(&out) == -1 || out_broken)
			die_sys(111, "unable to write the message");
		return 0;
	}
	return qq_finish();
}
