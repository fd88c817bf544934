/*
 * sasl.h: the message of the SASL PLAIN mechanism (RFC 4616), as moat-smtpd
 * receives it after base64 decoding.
 */
#ifndef MOAT_SASL_H
#define MOAT_SASL_H

#include <stddef.h>

#define SASL_PART_MAX 255 /* octets of authzid, authcid or passwd */

/*
 * m[0..n) is [authzid] NUL authcid NUL passwd, and m[n] must be a NUL.
 * 0: *user (*ulen bytes) is the authcid and *pass the password (NUL-terminated,
 * inside m); -1: malformed (a NUL too many or too few, an empty or too long
 * part), or an authzid other than the authcid (acting for someone else is
 * not offered).
 */
int sasl_plain(const char *m, size_t n, const char **user, size_t *ulen,
               const char **pass);

#endif
