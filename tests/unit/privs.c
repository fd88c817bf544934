/* unit tests for src/lib/privs.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "privs.h"
#include "queue.h"
#include "tap.h"

static void
test_programs(void)
{
	const struct priv_prog *p;
	int setuid = 0, root = 0;

	for (p = priv_progs; p->name; p++) {
		if (p->mode & (S_ISUID | S_ISGID))
			setuid++;
		if (p->acct == PA_ROOT)
			root++;
	}
	is_int(setuid, 1, "one program is set-ID");
	p = priv_prog_find("moat-queue");
	ok(p && p->mode == 04711 && p->acct == PA_MOATQ,
	   "... moat-queue, setuid moatq, 4711");
	ok(priv_prog_find("moat-lspawn")->acct == PA_ROOT &&
	       priv_prog_find("moat-start")->acct == PA_ROOT,
	   "moat-lspawn and moat-start run as root");
	ok(priv_prog_find("moat-smtpd")->acct == PA_MOATD &&
	       priv_prog_find("moat-send")->acct == PA_MOATS &&
	       priv_prog_find("moat-clean")->acct == PA_MOATQ &&
	       priv_prog_find("moat-rspawn")->acct == PA_MOATR &&
	       priv_prog_find("moat-remote")->acct == PA_MOATR &&
	       priv_prog_find("moat-local")->acct == PA_RECIPIENT,
	   "the others as DESIGN.md says");
	ok(!priv_prog_find("moat-nonesuch"), "unknown programs are not found");
	ok(priv_accounts[PA_MOATQ].in_group &&
	       priv_accounts[PA_MOATS].in_group &&
	       priv_accounts[PA_MOATR].in_group &&
	       !priv_accounts[PA_MOATD].in_group &&
	       !priv_accounts[PA_MOATL].in_group &&
	       !priv_accounts[PA_ALIAS].in_group,
	   "only moatq, moats, moatr share the group");
}

static void
test_names(void)
{
	struct priv_names n;
	str s = STR_INIT;

	ok(priv_names_default(&n, "") == 0 &&
	       !strcmp(n.acct[PA_MOATD], "moatd") &&
	       !strcmp(n.acct[PA_ALIAS], "alias") && !strcmp(n.group, "moat"),
	   "default names");
	ok(priv_names_default(&n, "t1") == 0 &&
	       !strcmp(n.acct[PA_MOATS], "t1moats") &&
	       !strcmp(n.group, "t1moat"),
	   "a prefix");
	errno = 0;
	ok(priv_names_default(&n, "1x") == -1 && errno == EINVAL,
	   "a prefix starting with a digit is refused");
	ok(priv_names_default(&n, "a/b") == -1, "... one with a slash");
	ok(priv_names_default(&n, "Ab") == -1, "... one with upper case");
	ok(priv_names_default(&n, "abcdefghijklmnopqrstuvwxyz012") == -1,
	   "... one making names longer than %d", PRIV_NAME_MAX);
	ok(priv_names_default(&n, "x") == 0 && priv_names_format(&n, &s) == 0 &&
	       s.len && memmem(s.s, s.len, "moatd:xmoatd\n", 13) &&
	       memmem(s.s, s.len, "moat:xmoat\n", 11),
	   "format: default:actual lines");
	str_free(&s);
	is_str(priv_acct_name(&n, PA_ROOT), "root", "root's name");
	is_str(priv_acct_name(&n, PA_MOATR), "xmoatr", "an account's name");
}

static void
put(const char *dir, const char *content)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof p, "%s/accounts", dir);
	f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static void
test_load(void)
{
	char dir[] = "/tmp/moat-unit-privs.XXXXXX";
	char p[4200];
	struct priv_names n;

	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp");
		return;
	}
	ctl_setdir(dir);
	ok(priv_names_load(&n) == 0 && !strcmp(n.acct[PA_MOATQ], "moatq"),
	   "no control/accounts: the defaults");
	put(dir, "# a comment\nmoatq:qq\nmoat:gg\n");
	ok(priv_names_load(&n) == 1 && !strcmp(n.acct[PA_MOATQ], "qq") &&
	       !strcmp(n.group, "gg") && !strcmp(n.acct[PA_MOATD], "moatd"),
	   "control/accounts: named ones replaced, the rest default");
	put(dir, "moatq:root:x\n");
	errno = 0;
	ok(priv_names_load(&n) == -1 && errno == EINVAL,
	   "a bad name is refused");
	put(dir, "nobody:xx\n");
	ok(priv_names_load(&n) == -1, "an unknown role is refused");
	put(dir, "moatq\n");
	ok(priv_names_load(&n) == -1, "a line without ':' is refused");
	snprintf(p, sizeof p, "%s/accounts", dir);
	unlink(p);
	rmdir(dir);
}

struct count {
	int dirs, fifos, setgid_ok, order_ok, queue;
	char last[64];
};

static int
count_entry(const struct priv_entry *e, void *arg)
{
	struct count *c = arg;
	const char *slash = strrchr(e->path, '/');

	if (e->type == 'd')
		c->dirs++;
	else
		c->fifos++;
	if (!strncmp(e->path, "queue/", 6) && e->type == 'd') {
		c->queue++;
		/* moatq's directories are set-group-ID, moats' are not */
		if (!!(e->mode & S_ISGID) != (e->owner == PA_MOATQ) ||
		    e->group != PA_GROUP)
			c->setgid_ok = 0;
	}
	/* a parent comes before its children */
	if (slash && strncmp(c->last, e->path, (size_t)(slash - e->path)) &&
	    strncmp(e->path, "queue/", 6))
		c->order_ok = 0;
	snprintf(c->last, sizeof c->last, "%s", e->path);
	return 0;
}

static int
stop_at_three(const struct priv_entry *e, void *arg)
{
	(void)e;
	return ++*(int *)arg == 3 ? 42 : 0;
}

static void
test_walk(void)
{
	struct count c = {0, 0, 1, 1, 0, ""};
	const struct queue_dir *d;
	int want = 0, n = 0;

	for (d = queue_dirs; d->name; d++)
		want += 1 + (d->split ? QUEUE_SPLIT : 0);
	ok(priv_walk(count_entry, &c) == 0, "walk");
	is_int(c.queue, want, "every queue directory of queue_dirs");
	is_int(c.fifos, 1, "one fifo, the trigger");
	ok(c.setgid_ok, "moatq's queue directories alone are set-group-ID, "
	                "all group moat");
	ok(c.order_ok, "parents before children");
	ok(priv_walk(stop_at_three, &n) == 42 && n == 3,
	   "a non-zero return stops the walk and is returned");
}

int
main(void)
{
	test_programs();
	test_names();
	test_load();
	test_walk();
	return done_testing();
}
