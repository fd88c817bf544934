/*
 * addr.h: SMTP paths and addresses (RFC 5321 section 4.1.2).
 *
 * addr_path() parses the path after "MAIL FROM:" or "RCPT TO:":
 * "<" [source-route ":"] mailbox ">" or "<>", with a bare mailbox (no angle
 * brackets) accepted as many clients send it.  A source route is dropped.
 * The mailbox is returned in the internal form the queue uses: the local
 * part unquoted (quotes and backslashes removed), "@", the domain as given;
 * an address literal keeps its brackets.  What follows the path (the ESMTP
 * parameters) is left to the caller through *rest.
 */
#ifndef MOAT_ADDR_H
#define MOAT_ADDR_H

#include <stddef.h>

#include "str.h"

/*
 * RFC 5321 (4.5.3.1) asks every receiver to take local parts of 64 bytes;
 * longer ones are real (VERP and SRS senders, list bounce addresses) and
 * qmail and Postfix take them, so a path's local part is bounded only by
 * the path limit.  ADDR_LOCAL_MAX is for addresses made here (moat-inject).
 */
#define ADDR_LOCAL_MAX 64
#define ADDR_DOMAIN_MAX 255
#define ADDR_PATH_MAX 256 /* the mailbox with its brackets */

#define ADDR_OK 0
#define ADDR_SYNTAX -1  /* not a path */
#define ADDR_TOOLONG -2 /* a part is longer than RFC 5321 allows */
#define ADDR_NOMEM -3

#define ADDR_NOAT 1 /* allow a mailbox without @domain ("postmaster") */

/* on ADDR_OK, out holds the address NUL-terminated (empty for "<>") and
 * *rest points just past the path within arg */
int addr_path(const char *arg, size_t len, int flags, str *out, size_t *rest);

/* a domain (sub-domains or an address literal) of n bytes: 1 valid, 0 not */
int addr_domain_ok(const char *d, size_t n);

/* the domain part of an internal address (after the last @), or NULL */
const char *addr_domain(const char *a, size_t len, size_t *dlen);

#endif
