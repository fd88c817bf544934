/* unit tests for src/lib/lasterr.c */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lasterr.h"
#include "tap.h"

static char dir[4096], file[4200], tmp[4200];

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void
put(const char *rcpt, char kind, time_t when, const char *text)
{
	str r = STR_INIT;

	lasterr_rec(&r, rcpt, kind, when, text);
	if (lasterr_write(file, tmp, &r) == -1)
		diag("lasterr_write: %s", strerror(errno));
	str_free(&r);
}

static void
test_rec(void)
{
	str r = STR_INIT;
	char big[LASTERR_TEXT + 100];

	is_int(lasterr_rec(&r, "a@b", 'Z', 1700000000, "later"), 0,
	       "lasterr_rec");
	is_mem(r.s, r.len, "Ta@b\0Z1700000000 later\0", 23, "... format");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	r.len = 0;
	lasterr_rec(&r, "c@d", 'D', 5, big);
	is_int(r.len, 5 + 3 + LASTERR_TEXT + 1, "text cut at LASTERR_TEXT");
	str_free(&r);
}

static void
test_parse(void)
{
	struct lasterr le = LASTERR_INIT;
	const struct lasterr_ent *e;
	static const char data[] =
	    "Ta@x\0Z10 first\0Tb@x\0D11 gone\0Ta@x\0Z12 second\0"
	    "junk\0Z13 no recipient\0Tc@x\0Zbad time\0Tc@x\0Z14 c ok\0"
	    "Td@x\0Z15 torn";
	size_t i;
	int sorted = 1;

	str_copyb(&le.data, data, sizeof data - 1);
	is_int(lasterr_parse(&le), 0, "lasterr_parse");
	is_int(le.n, 3, "three recipients (torn tail and junk skipped)");
	e = lasterr_find(&le, "a@x");
	ok(e && e->kind == 'Z' && e->when == 12 && !strcmp(e->text, "second"),
	   "the newest entry of a@x wins");
	e = lasterr_find(&le, "b@x");
	ok(e && e->kind == 'D' && e->when == 11 && !strcmp(e->text, "gone"),
	   "b@x: a permanent failure");
	e = lasterr_find(&le, "c@x");
	ok(e && e->when == 14, "c@x: the malformed time is skipped");
	ok(!lasterr_find(&le, "d@x"), "d@x: only in the torn tail: absent");
	ok(!lasterr_find(&le, "zz"), "unknown recipient: absent");
	for (i = 1; i < le.n; i++)
		if (strcmp(le.v[i - 1].rcpt, le.v[i].rcpt) >= 0)
			sorted = 0;
	ok(sorted, "entries sorted by recipient, one each");
	lasterr_free(&le);
}

static void
test_file(void)
{
	struct lasterr le = LASTERR_INIT;
	const struct lasterr_ent *e;
	struct stat st;
	char rc[64], text[300];
	int i, all;
	FILE *f;

	is_int(lasterr_read(file, &le), 0, "reading a missing file is fine");
	is_int(le.n, 0, "... and empty");
	put("a@x", 'Z', 100, "one");
	put("b@x", 'Z', 101, "two");
	put("a@x", 'D', 102, "three");
	is_int(lasterr_read(file, &le), 0, "lasterr_read");
	e = lasterr_find(&le, "a@x");
	ok(e && e->kind == 'D' && !strcmp(e->text, "three"),
	   "appended: newest");
	ok(stat(file, &st) == 0 && (st.st_mode & 0777) == 0600, "mode 0600");

	/* a torn tail: the next append still parses */
	f = fopen(file, "a");
	fputs("Tc@x", f);
	fclose(f);
	put("d@x", 'Z', 103, "after the tear");
	lasterr_read(file, &le);
	e = lasterr_find(&le, "d@x");
	ok(e && !strcmp(e->text, "after the tear"),
	   "an append after a torn tail parses");
	ok(lasterr_find(&le, "a@x") != 0, "... older entries stay");

	/* bounded: many distinct recipients, then repeats */
	for (i = 0; i < 3000; i++) {
		snprintf(rc, sizeof rc, "user%d@example.org", i);
		memset(text, 'e', sizeof text - 1);
		text[sizeof text - 1] = 0;
		put(rc, 'Z', 1000 + i, text);
	}
	ok(stat(file, &st) == 0 && st.st_size <= LASTERR_MAX,
	   "the file stays within LASTERR_MAX (%lld)", (long long)st.st_size);
	lasterr_read(file, &le);
	ok(lasterr_find(&le, "user2999@example.org") != 0,
	   "the newest recipient is kept");
	ok(!lasterr_find(&le, "user0@example.org"), "the oldest are forgotten");
	ok(access(tmp, F_OK) == -1, "no temporary file left");
	for (i = 0; i < 5000; i++)
		put("same@x", 'Z', 5000 + i, "again and again and again");
	lasterr_read(file, &le);
	e = lasterr_find(&le, "same@x");
	ok(e && e->when == 5000 + 4999, "repeats: the newest is kept");
	all = stat(file, &st) == 0 && st.st_size <= LASTERR_MAX;
	ok(all, "... and the file stays bounded");
	lasterr_free(&le);
}

int
main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(dir, sizeof dir, "%s/moat-unit-lasterr.XXXXXX",
	         t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	snprintf(file, sizeof file, "%s/42", dir);
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	test_rec();
	test_parse();
	test_file();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return done_testing();
}
