/*
 * smtpcmd.c: SMTP command line and parameter parsing; see smtpcmd.h.
 */
#include "smtpcmd.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{"HELO", SMTP_HELO}, {"EHLO", SMTP_EHLO}, {"MAIL", SMTP_MAIL},
	{"RCPT", SMTP_RCPT}, {"DATA", SMTP_DATA}, {"RSET", SMTP_RSET},
	{"NOOP", SMTP_NOOP}, {"QUIT", SMTP_QUIT}, {"VRFY", SMTP_VRFY},
	{"EXPN", SMTP_EXPN}, {"HELP", SMTP_HELP}, {"TURN", SMTP_TURN},
	{"SEND", SMTP_SEND}, {"SOML", SMTP_SOML}, {"SAML", SMTP_SAML},
	{"STARTTLS", SMTP_STARTTLS}, {"AUTH", SMTP_AUTH},
	{"BDAT", SMTP_BDAT},
};

void
smtp_cmd(const char *line, size_t len, struct smtp_cmd *out)
{
	size_t v = 0, a;
	unsigned i;

	out->verb = SMTP_BAD;
	out->arg = line;
	out->arglen = 0;
	if (memchr(line, 0, len))
		return;
	while (v < len && line[v] != ' ')
		v++;
	if (v == 0)
		return;
	a = v;
	while (a < len && line[a] == ' ')
		a++;
	out->arg = line + a;
	out->arglen = len - a;
	while (out->arglen && (out->arg[out->arglen - 1] == ' ' ||
			       out->arg[out->arglen - 1] == '\t'))
		out->arglen--;
	out->verb = SMTP_UNKNOWN;
	for (i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strlen(verbs[i].name) == v &&
		    !strncasecmp(verbs[i].name, line, v)) {
			out->verb = verbs[i].verb;
			return;
		}
}

int
smtp_prefix(const char *arg, size_t len, const char *prefix, size_t *off)
{
	size_t n = strlen(prefix);

	if (len < n || strncasecmp(arg, prefix, n))
		return 0;
	*off = n;
	return 1;
}

static int
is_keychar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-';
}

int
smtp_param(const char *s, size_t len, size_t *pos, struct smtp_param *p)
{
	size_t i = *pos, k;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len) {
		*pos = i;
		return 0;
	}
	k = i;
	while (i < len && is_keychar(s[i]))
		i++;
	if (i == k)
		return -1;
	p->key = s + k;
	p->keylen = i - k;
	p->val = 0;
	p->vallen = 0;
	if (i < len && s[i] == '=') {
		k = ++i;
		/* esmtp-value: any printable ASCII except '=' and space */
		while (i < len && s[i] > ' ' && s[i] < 127 && s[i] != '=')
			i++;
		if (i == k)
			return -1;
		p->val = s + k;
		p->vallen = i - k;
	}
	if (i < len && s[i] != ' ')
		return -1;
	*pos = i;
	return 1;
}

int
smtp_number(const char *s, size_t len, unsigned long long *out)
{
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	*out = 0;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    __builtin_mul_overflow(*out, 10, out) ||
		    __builtin_add_overflow(*out, (unsigned)(s[i] - '0'), out))
			return -1;
	}
	return 0;
}
