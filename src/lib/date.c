/*
 * date.c: RFC 5322 date formatting in local time with a numeric zone.
 *
 * Names of days and months are spelled out here rather than taken from the
 * locale, which could translate them.
 */
#include "date.h"

#include <stdio.h>

size_t
date_rfc5322(char *buf, size_t size, time_t t)
{
	static const char *day[] = {"Sun", "Mon", "Tue", "Wed",
				    "Thu", "Fri", "Sat"};
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	long off;
	int n;

	if (!localtime_r(&t, &tm))
		gmtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	n = snprintf(buf, size, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
		     day[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
		     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
		     (off < 0 ? -off : off) % 60);
	if (n < 0 || size == 0)
		return 0;
	return (size_t)n < size ? (size_t)n : size - 1;
}
