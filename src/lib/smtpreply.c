/*
 * smtpreply.c: cutting and cleaning SMTP replies; see smtpreply.h.
 *
 * The parser starts again from the first byte on every call, so it keeps
 * no state between calls; the caller calls it again only when a line end
 * (or enough bytes for an over-long line) has arrived.
 */
#include "smtpreply.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

static char
clean(unsigned char c)
{
	if (c == '\t')
		return ' ';
	if (c < 32 || c > 126)
		return '?';
	return (char)c;
}

/* append the cleaned bytes of s[0..n) to the one-line text, bounded */
static int
cat_text(str *t, const char *s, size_t n, int *full)
{
	size_t room, i;

	if (*full)
		return 0;
	room = SMTP_REPLY_TEXT_MAX - 3 - t->len; /* 3: room for "..." */
	if (n > room) {
		n = room;
		*full = 1;
	}
	if (str_readyplus(t, n + 3) == -1)
		return -1;
	for (i = 0; i < n; i++)
		t->s[t->len++] = clean((unsigned char)s[i]);
	if (*full) {
		memcpy(t->s + t->len, "...", 3);
		t->len += 3;
	}
	return 0;
}

static int
cat_line(str *l, const char *s, size_t n)
{
	size_t i;

	if (str_readyplus(l, n + 1) == -1)
		return -1;
	for (i = 0; i < n; i++)
		l->s[l->len++] = clean((unsigned char)s[i]);
	l->s[l->len++] = 0;
	return 0;
}

static int
proto(void)
{
	errno = EPROTO;
	return -1;
}

int
smtp_reply_parse(const char *buf, size_t len, size_t *used,
                 struct smtp_reply *r)
{
	size_t pos = 0;
	int full = 0;

	r->code = 0;
	r->nline = 0;
	r->text.len = 0;
	r->lines.len = 0;
	for (;;) {
		const char *line = buf + pos;
		size_t rest = len - pos;
		size_t lim =
		    rest < SMTP_REPLY_LINE_MAX ? rest : SMTP_REPLY_LINE_MAX;
		const char *e = lim ? memchr(line, '\n', lim) : 0;
		size_t n, c;
		int code, more;

		if (!e) {
			if (rest >= SMTP_REPLY_LINE_MAX)
				return proto(); /* a line too long */
			if (rest && (line[0] < '2' || line[0] > '5'))
				return proto(); /* need not wait for it */
			return 0;
		}
		n = (size_t)(e - line) + 1;
		if (n > SMTP_REPLY_MAX - pos)
			return proto(); /* the whole reply too long */
		c = n - 1;
		if (c && line[c - 1] == '\r')
			c--;
		if (c < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '9' || line[2] < '0' || line[2] > '9')
			return proto();
		if (c > 3 && line[3] != ' ' && line[3] != '-')
			return proto();
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		       (line[2] - '0');
		if (r->nline && code != r->code)
			return proto(); /* a continuation with another code */
		r->code = code;
		more = c > 3 && line[3] == '-';
		if (r->nline && cat_text(&r->text, " ", 1, &full) == -1)
			return -1;
		if (cat_text(&r->text, line, c, &full) == -1 ||
		    cat_line(&r->lines, c > 3 ? line + 4 : line + c,
		             c > 3 ? c - 4 : 0) == -1)
			return -1;
		r->nline++;
		pos += n;
		if (!more) {
			if (str_0(&r->text) == -1)
				return -1;
			*used = pos;
			return 1;
		}
	}
}

int
smtp_reply_ehlo(const struct smtp_reply *r, const char *kw, const char **arg)
{
	size_t kl = strlen(kw), off = 0, i;

	for (i = 0; i < r->nline; i++) {
		const char *l = r->lines.s + off;
		size_t n = strlen(l);

		off += n + 1;
		if (i == 0)
			continue; /* the greeting line: the server's name */
		if (n >= kl && !strncasecmp(l, kw, kl) &&
		    (l[kl] == 0 || l[kl] == ' ' || l[kl] == '=')) {
			const char *a = l + kl;
			while (*a == ' ' || *a == '=')
				a++;
			if (arg)
				*arg = a;
			return 1;
		}
	}
	return 0;
}

void
smtp_reply_free(struct smtp_reply *r)
{
	str_free(&r->text);
	str_free(&r->lines);
	r->code = 0;
	r->nline = 0;
}
