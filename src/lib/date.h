/*
 * date.h: RFC 5322 dates with a numeric zone, for Received and Date.
 */
#ifndef MOAT_DATE_H
#define MOAT_DATE_H

#include <stddef.h>
#include <time.h>

/* "Wed, 25 Nov 2026 09:19:41 +0000" into buf; returns its length */
size_t date_rfc5322(char *buf, size_t size, time_t t);

#endif
