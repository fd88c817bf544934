/*
 * smtpcmd.h: SMTP command lines and ESMTP parameters (RFC 5321 4.1).
 *
 * smtp_cmd() splits one command line (CRLF or LF already removed) into a
 * verb, recognised case-insensitively, and its argument.  A line with a NUL
 * byte, or with no verb, is SMTP_BAD.  smtp_param() walks the
 * "KEY[=VALUE]" parameters after a MAIL or RCPT path.
 */
#ifndef MOAT_SMTPCMD_H
#define MOAT_SMTPCMD_H

#include <stddef.h>

enum smtp_verb {
	SMTP_BAD, /* empty, NUL byte, or not a word */
	SMTP_UNKNOWN,
	SMTP_HELO,
	SMTP_EHLO,
	SMTP_MAIL,
	SMTP_RCPT,
	SMTP_DATA,
	SMTP_RSET,
	SMTP_NOOP,
	SMTP_QUIT,
	SMTP_VRFY,
	SMTP_EXPN,
	SMTP_HELP,
	SMTP_TURN,
	SMTP_SEND,
	SMTP_SOML,
	SMTP_SAML,
	SMTP_STARTTLS,
	SMTP_AUTH,
	SMTP_BDAT,
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* after the verb and its separating spaces */
	size_t arglen;   /* trailing spaces removed */
};

void smtp_cmd(const char *line, size_t len, struct smtp_cmd *out);

/* if arg starts with prefix (any case, e.g. "FROM:"), the offset past it */
int smtp_prefix(const char *arg, size_t len, const char *prefix, size_t *off);

struct smtp_param {
	const char *key;
	size_t keylen;
	const char *val; /* NULL when there is no "=" */
	size_t vallen;
};

/* next parameter from s[*pos..len): 1 found, 0 none left, -1 syntax */
int smtp_param(const char *s, size_t len, size_t *pos, struct smtp_param *);

/* decimal value of at most 20 digits; -1 if not a number or too large */
int smtp_number(const char *s, size_t len, unsigned long long *out);

#endif
