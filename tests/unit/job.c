/*
 * job.c: unit tests for the delivery-job protocol (src/lib/job.c): round
 * trips, incremental reading, and the limits the readers hold the writers
 * to (job.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "tap.h"

/* rcpts as job_put takes them: NUL-terminated, one after another */
static const char two[] = "a@example.org\0b@example.net";

/* one record from the front of buf, dropped once read (as callers do) */
static int
take_job(str *buf, struct job *j)
{
	size_t pos = 0;
	int r = job_get(buf, &pos, j);

	str_drop(buf, pos);
	return r;
}

static int
take_result(str *buf, struct job_result *r)
{
	size_t pos = 0;
	int g = result_get(buf, &pos, r);

	str_drop(buf, pos);
	return g;
}

static void
test_roundtrip(void)
{
	str buf = STR_INIT;
	struct job j = {0};
	size_t i, whole;

	ok(job_put(&buf, 7, 123456789ULL, "s@example.com", two, 2) == 0,
	   "job_put: two recipients");
	whole = buf.len;
	/* fed one byte at a time: nothing until the last byte */
	{
		str in = STR_INIT;
		int r = 0;

		for (i = 0; i < whole && r == 0; i++) {
			str_catb(&in, buf.s + i, 1);
			r = take_job(&in, &j);
			if (r == 0 && i == whole - 1)
				break;
		}
		is_int(r, 1, "job_get: whole only at the last byte");
		is_int((int)i, (int)whole, "... which was byte %zu", whole);
		is_int((int)in.len, 0, "... and the record is consumed");
		str_free(&in);
	}
	is_int((int)j.n, 7, "job number");
	ok(j.id == 123456789ULL, "message id");
	is_str(j.sender.s, "s@example.com", "sender");
	is_int((int)j.nrcpt, 2, "two recipients");
	is_mem(j.rcpts.s, j.rcpts.len, two, sizeof two, "recipients");
	job_free(&j);
	str_free(&buf);
}

static void
test_limits(void)
{
	str buf = STR_INIT;
	struct job j = {0};
	char *big = malloc(JOB_FIELD_MAX + 2);

	if (!big)
		abort();
	/* the longest sender job_put writes is read back; one more byte is
	 * refused by both */
	memset(big, 's', JOB_FIELD_MAX + 1);
	big[JOB_FIELD_MAX] = 0;
	ok(job_put(&buf, 1, 1, big, two, 1) == 0,
	   "job_put: a %d-byte sender", JOB_FIELD_MAX);
	is_int(take_job(&buf, &j), 1, "job_get reads it back");
	is_int((int)j.sender.len, JOB_FIELD_MAX, "... whole");
	big[JOB_FIELD_MAX] = 's';
	big[JOB_FIELD_MAX + 1] = 0;
	errno = 0;
	ok(job_put(&buf, 1, 1, big, two, 1) == -1 && errno == EINVAL,
	   "job_put refuses %d bytes", JOB_FIELD_MAX + 1);
	buf.len = 0;
	str_catb(&buf, "J1\0M1\0F", 7);
	str_catb(&buf, big, JOB_FIELD_MAX + 1);
	str_catb(&buf, "\0Tr@x\0\0", 7);
	errno = 0;
	ok(take_job(&buf, &j) == -1 && errno == EPROTO,
	   "job_get refuses a %d-byte sender (EPROTO)", JOB_FIELD_MAX + 1);
	buf.len = 0;
	str_catb(&buf, "J1\0M1\0Fs\0T", 10);
	str_catb(&buf, big, JOB_FIELD_MAX + 1);
	str_catb(&buf, "\0\0", 2);
	errno = 0;
	ok(take_job(&buf, &j) == -1 && errno == EPROTO,
	   "job_get refuses a %d-byte recipient (EPROTO)", JOB_FIELD_MAX + 1);

	/* arguments job_put must refuse, leaving out as it was */
	buf.len = 0;
	errno = 0;
	ok(job_put(&buf, 1, 1, "s", "\0", 1) == -1 && errno == EINVAL &&
	       buf.len == 0,
	   "job_put: an empty recipient is EINVAL, nothing written");
	errno = 0;
	ok(job_put(&buf, 0x100000000UL, 1, "s", two, 1) == -1 &&
	       errno == EINVAL && buf.len == 0,
	   "job_put: a job number of 2^32 is EINVAL");
	errno = 0;
	ok(result_put(&buf, 0x100000000UL, "K", "ok", 1) == -1 &&
	       errno == EINVAL && buf.len == 0,
	   "result_put: a job number of 2^32 is EINVAL");
	job_free(&j);
	free(big);
	str_free(&buf);
}

static void
test_results(void)
{
	str buf = STR_INIT;
	struct job_result r = {0};
	char text[JOB_TEXT_MAX + 2];

	ok(result_put(&buf, 9, "KD", "delivered\0no such user\nreally", 2) ==
	       0,
	   "result_put: two results");
	is_int(take_result(&buf, &r), 1, "result_get reads them");
	is_int((int)r.n, 9, "job number");
	is_int((int)r.nres, 2, "two results");
	ok(r.status[0] == 'K' && r.status[1] == 'D', "statuses K and D");
	is_mem(r.texts.s, r.texts.len, "delivered\0no such user really",
	       sizeof "delivered\0no such user really",
	       "texts: a newline written as a space");

	/* result_get holds texts to what job_cattext writes */
	buf.len = 0;
	str_catb(&buf, "J1\0RK\001\0\0", 9);
	errno = 0;
	ok(take_result(&buf, &r) == -1 && errno == EPROTO,
	   "result_get refuses a control byte in a text");
	buf.len = 0;
	str_catb(&buf, "J1\0RKone\ntwo\0\0", 14);
	errno = 0;
	ok(take_result(&buf, &r) == -1 && errno == EPROTO,
	   "result_get refuses a newline in a text");
	memset(text, 'x', sizeof text);
	buf.len = 0;
	str_catb(&buf, "J1\0RK", 5);
	str_catb(&buf, text, JOB_TEXT_MAX);
	str_catb(&buf, "\0\0", 2);
	is_int(take_result(&buf, &r), 1, "a %d-byte text is read",
	       JOB_TEXT_MAX);
	buf.len = 0;
	str_catb(&buf, "J1\0RK", 5);
	str_catb(&buf, text, JOB_TEXT_MAX + 1);
	str_catb(&buf, "\0\0", 2);
	errno = 0;
	ok(take_result(&buf, &r) == -1 && errno == EPROTO,
	   "a %d-byte text is refused", JOB_TEXT_MAX + 1);
	result_free(&r);
	str_free(&buf);
}

int
main(void)
{
	test_roundtrip();
	test_limits();
	test_results();
	return done_testing();
}
