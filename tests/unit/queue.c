/* unit tests for src/lib/queue.c */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "tap.h"

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static int
is_dir(const char *p, mode_t mode)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	       (st.st_mode & 07777) == mode;
}

static void
test_file(void)
{
	static const struct {
		const char *dir;
		unsigned long long id;
		const char *want;
	} t[] = {
		{"mess", 0, "mess/0/0"},
		{"mess", 1, "mess/1/1"},
		{"mess", 22, "mess/22/22"},
		{"mess", 23, "mess/0/23"},
		{"todo", 24, "todo/1/24"},
		{"intd", 12345, "intd/17/12345"},
		{"info", 4294967296ULL, "info/12/4294967296"},
		{"bounce", ULLONG_MAX, "bounce/5/18446744073709551615"},
		{"", 46, "/0/46"},
	};
	str s = STR_INIT;
	size_t i;
	int good = 1;

	for (i = 0; i < sizeof t / sizeof t[0]; i++) {
		is_int(queue_file(&s, t[i].dir, t[i].id), 0, "queue_file %s %llu",
		       t[i].dir, t[i].id);
		is_str(s.s, t[i].want, "... %s", t[i].want);
		is_int(s.len, strlen(t[i].want), "... len without NUL");
	}
	for (unsigned long long id = 0; id < 2000; id++) {
		char want[64];

		snprintf(want, sizeof want, "mess/%llu/%llu", id % 23, id);
		if (queue_file(&s, "mess", id) || strcmp(s.s, want))
			good = 0;
	}
	ok(good, "queue_file ids 0..1999: mess/(id %% 23)/id");
	str_copys(&s, "old junk that is longer");
	queue_file(&s, "mess", 5);
	is_str(s.s, "mess/5/5", "queue_file replaces what out held");
	str_free(&s);
}

static void
test_create(void)
{
	const char *t = getenv("TMPDIR"), *what = 0;
	char base[4096], q[4200], p[4400];
	const struct queue_dir *d;
	struct stat st;
	int n = 0, good, r;

	ok(QUEUE_SPLIT == 23, "QUEUE_SPLIT is 23");
	for (d = queue_dirs; d->name; d++)
		n++;
	is_int(n, 10, "queue_dirs lists 10 directories");
	{
		static const char *want[] = {"pid", "mess", "intd", "todo", "info",
					     "local", "remote", "bounce", "error",
					     "lock"};
		int all = 1;

		for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
			int found = 0;

			for (d = queue_dirs; d->name; d++)
				if (!strcmp(d->name, want[i]))
					found = 1;
			all &= found;
		}
		ok(all, "... pid mess intd todo info local remote bounce "
		       "error lock");
	}

	snprintf(base, sizeof base, "%s/moat-unit-queue.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(base)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	umask(022);
	snprintf(q, sizeof q, "%s/queue", base);
	r = queue_create(q, (uid_t)-1, (uid_t)-1, (gid_t)-1, &what);
	is_int(r, 0, "queue_create");
	if (r)
		diag("failed at %s: %s", what, strerror(errno));
	ok(is_dir(q, 0750), "queue dir 0750");
	for (d = queue_dirs; d->name; d++) {
		snprintf(p, sizeof p, "%s/%s", q, d->name);
		ok(is_dir(p, d->mode), "%s exists, mode %03o", d->name,
		   (unsigned)d->mode);
		good = 1;
		for (int i = 0; i < QUEUE_SPLIT + 1; i++) {
			snprintf(p, sizeof p, "%s/%s/%d", q, d->name, i);
			if (d->split && i < QUEUE_SPLIT)
				good &= is_dir(p, d->mode);
			else
				good &= stat(p, &st) == -1 && errno == ENOENT;
		}
		ok(good, "%s: %s", d->name,
		   d->split ? "split subdirectories 0..22, no 23"
			    : "not split");
	}
	snprintf(p, sizeof p, "%s/lock/trigger", q);
	ok(stat(p, &st) == 0 && S_ISFIFO(st.st_mode), "lock/trigger is a fifo");
	ok((st.st_mode & 0777) == (0622 & ~022), "... mode 0622 less umask");

	/* again: existing ones are left alone */
	snprintf(p, sizeof p, "%s/mess/7/42", q);
	fclose(fopen(p, "w"));
	is_int(queue_create(q, (uid_t)-1, (uid_t)-1, (gid_t)-1, &what), 0,
	       "queue_create again succeeds");
	ok(stat(p, &st) == 0, "... existing files untouched");

	/* failure: the parent does not exist */
	snprintf(p, sizeof p, "%s/no/such/queue", base);
	what = 0;
	errno = 0;
	is_int(queue_create(p, (uid_t)-1, (uid_t)-1, (gid_t)-1, &what), -1,
	       "queue_create under a missing parent fails");
	is_int(errno, ENOENT, "... ENOENT");
	ok(what && !strcmp(what, p), "... and names the path");

	/* failure partway: a file where a directory should be */
	snprintf(q, sizeof q, "%s/queue2", base);
	mkdir(q, 0750);
	snprintf(p, sizeof p, "%s/todo", q);
	fclose(fopen(p, "w"));
	what = 0;
	r = queue_create(q, (uid_t)-1, (uid_t)-1, (gid_t)-1, &what);
	ok(r == -1 && what && strstr(what, "/todo"),
	   "a file in the way fails and names it (%s)", what ? what : "-");

	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
main(void)
{
	test_file();
	test_create();
	return done_testing();
}
