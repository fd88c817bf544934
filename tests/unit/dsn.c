/*
 * unit tests for src/lib/dsn.c
 *
 *   dsn                       run the TAP tests
 *   dsn --emit FILE [opts]    write a notification for the original message
 *                             in FILE to stdout (for tests/run/dsn.t):
 *     --cap N                 include the original whole up to N bytes
 *     --headers-only          include only its header section
 *     --envid ID              Original-Envelope-Id
 *     --retry-until T         Will-Retry-Until (seconds since the epoch)
 *     --rcpt ADDR f|d DIAG REMOTE   a recipient ("" for no DIAG or REMOTE);
 *                             without any, a failed and a delayed sample
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsn.h"
#include "tap.h"

#define T0 1700000000 /* Tue, 14 Nov 2023 22:13:20 +0000 */

static const char ORIG[] =
	"Received: from client.example.org by mx.example.com\n"
	"From: Alice <alice@example.org>\n"
	"To: bob@example.net, carol@example.net\n"
	"Subject: lunch\n"
	"Message-ID: <123@example.org>\n"
	"\n"
	"Shall we have lunch on Friday?\n"
	"BODY-MARKER\n";

static int
memfile(const char *s, size_t n)
{
	int fd = memfd_create("dsn-test", 0);
	size_t off = 0;
	ssize_t r;

	if (fd < 0) {
		perror("memfd_create");
		exit(2);
	}
	while (off < n) {
		r = write(fd, s + off, n - off);
		if (r <= 0) {
			perror("write");
			exit(2);
		}
		off += (size_t)r;
	}
	return fd;
}

static const struct dsn_rcpt sample_rcpts[] = {
	{"bob@example.net", DSN_FAILED, NULL,
	 "550 5.1.1 <bob@example.net>: Recipient address rejected",
	 "mx.example.net"},
	{"carol@example.net", DSN_DELAYED, NULL,
	 "Connected to 192.0.2.7 but connection died. (#4.4.2)", NULL},
};

static struct dsn
sample(const struct dsn_rcpt *r, size_t n)
{
	struct dsn d;

	memset(&d, 0, sizeof d);
	d.reporting_mta = "mx.example.com";
	d.from = "MAILER-DAEMON@mx.example.com";
	d.to = "alice@example.org";
	d.arrival = T0 - 3600;
	d.now = T0;
	d.queue_id = "4711";
	d.rcpts = r;
	d.nrcpt = n;
	d.cap = 100000;
	return d;
}

/* the boundary in the top-level Content-Type, into b */
static int
get_boundary(const str *o, char *b, size_t size)
{
	const char *p, *q, *end = o->s + o->len;

	p = memmem(o->s, o->len, "boundary=\"", 10);
	if (!p)
		return 0;
	p += 10;
	q = memchr(p, '"', (size_t)(end - p));
	if (!q || (size_t)(q - p) >= size || q == p)
		return 0;
	memcpy(b, p, (size_t)(q - p));
	b[q - p] = 0;
	return 1;
}

/* lines "--b" (parts) and "--b--" (end) anywhere in o */
static void
count_delims(const str *o, const char *b, int *parts, int *ends)
{
	size_t i = 0, j, bl = strlen(b);

	*parts = *ends = 0;
	while (i < o->len) {
		for (j = i; j < o->len && o->s[j] != '\n'; j++)
			;
		if (j - i == bl + 2 && !memcmp(o->s + i, "--", 2) &&
		    !memcmp(o->s + i + 2, b, bl))
			++*parts;
		if (j - i == bl + 4 && !memcmp(o->s + i, "--", 2) &&
		    !memcmp(o->s + i + 2, b, bl) &&
		    !memcmp(o->s + i + 2 + bl, "--", 2))
			++*ends;
		i = j + 1;
	}
}

/* does o contain s? */
static int
has(const str *o, const char *s)
{
	return memmem(o->s, o->len, s, strlen(s)) != NULL;
}

/* is there a line that starts with s? */
static int
line_starts(const str *o, const char *s)
{
	size_t i, n = strlen(s);

	for (i = 0; i + n <= o->len; i++)
		if ((i == 0 || o->s[i - 1] == '\n') && !memcmp(o->s + i, s, n))
			return 1;
	return 0;
}

/*
 * The generated text (all of o but the included original, which starts at
 * the first occurrence of orig after the third part's header): printable
 * ASCII, lines of at most 998 bytes, ending in a newline.
 */
static int
generated_clean(const str *o, const char *orig, size_t olen)
{
	size_t i, line = 0, skip_from = o->len, skip_to = o->len;
	const char *p;

	if (orig && olen) {
		p = memmem(o->s, o->len, "\nContent-Type: message/rfc822\n", 30);
		if (!p)
			p = memmem(o->s, o->len,
				   "\nContent-Type: text/rfc822-headers\n", 35);
		if (!p)
			return 0;
		p = memmem(p, (size_t)(o->s + o->len - p), orig, olen);
		if (!p)
			return 0;
		skip_from = (size_t)(p - o->s);
		skip_to = skip_from + olen;
	}
	if (!o->len || o->s[o->len - 1] != '\n')
		return 0;
	for (i = 0; i < o->len; i++) {
		unsigned char c = (unsigned char)o->s[i];

		if (i == skip_from) {
			i = skip_to - 1;
			line = 0;
			continue;
		}
		if (c == '\n') {
			line = 0;
			continue;
		}
		if ((c < 32 && c != '\t') || c > 126 || ++line > 998)
			return 0;
	}
	return 1;
}

static void
test_status(void)
{
	static const struct {
		const char *text;
		int perm;
		const char *want;
		int from_text;
	} cases[] = {
		{"Sorry, no mailbox here by that name. (#5.1.1)", 1, "5.1.1", 1},
		{"Sorry, no mailbox here by that name. (#5.1.1)", 0, "4.1.1", 1},
		{"Temporary failure (#4.4.1)", 1, "5.4.1", 1},
		{"550 5.1.1 <bob@example.net>: user unknown", 1, "5.1.1", 1},
		{"550-5.7.1 blocked by policy", 1, "5.7.1", 1},
		{"  5.2.2 mailbox full", 1, "5.2.2", 1},
		{"421 4.7.0 try again later", 0, "4.7.0", 1},
		{"421 4.7.0 try again later", 1, "5.7.0", 1},
		{"Remote host said: 552 5.2.2 over quota", 1, "5.2.2", 1},
		{"Connected to 192.0.2.1 but sender was rejected.\n"
		 "Remote host said: 553 5.1.8 domain does not exist",
		 1, "5.1.8", 1},
		{"4.0.0 generic (#5.1.2)", 1, "5.1.2", 1},
		{"2.0.0 odd", 1, "5.0.0", 1},
		{"5.999.999 wide", 1, "5.999.999", 1},
		{"550 user unknown", 1, "5.0.0", 0},
		{"450 mailbox busy", 0, "4.0.0", 0},
		{"", 1, "5.0.0", 0},
		{"", 0, "4.0.0", 0},
		{"5.1.1.1 too many parts", 1, "5.0.0", 0},
		{"5.1234.1 subject too long", 1, "5.0.0", 0},
		{"5.1.1234 detail too long", 1, "5.0.0", 0},
		{"3.1.1 no such class", 1, "5.0.0", 0},
		{"5..1 empty subject", 1, "5.0.0", 0},
		{"(#5.1.1 unclosed", 1, "5.0.0", 0},
		{"version 5.1.1 of the thing", 1, "5.0.0", 0},
		{"foo550 5.1.1 glued", 1, "5.0.0", 0},
		{"deferred: 451 4.3.0 local error", 0, "4.3.0", 1},
		{"5.1.1", 0, "4.1.1", 1},
		{"5.1.1.", 1, "5.1.1", 1},
	};
	char out[DSN_STATUS_SIZE];
	size_t i;
	int r;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(out, 'x', sizeof out);
		r = dsn_status(cases[i].text, strlen(cases[i].text),
			       cases[i].perm, out);
		ok(r == cases[i].from_text &&
			   memchr(out, 0, sizeof out) &&
			   !strcmp(out, cases[i].want),
		   "dsn_status \"%.30s\" %s -> %s", cases[i].text,
		   cases[i].perm ? "perm" : "temp", cases[i].want);
		if (memchr(out, 0, sizeof out) && strcmp(out, cases[i].want))
			diag("got %s (returned %d)", out, r);
	}
	r = dsn_status(NULL, 0, 1, out);
	ok(r == 0 && !strcmp(out, "5.0.0"), "dsn_status NULL -> 5.0.0");
	r = dsn_status("5.1.1 x", 3, 1, out);
	ok(r == 0 && !strcmp(out, "5.0.0"), "dsn_status reads only len bytes");
	r = dsn_status("(#5.1.1)", 7, 1, out);
	ok(r == 0, "dsn_status: the ')' past len does not count");
}

/* build, with the original s (NULL: msgfd -1) */
static int
build(str *o, const struct dsn *d, const char *s, size_t n)
{
	int fd = s ? memfile(s, n) : -1, r;

	r = dsn_build(o, d, fd);
	if (fd >= 0)
		close(fd);
	return r;
}

static void
test_structure(void)
{
	struct dsn d = sample(sample_rcpts, 1);
	str o = STR_INIT;
	char b[80], want[300];
	int parts, ends, r;
	const char *tail;

	r = build(&o, &d, ORIG, sizeof ORIG - 1);
	if (!is_int(r, 0, "dsn_build: a bounce"))
		diag("errno %d", errno);
	ok(get_boundary(&o, b, sizeof b), "a boundary");
	ok(strlen(b) <= 70, "boundary at most 70 bytes");
	ok(!strncmp(o.s,
		    "From: \"Mail Delivery System\" <MAILER-DAEMON@mx.example.com>"
		    "\nTo: <alice@example.org>\n"
		    "Subject: Undelivered Mail Returned to Sender\nDate: ",
		    120),
	   "From, To, Subject, Date first");
	ok(has(&o, "\nMessage-ID: <1700000000.4711.bounce@mx.example.com>\n"),
	   "Message-ID time.queueid.bounce@me");
	ok(has(&o, "\nAuto-Submitted: auto-replied\n"), "Auto-Submitted");
	ok(has(&o, "\nMIME-Version: 1.0\n"), "MIME-Version");
	ok(has(&o, "\nContent-Type: multipart/report; "
		   "report-type=delivery-status;\n\tboundary=\""),
	   "multipart/report, delivery-status");
	count_delims(&o, b, &parts, &ends);
	ok(parts == 3 && ends == 1, "three parts and the end (%d, %d)", parts,
	   ends);
	ok(has(&o, "\nContent-Type: text/plain; charset=us-ascii\n\n"
		   "This is the mail delivery system at mx.example.com.\n"),
	   "part 1: text/plain");
	ok(has(&o, "\n<bob@example.net>:\n    550 5.1.1 <bob@example.net>: "
		   "Recipient address rejected\n"),
	   "part 1: the recipient and the diagnostic");
	ok(has(&o, "\nContent-Type: message/delivery-status\n\n"
		   "Reporting-MTA: dns; mx.example.com\nArrival-Date: "),
	   "part 2: message/delivery-status, Reporting-MTA first");
	ok(has(&o, "\nX-Moat-Queue-ID: 4711\n\nFinal-Recipient: rfc822; "
		   "bob@example.net\nAction: failed\nStatus: 5.1.1\n"
		   "Remote-MTA: dns; mx.example.net\n"
		   "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: "
		   "Recipient address rejected\nLast-Attempt-Date: "),
	   "part 2: the recipient block");
	ok(!has(&o, "Will-Retry-Until"), "no Will-Retry-Until for a failure");
	ok(!has(&o, "Original-Envelope-Id"), "no Original-Envelope-Id");
	ok(has(&o, "\nContent-Type: message/rfc822\n\nReceived: from client"),
	   "part 3: message/rfc822");
	snprintf(want, sizeof want, "BODY-MARKER\n\n--%s--\n", b);
	tail = o.s + o.len - strlen(want);
	ok(o.len > strlen(want) && !memcmp(tail, want, strlen(want)),
	   "the original whole, then the end");
	ok(has(&o, ORIG), "the original byte for byte");
	ok(!has(&o, "Content-Transfer-Encoding"), "7bit: no encoding named");
	ok(generated_clean(&o, ORIG, sizeof ORIG - 1),
	   "generated lines: printable ASCII, <= 998 bytes");
	str_free(&o);
}

static void
test_delayed(void)
{
	struct dsn d = sample(sample_rcpts + 1, 1);
	struct dsn_rcpt mixed[2];
	str o = STR_INIT;

	d.retry_until = T0 + 7 * 86400;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "a delay warning");
	ok(has(&o, "\nSubject: Delayed Mail (still being retried)\n"),
	   "Subject: delayed");
	ok(has(&o, ".4711.delay@mx.example.com>\n"), "Message-ID .delay@");
	ok(has(&o, "\nFinal-Recipient: rfc822; carol@example.net\n"
		   "Action: delayed\nStatus: 4.4.2\n"
		   "Diagnostic-Code: x-moat; Connected to 192.0.2.7 but "
		   "connection died. (#4.4.2)\nLast-Attempt-Date: "),
	   "delayed block: 4.4.2, x-moat diagnostic");
	ok(has(&o, "\nWill-Retry-Until: "), "Will-Retry-Until");
	ok(has(&o, "still trying"), "the text says it is still trying");
	ok(!has(&o, "permanent"), "... and not that it failed");
	str_free(&o);

	memcpy(mixed, sample_rcpts, sizeof mixed);
	d = sample(mixed, 2);
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "failed and delayed");
	ok(has(&o, "\nSubject: Undelivered Mail Returned to Sender\n"),
	   "mixed: Subject undelivered");
	ok(has(&o, "Action: failed\n") && has(&o, "Action: delayed\n"),
	   "mixed: both actions");
	ok(!has(&o, "Will-Retry-Until"), "no Will-Retry-Until without a time");
	str_free(&o);
}

static void
test_original(void)
{
	struct dsn d = sample(sample_rcpts, 1);
	str o = STR_INIT;
	char b[80];
	int parts, ends, fd;
	static const char noeol[] = "Subject: x\n\nno newline at the end";
	static const char hdronly[] = "Subject: only a header\nX-A: 1\n";
	static const char eight[] = "Subject: caf\xc3\xa9\n\n\xc3\xa9t\xc3\xa9\n";
	off_t pos;

	/* too big: the header section only */
	d.cap = sizeof ORIG - 2;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "over the cap");
	ok(has(&o, "\nContent-Type: text/rfc822-headers\n\nReceived: "),
	   "over the cap: text/rfc822-headers");
	ok(has(&o, "Message-ID: <123@example.org>\n\n--"),
	   "... the header section, then the boundary");
	ok(!has(&o, "BODY-MARKER") && !has(&o, "Shall we"), "... no body");
	ok(has(&o, "the header of your message follow"), "... and says so");
	d.cap = sizeof ORIG - 1;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "exactly the cap");
	ok(has(&o, "BODY-MARKER") && has(&o, "message/rfc822"),
	   "exactly the cap: whole");
	d.cap = 0;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "cap 0");
	ok(has(&o, "text/rfc822-headers") && !has(&o, "BODY-MARKER"),
	   "cap 0: the header section");
	d.cap = 100000;
	d.headers_only = 1;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "headers_only");
	ok(has(&o, "text/rfc822-headers") && !has(&o, "BODY-MARKER"),
	   "headers_only: the header section");
	d.headers_only = 0;

	/* no original */
	is_int(build(&o, &d, NULL, 0), 0, "msgfd -1");
	ok(get_boundary(&o, b, sizeof b), "msgfd -1: a boundary");
	count_delims(&o, b, &parts, &ends);
	ok(parts == 2 && ends == 1 && !has(&o, "rfc822-headers") &&
		   !has(&o, "message/rfc822"),
	   "msgfd -1: two parts");
	is_int(build(&o, &d, "", 0), 0, "an empty original");
	ok(!has(&o, "message/rfc822"), "empty original: left out");
	is_int(build(&o, &d, "\nbody only\n", 11), 0, "no header section");
	ok(has(&o, "message/rfc822\n\n\nbody only\n\n--"),
	   "no header section, under the cap: whole");

	is_int(build(&o, &d, noeol, sizeof noeol - 1), 0, "no final newline");
	ok(get_boundary(&o, b, sizeof b), "no final newline: a boundary");
	{
		char want[200];

		snprintf(want, sizeof want, "no newline at the end\n--%s--\n",
			 b);
		ok(o.len > strlen(want) &&
			   !memcmp(o.s + o.len - strlen(want), want,
				   strlen(want)),
		   "no final newline: the delimiter ends the line");
	}
	d.cap = 0;
	is_int(build(&o, &d, hdronly, sizeof hdronly - 1), 0,
	       "header only, over the cap");
	ok(has(&o, "text/rfc822-headers\n\nSubject: only a header\nX-A: 1\n\n--"),
	   "header only: all of it");
	d.cap = 100000;

	is_int(build(&o, &d, eight, sizeof eight - 1), 0, "8-bit original");
	ok(has(&o, "Content-Type: message/rfc822\n"
		   "Content-Transfer-Encoding: 8bit\n\n"),
	   "8-bit: the part says 8bit");
	ok(has(&o, "\"\nContent-Transfer-Encoding: 8bit\n\nThis is a MIME"),
	   "8-bit: the message says 8bit");
	ok(generated_clean(&o, eight, sizeof eight - 1),
	   "8-bit: the generated parts are ASCII");

	/* the offset of msgfd is left alone */
	fd = memfile(ORIG, sizeof ORIG - 1);
	lseek(fd, 7, SEEK_SET);
	is_int(dsn_build(&o, &d, fd), 0, "pread from 0");
	pos = lseek(fd, 0, SEEK_CUR);
	is_int(pos, 7, "... offset unchanged");
	ok(has(&o, ORIG), "... all of it");
	close(fd);

	/* a read error */
	{
		int p[2];

		if (pipe(p)) {
			perror("pipe");
			exit(2);
		}
		errno = 0;
		is_int(dsn_build(&o, &d, p[0]), -1, "unreadable msgfd fails");
		is_int(errno, ESPIPE, "... ESPIPE");
		is_int(o.len, 0, "... out empty");
		close(p[0]);
		close(p[1]);
	}
	str_free(&o);
}

static void
test_hostile(void)
{
	struct dsn_rcpt r = {"bob@example.net", DSN_FAILED, NULL, NULL, NULL};
	struct dsn d = sample(&r, 1);
	str o = STR_INIT, o2 = STR_INIT;
	char b[80], b2[80], b3[80], *big, *orig;
	int parts, ends;
	size_t i, n;

	r.diag = "550 5.1.1 no\r\nX-Injected: yes\r\n\r\n--x\nReporting-MTA: "
		 "dns; evil\n\x01\x7f\xff";
	r.remote_mta = "mx\r\nX-Injected: yes";
	r.addr = "bob@example.net\nX-Injected: yes";
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "hostile diagnostic");
	ok(!line_starts(&o, "X-Injected"), "no injected field");
	ok(!line_starts(&o, "Reporting-MTA: dns; evil"), "no injected report");
	ok(has(&o, "Diagnostic-Code: smtp; 550 5.1.1 no X-Injected: yes --x "
		   "Reporting-MTA: dns; evil ?\n"),
	   "the diagnostic on one line, controls gone, 8-bit as ?");
	ok(has(&o, "Remote-MTA: dns; mx X-Injected: yes\n"),
	   "Remote-MTA on one line");
	ok(generated_clean(&o, ORIG, sizeof ORIG - 1), "clean lines");

	/* a very long diagnostic */
	big = malloc(5001);
	if (!big)
		exit(2);
	for (i = 0; i < 5000; i++)
		big[i] = (char)(i % 7 ? 'a' + i % 26 : ' ');
	big[5000] = 0;
	r.diag = big;
	r.addr = big;
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "long diagnostic");
	ok(generated_clean(&o, ORIG, sizeof ORIG - 1),
	   "long diagnostic: no line over 998");
	ok(has(&o, "...\nLast-Attempt-Date"), "cut, ending in ...");
	free(big);
	r.addr = "bob@example.net";
	r.diag = "550 5.1.1 no";
	r.remote_mta = NULL;

	/* an original that holds the boundary the DSN would use */
	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "plain");
	get_boundary(&o, b, sizeof b);
	n = sizeof ORIG - 1 + 2 * strlen(b) + 100;
	orig = malloc(n);
	if (!orig)
		exit(2);
	snprintf(orig, n, "%s--%s\n", ORIG, b);
	is_int(build(&o2, &d, orig, strlen(orig)), 0, "boundary in original");
	ok(get_boundary(&o2, b2, sizeof b2) && strcmp(b, b2),
	   "another boundary (%s)", b2);
	count_delims(&o2, b2, &parts, &ends);
	ok(parts == 3 && ends == 1, "... three parts, one end");
	snprintf(orig, n, "%s--%s\n--%s--\n", ORIG, b, b2);
	is_int(build(&o2, &d, orig, strlen(orig)), 0, "two boundaries in it");
	ok(get_boundary(&o2, b3, sizeof b3) && strcmp(b3, b) && strcmp(b3, b2),
	   "a third boundary (%s)", b3);
	count_delims(&o2, b3, &parts, &ends);
	ok(parts == 3 && ends == 1, "... three parts, one end");
	free(orig);

	/* and a diagnostic that holds it */
	{
		char diag[200];

		snprintf(diag, sizeof diag, "550 x --%s y", b);
		r.diag = diag;
		is_int(build(&o2, &d, ORIG, sizeof ORIG - 1), 0,
		       "boundary in the diagnostic");
		ok(get_boundary(&o2, b2, sizeof b2) && strcmp(b, b2),
		   "... another boundary");
	}
	str_free(&o);
	str_free(&o2);
}

static void
test_fields(void)
{
	struct dsn_rcpt r = {"bob@example.net", DSN_FAILED, "5.2.2",
			     "over quota (#5.1.1)", NULL};
	struct dsn d = sample(&r, 1);
	str o = STR_INIT;

	is_int(build(&o, &d, ORIG, sizeof ORIG - 1), 0, "status given");
	ok(has(&o, "\nStatus: 5.2.2\n"), "the given status wins");
	ok(has(&o, "\nDiagnostic-Code: x-moat; over quota (#5.1.1)\n"),
	   "non-SMTP text: x-moat");
	r.status = "junk";
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(has(&o, "\nStatus: 5.1.1\n"), "invalid status: from the diagnostic");
	r.status = "4.2.2";
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(has(&o, "\nStatus: 5.2.2\n"), "given 4.x.x for a failure: 5.x.x");
	r.status = NULL;
	r.diag = NULL;
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(has(&o, "\nStatus: 5.0.0\n") && !has(&o, "Diagnostic-Code"),
	   "no diagnostic: 5.0.0, no Diagnostic-Code");
	r.diag = "   \r\n ";
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(!has(&o, "Diagnostic-Code"), "blank diagnostic: none");

	d.original_envid = "QQ314159";
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(has(&o, "\n\nOriginal-Envelope-Id: QQ314159\n"
		   "Reporting-MTA: dns; mx.example.com\n"),
	   "Original-Envelope-Id first");
	d.original_envid = NULL;
	d.arrival = 0;
	d.queue_id = NULL;
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(!has(&o, "Arrival-Date") && !has(&o, "X-Moat-Queue-ID"),
	   "no arrival, no queue id: fields left out");
	ok(has(&o, "\nMessage-ID: <1700000000.bounce@mx.example.com>\n"),
	   "Message-ID without a queue id");
	d.reporting_mta = "<>";
	build(&o, &d, ORIG, sizeof ORIG - 1);
	ok(has(&o, "\nMessage-ID: <1700000000.bounce@localhost>\n"),
	   "Message-ID with an unusable host");
	str_free(&o);
}

static void
test_errors(void)
{
	struct dsn_rcpt r = sample_rcpts[0];
	struct dsn d = sample(&r, 1);
	str o = STR_INIT;

	str_copys(&o, "old");
	d.nrcpt = 0;
	errno = 0;
	ok(dsn_build(&o, &d, -1) == -1 && errno == EINVAL && o.len == 0,
	   "no recipients: EINVAL, out empty");
	d.nrcpt = 1;
	r.action = 'x';
	errno = 0;
	ok(dsn_build(&o, &d, -1) == -1 && errno == EINVAL,
	   "unknown action: EINVAL");
	r.action = DSN_FAILED;
	r.addr = NULL;
	errno = 0;
	ok(dsn_build(&o, &d, -1) == -1 && errno == EINVAL, "no address: EINVAL");
	r.addr = "bob@example.net";
	d.to = NULL;
	errno = 0;
	ok(dsn_build(&o, &d, -1) == -1 && errno == EINVAL, "no to: EINVAL");
	d.to = "alice@example.org";
	ok(dsn_build(&o, &d, -1) == 0 && o.len > 0, "then it works");
	str_free(&o);
}

static int
emit(int argc, char **argv)
{
	struct dsn_rcpt r[64];
	struct dsn d;
	str o = STR_INIT;
	size_t n = 0;
	int i, fd;

	d = sample(sample_rcpts, 2);
	d.now = time(NULL);
	d.arrival = d.now - 3600;
	for (i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--cap") && i + 1 < argc)
			d.cap = strtoull(argv[++i], 0, 10);
		else if (!strcmp(argv[i], "--headers-only"))
			d.headers_only = 1;
		else if (!strcmp(argv[i], "--envid") && i + 1 < argc)
			d.original_envid = argv[++i];
		else if (!strcmp(argv[i], "--retry-until") && i + 1 < argc)
			d.retry_until = (time_t)strtoll(argv[++i], 0, 10);
		else if (!strcmp(argv[i], "--rcpt") && i + 4 < argc &&
			 n < sizeof r / sizeof r[0]) {
			r[n].addr = argv[i + 1];
			r[n].action = argv[i + 2][0];
			r[n].status = NULL;
			r[n].diag = *argv[i + 3] ? argv[i + 3] : NULL;
			r[n].remote_mta = *argv[i + 4] ? argv[i + 4] : NULL;
			n++;
			i += 4;
		} else {
			fprintf(stderr, "dsn --emit: bad argument %s\n", argv[i]);
			return 2;
		}
	}
	if (n) {
		d.rcpts = r;
		d.nrcpt = n;
	}
	fd = open(argv[2], O_RDONLY);
	if (fd < 0) {
		perror(argv[2]);
		return 2;
	}
	if (dsn_build(&o, &d, fd)) {
		perror("dsn_build");
		return 1;
	}
	close(fd);
	if (fwrite(o.s, 1, o.len, stdout) != o.len || fflush(stdout))
		return 1;
	str_free(&o);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "--emit"))
		return emit(argc, argv);
	setenv("TZ", "UTC", 1);
	test_status();
	test_structure();
	test_delayed();
	test_original();
	test_hostile();
	test_fields();
	test_errors();
	return done_testing();
}
