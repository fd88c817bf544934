/*
 * smtpreply.c: fuzz target for the SMTP reply parser, the way moat-remote
 * uses it: replies are cut off the front of the received bytes one after
 * another.  Checks: progress, the used count within the input, a code in
 * 200..599, the cleaned text printable, bounded and NUL-terminated, the
 * same answer for the reply's own bytes alone, and no reply accepted past
 * the size caps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpreply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_text(const str *t)
{
	size_t i;

	if (t->len > SMTP_REPLY_TEXT_MAX || t->s[t->len] != 0)
		abort();
	for (i = 0; i < t->len; i++)
		if (t->s[i] < 32 || t->s[i] > 126)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply r = SMTP_REPLY_INIT, again = SMTP_REPLY_INIT;
	const char *buf = (const char *)data;
	size_t pos = 0, used, used2, i, off;
	const char *arg;

	while (pos < size) {
		int x = smtp_reply_parse(buf + pos, size - pos, &used, &r);

		if (x == 0 || x == -1)
			break;
		if (x != 1 || used == 0 || used > size - pos ||
		    used > SMTP_REPLY_MAX)
			abort();
		if (r.code < 200 || r.code > 599 || r.nline == 0)
			abort();
		if (buf[pos + used - 1] != '\n')
			abort();
		check_text(&r.text);
		for (i = 0, off = 0; i < r.nline; i++) {
			size_t l = strlen(r.lines.s + off), k;
			for (k = 0; k < l; k++)
				if (r.lines.s[off + k] < 32 ||
				    r.lines.s[off + k] > 126)
					abort();
			off += l + 1;
		}
		if (off != r.lines.len)
			abort();
		/* the reply's bytes alone give the same reply */
		if (smtp_reply_parse(buf + pos, used, &used2, &again) != 1 ||
		    used2 != used || again.code != r.code ||
		    again.text.len != r.text.len ||
		    memcmp(again.text.s, r.text.s, r.text.len))
			abort();
		/* and a strict prefix of them is not a reply */
		if (used > 1 &&
		    smtp_reply_parse(buf + pos, used - 1, &used2, &again) == 1)
			abort();
		if (smtp_reply_ehlo(&r, "SIZE", &arg) &&
		    (arg < r.lines.s || arg > r.lines.s + r.lines.len))
			abort();
		smtp_reply_ehlo(&r, "PIPELINING", 0);
		pos += used;
	}
	return 0;
}
