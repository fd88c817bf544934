/*
 * dsn.c: fuzz target for dsn_build() and dsn_status().
 *
 * Input: one flag byte (bit 0 headers_only, bit 1 the first recipient is
 * delayed, bit 2 a second recipient, bit 3 no original), two bytes of cap
 * (big-endian), then the diagnostic text up to the first NUL, then the
 * original message (written to a memfd).  The diagnostic also serves as the
 * second recipient's address, the remote host and the envelope id.
 *
 * Whatever the input: dsn_build succeeds; the boundary occurs exactly where
 * it delimits the parts; every generated line is printable ASCII of at most
 * 998 bytes; the top-level header and the delivery-status blocks hold only
 * the fields dsn.c writes; the original comes back whole (message/rfc822) or
 * as a prefix (text/rfc822-headers).  dsn_status gives a well-formed code
 * whose class agrees with the permanence asked for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsn.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("fuzz-dsn", 0);
	if (memfd < 0)
		abort();
	return 0;
}

static void
check_status(const uint8_t *data, size_t size, int perm)
{
	char out[DSN_STATUS_SIZE];
	size_t i, n, dots = 0, run = 0;
	int r;

	memset(out, 'x', sizeof out);
	r = dsn_status((const char *)data, size, perm, out);
	if (r != 0 && r != 1)
		abort();
	n = strnlen(out, sizeof out);
	if (n == sizeof out || n < 5 || n > 9 || out[0] != (perm ? '5' : '4') ||
	    out[1] != '.')
		abort();
	for (i = 1; i < n; i++) {
		if (out[i] == '.') {
			if (i > 1 && (run < 1 || run > 3))
				abort();
			dots++;
			run = 0;
		} else if (out[i] >= '0' && out[i] <= '9') {
			run++;
		} else {
			abort();
		}
	}
	if (dots != 2 || run < 1 || run > 3)
		abort();
	if (!r && strcmp(out, perm ? "5.0.0" : "4.0.0"))
		abort();
}

static const char *
find(const char *s, size_t n, const char *pat)
{
	return memmem(s, n, pat, strlen(pat));
}

static size_t
count(const char *s, size_t n, const char *pat, size_t plen)
{
	const char *p, *end = s + n;
	size_t c = 0;

	while ((p = memmem(s, (size_t)(end - s), pat, plen))) {
		c++;
		s = p + 1;
	}
	return c;
}

/* printable lines of at most 998 bytes, each starting with one of names
 * (NULL: any) or a tab, or empty when blank_ok */
static void
check_lines(const char *s, size_t n, const char *const *names, int blank_ok)
{
	size_t i = 0, j, k;

	while (i < n) {
		for (j = i; j < n && s[j] != '\n'; j++) {
			unsigned char c = (unsigned char)s[j];

			if ((c < 32 && c != '\t') || c > 126)
				abort();
		}
		if (j - i > 998)
			abort();
		if (j == i && !blank_ok)
			abort();
		if (j > i && names && s[i] != '\t') {
			for (k = 0; names[k]; k++)
				if (j - i >= strlen(names[k]) &&
				    !memcmp(s + i, names[k], strlen(names[k])))
					break;
			if (!names[k])
				abort();
		}
		i = j + 1;
	}
}

static const char *const top_names[] = {
	"From: ", "To: ", "Subject: ", "Date: ", "Message-ID: ",
	"Auto-Submitted: ", "MIME-Version: ", "Content-Type: ",
	"Content-Transfer-Encoding: ", NULL};
static const char *const report_names[] = {
	"Original-Envelope-Id: ", "Reporting-MTA: dns; ", "Arrival-Date: ",
	"X-Moat-Queue-ID: ", "Final-Recipient: rfc822; ", "Action: ",
	"Status: ", "Remote-MTA: dns; ", "Diagnostic-Code: ",
	"Last-Attempt-Date: ", "Will-Retry-Until: ", NULL};

static const char rhead[] = "\nContent-Description: Delivery report\n"
			    "Content-Type: message/delivery-status\n\n";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static str out;
	struct dsn_rcpt r[2];
	struct dsn d;
	char diag[4096], bd[128];
	const char *orig, *p, *q, *o, *end;
	size_t dlen, olen, bl, nparts;
	unsigned flags;

	if (size < 3)
		return 0;
	flags = data[0];
	check_status(data + 3, size - 3, flags & 2 ? 0 : 1);
	check_status(data, size, 1);

	p = memchr(data + 3, 0, size - 3);
	dlen = p ? (size_t)(p - (const char *)data) - 3 : size - 3;
	if (dlen >= sizeof diag)
		dlen = sizeof diag - 1;
	memcpy(diag, data + 3, dlen);
	diag[dlen] = 0;
	orig = p ? p + 1 : "";
	olen = p ? size - (size_t)(p + 1 - (const char *)data) : 0;
	if (ftruncate(memfd, 0) ||
	    (olen && pwrite(memfd, orig, olen, 0) != (ssize_t)olen))
		abort();

	memset(r, 0, sizeof r);
	r[0].addr = "bob@example.net";
	r[0].action = flags & 2 ? DSN_DELAYED : DSN_FAILED;
	r[0].diag = diag;
	r[0].remote_mta = diag;
	r[1].addr = diag;
	r[1].action = DSN_FAILED;
	r[1].status = diag;
	memset(&d, 0, sizeof d);
	d.reporting_mta = "mx.example.com";
	d.from = "MAILER-DAEMON@mx.example.com";
	d.to = "alice@example.org";
	d.original_envid = diag;
	d.arrival = 1700000000;
	d.now = 1700003600;
	d.retry_until = 1700600000;
	d.queue_id = "4711";
	d.rcpts = r;
	d.nrcpt = flags & 4 ? 2 : 1;
	d.cap = (size_t)data[1] << 8 | data[2];
	d.headers_only = flags & 1;
	if (dsn_build(&out, &d, flags & 8 ? -1 : memfd))
		abort();

	o = out.s;
	end = out.s + out.len;
	/* the boundary, and where it occurs */
	p = find(o, out.len, "\n\tboundary=\"");
	if (!p)
		abort();
	p += 12;
	q = memchr(p, '"', (size_t)(end - p));
	if (!q || q == p || (size_t)(q - p) > 70 || (size_t)(q - p) >= sizeof bd)
		abort();
	bl = (size_t)(q - p);
	memcpy(bd + 2, p, bl);
	bd[0] = bd[1] = '-';
	bl += 2; /* "--boundary" */
	nparts = count(o, out.len, bd + 2, bl - 2) - 2; /* header, end */
	if (nparts != 2 && nparts != 3)
		abort();
	if (count(o, out.len, bd, bl) != nparts + 1)
		abort();
	if (out.len < bl + 3 || memcmp(end - bl - 3, bd, bl) ||
	    memcmp(end - 3, "--\n", 3) || *(end - bl - 4) != '\n')
		abort();

	/* the top-level header */
	p = find(o, out.len, "\n\n");
	if (!p)
		abort();
	check_lines(o, (size_t)(p - o) + 1, top_names, 0);
	/* part 1 (preamble included): from the header to the second
	 * delimiter, which the boundary's uniqueness makes the real one */
	q = memmem(p, (size_t)(end - p), bd, bl);
	if (!q)
		abort();
	q = memmem(q + 1, (size_t)(end - q - 1), bd, bl);
	if (!q || q[-1] != '\n')
		abort();
	check_lines(p, (size_t)(q - p), NULL, 1);
	/* part 2 */
	q += bl;
	if ((size_t)(end - q) < sizeof rhead ||
	    memcmp(q, rhead, sizeof rhead - 1))
		abort();
	q += sizeof rhead - 1;
	p = memmem(q, (size_t)(end - q), bd, bl);
	if (!p || p[-1] != '\n')
		abort();
	check_lines(q, (size_t)(p - q), report_names, 1);
	if (nparts == 2) {
		if (!(flags & 8) && olen && !d.headers_only && olen <= d.cap)
			abort();
		check_lines(p, (size_t)(end - p), NULL, 1);
		return 0;
	}
	if (flags & 8)
		abort();
	/* part 3: its header, then the original or a prefix of it */
	q = find(p, (size_t)(end - p), "\n\n");
	if (!q)
		abort();
	check_lines(p, (size_t)(q - p) + 1, NULL, 0);
	q += 2;
	dlen = (size_t)(end - q) - bl - 4;
	if (find(p, (size_t)(q - p), "message/rfc822")) {
		if (d.headers_only || olen > d.cap || dlen != olen ||
		    memcmp(q, orig, olen))
			abort();
	} else {
		if (!find(p, (size_t)(q - p), "text/rfc822-headers") ||
		    !dlen || dlen > olen || dlen > DSN_HEAD_MAX ||
		    memcmp(q, orig, dlen))
			abort();
	}
	return 0;
}
