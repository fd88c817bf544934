/* unit tests for src/lib/users.c */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "users.h"

static char root[4096];

static void
put(const char *rel, const char *data, size_t len)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", root, rel);
	f = fopen(p, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		diag("cannot write %s", p);
		exit(2);
	}
}

#define PUT(rel, lit) put(rel, lit, sizeof lit - 1)

static int
has(const char *rel)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/%s", root, rel);
	return access(p, F_OK) == 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

/* compile assign (given literally); the result and the error text */
static int
compile(const char *text, size_t len, const char **err)
{
	put("users/assign", text, len);
	return users_compile(root, err);
}

#define COMPILE(lit, err) compile(lit, sizeof lit - 1, err)

/* a table whose joe entries live in home */
static int
compile_home(const char *home)
{
	char t[9000];
	const char *err;
	int n = snprintf(t, sizeof t,
			 "=joe:joe:507:100:%s:::\n+joe-:joe:507:100:%s:-::\n.\n",
			 home, home);

	return compile(t, (size_t)n, &err);
}
#define COMPILE_HOME(home) compile_home(home)

struct bad {
	const char *text;
	size_t len;
	const char *want; /* the start of the message, line number included */
};

#define B(lit, want)                                                           \
	{                                                                      \
		lit, sizeof lit - 1, want                                      \
	}

static const struct bad bads[] = {
    B("=joe:joe:1:1:/h:::\n", "users/assign line 2: missing the final"),
    B("=joe:joe:1:1:/h:::", "users/assign line 1: no newline"),
    B("", "users/assign line 1: missing the final"),
    B("joe:joe:1:1:/h:::\n.\n", "users/assign line 1: an assignment "
                                "starts with"),
    B("=a:a:1:1:/h:::\n=joe:joe:x:1:/h:::\n.\n",
      "users/assign line 2: uid is not"),
    B("=joe:joe:-1:1:/h:::\n.\n", "users/assign line 1: uid is not"),
    B("=joe:joe:4294967295:1:/h:::\n.\n", "users/assign line 1: uid is"),
    B("=joe:joe:12345678901:1:/h:::\n.\n", "users/assign line 1: uid is"),
    B("=joe:joe::1:/h:::\n.\n", "users/assign line 1: uid is not"),
    B("=joe:joe:1:y:/h:::\n.\n", "users/assign line 1: gid is not"),
    B("=joe:joe:1:1:home/joe:::\n.\n", "users/assign line 1: home "
                                       "directory is not"),
    B("=joe:joe:1:1::::\n.\n", "users/assign line 1: home directory"),
    B("=joe:joe:1:1:/h::\n.\n", "users/assign line 1: too few fields"),
    B("=joe:joe:1:1:/h\n.\n", "users/assign line 1: too few fields"),
    B("=joe:joe:1:1:/h:::x\n.\n", "users/assign line 1: text after"),
    B("=joe:joe:1:1:/h::::\n.\n", "users/assign line 1: text after"),
    B("=a:a:1:1:/h:::\n\n.\n", "users/assign line 2: empty line"),
    B("=:a:1:1:/h:::\n.\n", "users/assign line 1: empty address"),
    B("=a::1:1:/h:::\n.\n", "users/assign line 1: empty user name"),
    B("=a:a:1:1:/h:::\r\n.\n", "users/assign line 1: control character"),
    B("=a\0b:a:1:1:/h:::\n.\n", "users/assign line 1: control character"),
    B("=a:a:1:1:/h:-:x/y:\n.\n", "users/assign line 1: '/' in dash"),
    B("=a:a:1:1:/h:/:x:\n.\n", "users/assign line 1: '/' in dash"),
    B(".x\n", "users/assign line 1: an assignment starts"),
    B("# comment\n.\n", "users/assign line 1: an assignment starts"),
};

static void
test_syntax(void)
{
	const char *err;
	size_t i;
	char *big;
	int r;

	for (i = 0; i < sizeof bads / sizeof bads[0]; i++) {
		r = compile(bads[i].text, bads[i].len, &err);
		is_int(r, USERS_SYNTAX, "bad assign %zu: USERS_SYNTAX", i);
		ok(err && !strncmp(err, bads[i].want, strlen(bads[i].want)),
		   "bad assign %zu: message \"%s\"", i, err ? err : "(null)");
		ok(!has("users/cdb.tmp"), "bad assign %zu: no cdb.tmp left", i);
	}

	/* a line over the limit */
	big = malloc(USERS_LINE_MAX + 64);
	memset(big, 'a', USERS_LINE_MAX + 64);
	memcpy(big, "=", 1);
	memcpy(big + USERS_LINE_MAX + 64 - 3, "\n.\n", 3);
	r = compile(big, USERS_LINE_MAX + 64, &err);
	ok(r == USERS_SYNTAX && strstr(err, "line 1: line longer"),
	   "a line over %d bytes: %s", USERS_LINE_MAX, err);
	free(big);
}

static void
test_system_errors(void)
{
	const char *err;
	char p[4200];

	snprintf(p, sizeof p, "%s/users/assign", root);
	unlink(p);
	errno = 0;
	is_int(users_compile(root, &err), -1, "no users/assign: -1");
	ok(errno == ENOENT, "no users/assign: ENOENT");
	ok(strstr(err, "unable to read") && strstr(err, "users/assign"),
	   "no users/assign: message names it: %s", err);
}

static const char table[] = "+:alias:7790:2108:/var/moat/alias:-::\n"
                            "+joe-:joe:507:100:/home/joe:-::\n"
                            "=joe:joe:507:100:/home/joe:::\n"
                            "=Joe.Shmoe:joe:503:78:/home/joe:::\n"
                            "=dup:first:1:1:/first:::\n"
                            "=dup:second:2:2:/second:::\n"
                            "+list-:list:600:600:/home/list:-:pre-:\n"
                            "+list-x-:lx:601:601:/home/lx:-:x:\n"
                            "+LONG:long:4294967294:4294967294:/long:-:L:\n"
                            ".\n"
                            "anything after the dot is ignored\n";

struct look {
	const char *local;
	const char *user;
	unsigned long uid;
	const char *home, *dash, *ext;
};

static const struct look looks[] = {
    {"joe", "joe", 507, "/home/joe", "", ""},
    {"JOE", "joe", 507, "/home/joe", "", ""},
    {"joe-direct", "joe", 507, "/home/joe", "-", "direct"},
    {"Joe-Direct", "joe", 507, "/home/joe", "-", "Direct"},
    {"joe-", "joe", 507, "/home/joe", "-", ""},
    {"joe.shmoe", "joe", 503, "/home/joe", "", ""},
    {"JOE.SHMOE", "joe", 503, "/home/joe", "", ""},
    {"bill", "alias", 7790, "/var/moat/alias", "-", "bill"},
    {"Bill", "alias", 7790, "/var/moat/alias", "-", "Bill"},
    {"jo", "alias", 7790, "/var/moat/alias", "-", "jo"},
    {"dup", "first", 1, "/first", "", ""},
    {"list-foo", "list", 600, "/home/list", "-", "pre-foo"},
    {"list-", "list", 600, "/home/list", "-", "pre-"},
    {"list-x", "list", 600, "/home/list", "-", "pre-x"},
    {"list-x-bar", "lx", 601, "/home/lx", "-", "xbar"},
    {"List-X-Bar", "lx", 601, "/home/lx", "-", "xBar"},
    {"list-x-", "lx", 601, "/home/lx", "-", "x"},
    {"long", "long", 4294967294UL, "/long", "-", "L"},
    {"longer", "long", 4294967294UL, "/long", "-", "Ler"},
};

static void
test_lookup(void)
{
	struct user u = USER_INIT;
	const char *err;
	size_t i;
	int r;

	r = COMPILE(table, &err);
	is_int(r, 0, "good table compiles (%s)", r ? err : "");
	ok(has("users/cdb") && !has("users/cdb.tmp"),
	   "users/cdb written, no cdb.tmp left");
	for (i = 0; i < sizeof looks / sizeof looks[0]; i++) {
		const struct look *l = &looks[i];

		r = users_lookup(root, l->local, strlen(l->local), 0, &u);
		ok(r == 1 && u.source == USERS_FROM_TABLE &&
		       !strcmp(u.user.s, l->user) && u.uid == l->uid &&
		       !strcmp(u.home.s, l->home) &&
		       !strcmp(u.dash.s, l->dash) && !strcmp(u.ext.s, l->ext),
		   "lookup %s: %s %lu %s dash \"%s\" ext \"%s\"", l->local,
		   l->user, l->uid, l->home, l->dash, l->ext);
		if (r == 1 && strcmp(u.ext.s, l->ext))
			diag("got user %s uid %lu home %s dash \"%s\" ext "
			     "\"%s\"",
			     u.user.s, (unsigned long)u.uid, u.home.s, u.dash.s,
			     u.ext.s);
	}
	r = users_lookup(root, "joe", 3, 0, &u);
	ok(r == 1 && u.gid == 100, "gid comes through");
	is_int(users_lookup(root, "", 0, 0, &u), 0, "empty local: nobody");
	is_int(users_lookup(root, "jo\0e", 4, 0, &u), 0, "NUL: nobody");
	{
		char big[USERS_LOCAL_MAX + 2];
		memset(big, 'a', sizeof big);
		is_int(users_lookup(root, big, sizeof big, 0, &u), 0,
		       "local part over %d bytes: nobody", USERS_LOCAL_MAX);
	}
	is_int(users_rcpt_ok(root, "joe", 3, 0), 1, "rcpt_ok: exact entry");
	/* an extension is taken only through a .qmail file in the home,
	 * as moat-local searches; the catch-all's home does not exist */
	is_int(users_rcpt_ok(root, "whoever", 7, 0), 0,
	       "rcpt_ok: a table catch-all (+:) without .qmail-default: 0");

	/* a failed compile leaves the old table alone */
	r = COMPILE("=joe:x:1:1:/x:::\nbad\n.\n", &err);
	is_int(r, USERS_SYNTAX, "bad table refused");
	r = users_lookup(root, "joe", 3, 0, &u);
	ok(r == 1 && u.uid == 507, "the old users/cdb still answers");

	/* no catch-all, no alias directory: nobody */
	r = COMPILE("=joe:joe:507:100:/home/joe:::\n"
	            "+joe-:joe:507:100:/home/joe:-::\n.\n",
	            &err);
	is_int(r, 0, "table without catch-all compiles");
	is_int(users_lookup(root, "bill", 4, 0, &u), 0, "unknown: nobody");
	is_int(users_lookup(root, "jo", 2, 0, &u), 0,
	       "prefix of an entry: "
	       "nobody");
	is_int(users_rcpt_ok(root, "bill", 4, 0), 0, "rcpt_ok unknown: 0");
	is_int(users_rcpt_ok(root, "JOE-x", 5, 0), 0,
	       "rcpt_ok wildcard, no .qmail-x in the home: 0");
	{
		char home[4200], f[4300];
		int fd;

		snprintf(home, sizeof home, "%s/joehome", root);
		mkdir(home, 0755);
		r = COMPILE_HOME(home);
		is_int(r, 0, "table with a real home compiles");
		is_int(users_rcpt_ok(root, "joe-x", 5, 0), 0,
		       "rcpt_ok wildcard, empty home: 0");
		snprintf(f, sizeof f, "%s/.qmail-x", home);
		fd = open(f, O_WRONLY | O_CREAT, 0644);
		close(fd);
		is_int(users_rcpt_ok(root, "JOE-X", 5, 0), 1,
		       "rcpt_ok wildcard with .qmail-x: 1");
		is_int(users_rcpt_ok(root, "joe-y", 5, 0), 0,
		       "rcpt_ok wildcard, other extension: 0");
		snprintf(f, sizeof f, "%s/.qmail-default", home);
		fd = open(f, O_WRONLY | O_CREAT, 0644);
		close(fd);
		is_int(users_rcpt_ok(root, "joe-y", 5, 0), 1,
		       "rcpt_ok wildcard with .qmail-default: 1");
	}

	/* an empty table */
	r = COMPILE(".\n", &err);
	is_int(r, 0, "empty table compiles");
	is_int(users_lookup(root, "joe", 3, 0, &u), 0, "empty table: nobody");
	users_free(&u);
}

static void
test_damaged(void)
{
	struct user u = USER_INIT;
	struct cdb_make c;
	char p[4200];
	int fd;

	PUT("users/cdb", "this is not a constant database");
	errno = 0;
	is_int(users_lookup(root, "joe", 3, 0, &u), -1, "garbage cdb: -1");
	is_int(errno, EPROTO, "garbage cdb: EPROTO");
	is_int(users_rcpt_ok(root, "joe", 3, 0), -1,
	       "garbage cdb: rcpt_ok "
	       "cannot tell");

	/* a qmail-format users/cdb is not misread */
	snprintf(p, sizeof p, "%s/users/cdb", root);
	fd = open(p, O_WRONLY | O_TRUNC | O_CREAT, 0644);
	cdb_make_start(&c, fd);
	cdb_make_add(&c, "!joe", 5, "joe\0001\0001\0/h\0\0\0", 13);
	cdb_make_add(&c, "", 0, "-", 1);
	cdb_make_finish(&c);
	close(fd);
	errno = 0;
	is_int(users_lookup(root, "joe", 3, 0, &u), -1, "qmail cdb: -1");
	is_int(errno, EPROTO, "qmail cdb: EPROTO");

	unlink(p);
	is_int(users_lookup(root, "joe", 3, 0, &u), 0, "no users/cdb: nobody");
	users_free(&u);
}

static void
test_system_table(void)
{
	struct user u = USER_INIT;
	const char *err;
	char p[4200];

	COMPILE("=joe:joe:507:100:/home/joe:::\n.\n", &err);
	snprintf(p, sizeof p, "%s/users/cdb", root);
	if (geteuid() != 0) {
		errno = 0;
		is_int(users_lookup(root, "joe", 3, USERS_SYSTEM, &u), -1,
		       "system mode: users/cdb not owned by root: -1");
		is_int(errno, EPERM, "... EPERM");
	} else {
		is_int(users_lookup(root, "joe", 3, USERS_SYSTEM, &u), 1,
		       "system mode: root's users/cdb is used");
		chmod(p, 0666);
		errno = 0;
		is_int(users_lookup(root, "joe", 3, USERS_SYSTEM, &u), -1,
		       "system mode: world-writable users/cdb: -1");
		is_int(errno, EPERM, "... EPERM");
	}
	unlink(p);
	users_free(&u);
}

static void
test_alias(void)
{
	struct user u = USER_INIT;
	char p[4200], want[4200];
	int r;

	snprintf(p, sizeof p, "%s/alias", root);
	if (mkdir(p, 0755) == -1)
		diag("mkdir %s: %s", p, strerror(errno));
	r = users_lookup(root, "Stranger.Name", 13, 0, &u);
	snprintf(want, sizeof want, "%s/alias", root);
	ok(r == 1 && u.source == USERS_FROM_ALIAS && u.uid == geteuid() &&
	       u.gid == getegid() && !strcmp(u.home.s, want) &&
	       !strcmp(u.dash.s, "-") && !strcmp(u.ext.s, "Stranger.Name") &&
	       !strcmp(u.user.s, "alias"),
	   "alias directory takes the rest, ext = the local part as given");

	is_int(users_rcpt_ok(root, "stranger", 8, 0), 0,
	       "alias without .qmail files: rcpt_ok 0");
	PUT("alias/.qmail-postmaster", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "Postmaster", 10, 0), 1,
	       ".qmail-postmaster takes Postmaster");
	is_int(users_rcpt_ok(root, "postmaster2", 11, 0), 0,
	       "... but not postmaster2");
	PUT("alias/.qmail-a:b", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "A.B", 3, 0), 1, ".qmail-a:b takes A.B");
	is_int(users_rcpt_ok(root, "a:b", 3, 0), 1, "... and a:b");
	PUT("alias/.qmail-list-default", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "list-anything", 13, 0), 1,
	       ".qmail-list-default takes list-anything");
	is_int(users_rcpt_ok(root, "LIST-a-b", 8, 0), 1, "... and LIST-a-b");
	is_int(users_rcpt_ok(root, "list-", 5, 0), 1, "... and list-");
	is_int(users_rcpt_ok(root, "list-a/b", 8, 0), 1, "... and list-a/b");
	is_int(users_rcpt_ok(root, "list", 4, 0), 0, "... but not list");
	is_int(users_rcpt_ok(root, "lists-a", 7, 0), 0, "... nor lists-a");
	is_int(users_rcpt_ok(root, "x-list-a", 8, 0), 0, "... nor x-list-a");
	{
		/* names longer than the filesystem takes name no file: the
		 * answer is still yes or no, not "cannot tell" */
		char lp[300];

		memset(lp, 'x', sizeof lp);
		is_int(users_rcpt_ok(root, lp, sizeof lp, 0), 0,
		       "a 300-byte local part with no .qmail file: 0");
		memcpy(lp, "list-", 5);
		is_int(users_rcpt_ok(root, lp, sizeof lp, 0), 1,
		       "list- and 295 more bytes: .qmail-list-default, 1");
	}
	PUT("alias/.qmail-x-y-default", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "x-y-z-w", 7, 0), 1,
	       ".qmail-x-y-default takes x-y-z-w");
	is_int(users_rcpt_ok(root, "x-z", 3, 0), 0, "... but not x-z");
	PUT("alias/.qmail--default", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "-foo", 4, 0), 1,
	       ".qmail--default takes -foo");
	is_int(users_rcpt_ok(root, "../alias/.qmail-postmaster", 26, 0), 0,
	       "a '/' in the local part reaches no other file");
	PUT("alias/.qmail-default", "./Maildir/\n");
	is_int(users_rcpt_ok(root, "anyone", 6, 0), 1,
	       ".qmail-default takes anyone");
	is_int(users_rcpt_ok(root, "a/b", 3, 0), 1, "... and a/b");

	/* an alias directory owned by someone else is not ours */
	if (geteuid() == 0) {
		if (chown(p, 1, 1) == -1)
			diag("chown: %s", strerror(errno));
		is_int(users_lookup(root, "x", 1, 0, &u), 0,
		       "alias directory owned by another uid: nobody");
		if (chown(p, 0, 0) == -1)
			diag("chown: %s", strerror(errno));
	}
	users_free(&u);
}

int
main(void)
{
	char p[4200];

	snprintf(root, sizeof root, "%s/moat-users.XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return done_testing();
	}
	snprintf(p, sizeof p, "%s/users", root);
	mkdir(p, 0755);

	test_syntax();
	test_system_errors();
	test_lookup();
	test_damaged();
	test_system_table();
	test_alias();

	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return done_testing();
}
