/*
 * users.c: fuzz target for the user table of users.h: users_check() and
 * users_compile() on a users/assign file, and users_lookup() and
 * users_rcpt_ok() on the table they make, on a table whose records are
 * given here, and on a users/cdb of arbitrary bytes.
 *
 * One temporary ROOT per process (in TMPDIR, else /dev/shm, else /tmp:
 * users_compile fsyncs twice an input), with the alias directory, ours, in
 * which only .qmail-info and .qmail-list-default exist.  The first byte's
 * low two bits say what the rest is, its bit 0x04 that the lookups are made
 * with USERS_SYSTEM too:
 *   0, 1  users/assign; the lines after its final "." are local parts to
 *         look up, and so are the local part of every simple assignment
 *         and the prefix of every wildcard with "-Ext" after it;
 *   2     lines "KEY|VALUE" are the records of users/cdb, in order, and
 *         the other lines local parts to look up;
 *   3     users/cdb itself, looked up for a few fixed local parts.
 * Checked:
 *  - users_check() and users_compile() agree, message and all, and accept
 *    exactly the files that moat-users(5) describes (uid and gid of at
 *    most 10 digits); a refusal names the first bad line and leaves
 *    users/cdb as it was, and no users/cdb.tmp stays behind;
 *  - a compiled table answers as moat-users(5) says: the first simple
 *    assignment of the local part, whatever the case, else the first
 *    wildcard with the longest prefix (pre, then the rest of the local
 *    part in its own case), else the alias user with the whole local part
 *    as extension; nobody takes an empty local part, one longer than
 *    USERS_LOCAL_MAX or one with a NUL;
 *  - users_rcpt_ok() agrees with the lookup; for the alias user it is 1
 *    exactly for "info" and what starts with "list-", lowercased and with
 *    '.' as ':';
 *  - with USERS_SYSTEM an account found takes the local part or its
 *    prefix before a '-', with the rest as extension;
 *  - whatever the table, a lookup gives 1, 0, or -1 with errno EPROTO, and
 *    an answer has all its strings NUL-terminated, a user, an absolute
 *    home and ids below 4294967295.
 */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "users.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOOKUPS 32 /* local parts looked up at most, an input */

static char root[256], path[8][320];
enum { P_ASSIGN, P_CDB, P_TMP, P_INFO, P_LIST, P_ALIAS, P_USERS, P_CTL };
static const char *const rel[] = {
    "users/assign",
    "users/cdb",
    "users/cdb.tmp",
    "alias/.qmail-info",
    "alias/.qmail-list-default",
    "alias",
    "users",
    "control",
};
static const char sentinel[] = "not a table\n";
static const char *const fixed[] = {
    "joe", "Joe-Direct", "bill", "info", "List-X", "a-b-c", "postmaster",
};

/* one line of users/assign, as moat-users(5) describes it */
struct entry {
	char type;
	const char *f[7]; /* local user uid gid home dash ext */
	size_t fl[7];
	unsigned long uid, gid;
};

static void
cleanup(void)
{
	size_t i;

	for (i = P_ASSIGN; i <= P_LIST; i++)
		unlink(path[i]);
	rmdir(path[P_ALIAS]);
	rmdir(path[P_USERS]);
	rmdir(root);
}

static void
put_file(const char *p, const char *s, size_t n)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd == -1 || fchmod(fd, 0644) == -1)
		abort();
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w <= 0)
			abort();
		s += w;
		n -= (size_t)w;
	}
	if (close(fd) == -1)
		abort();
}

/* file p holds exactly s[0..n) */
static int
file_is(const char *p, const char *s, size_t n)
{
	char buf[64];
	ssize_t r;
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	if (fd == -1 || n >= sizeof buf)
		abort();
	r = read(fd, buf, sizeof buf);
	close(fd);
	return r == (ssize_t)n && !memcmp(buf, s, n);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR");
	struct stat st;
	size_t i;

	if (!t || !*t || strlen(t) > 200)
		t = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) &&
		            access("/dev/shm", W_OK) == 0
		        ? "/dev/shm"
		        : "/tmp";
	snprintf(root, sizeof root, "%s/moat-fuzz-users.XXXXXX", t);
	if (!mkdtemp(root))
		abort();
	for (i = 0; i < sizeof rel / sizeof rel[0]; i++)
		snprintf(path[i], sizeof path[i], "%s/%s", root, rel[i]);
	atexit(cleanup);
	if (mkdir(path[P_USERS], 0755) == -1 ||
	    mkdir(path[P_ALIAS], 0700) == -1)
		abort();
	put_file(path[P_INFO], "", 0);
	put_file(path[P_LIST], "", 0);
	/* no control/accounts: the alias account is "alias" */
	ctl_setdir(path[P_CTL]);
	return 0;
}

static char
lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int
same_nocase(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lc(a[i]) != lc(b[i]))
			return 0;
	return 1;
}

/* x holds a[0..an) and then b[0..bn), and a NUL after them */
static int
holds(const str *x, const char *a, size_t an, const char *b, size_t bn)
{
	return x->s && x->len == an + bn && !memcmp(x->s, a, an) &&
	       !memcmp(x->s + an, b, bn) && !x->s[an + bn];
}

/* a uid or gid: 1 to 10 digits, below 4294967295 */
static int
id_ok(const char *s, size_t n, unsigned long *v)
{
	size_t i;

	*v = 0;
	if (n < 1 || n > 10)
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		*v = *v * 10 + (unsigned long)(s[i] - '0');
	}
	return *v < 4294967295UL;
}

static int
line_ok(const char *s, size_t l, struct entry *e)
{
	size_t i, k = 0, start = 1;

	if (l == 0 || l > USERS_LINE_MAX || (s[0] != '=' && s[0] != '+'))
		return 0;
	for (i = 0; i < l; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return 0;
	for (i = 1; i < l; i++) {
		if (s[i] != ':')
			continue;
		if (k == 7)
			return 0; /* an eighth colon */
		e->f[k] = s + start;
		e->fl[k++] = i - start;
		start = i + 1;
	}
	if (k != 7 || start != l)
		return 0;
	e->type = s[0];
	if ((e->type == '=' && e->fl[0] == 0) || e->fl[0] > USERS_LOCAL_MAX ||
	    e->fl[1] == 0 || !id_ok(e->f[2], e->fl[2], &e->uid) ||
	    !id_ok(e->f[3], e->fl[3], &e->gid) || e->fl[4] == 0 ||
	    e->f[4][0] != '/' || memchr(e->f[5], '/', e->fl[5]) ||
	    memchr(e->f[6], '/', e->fl[6]))
		return 0;
	return 1;
}

/*
 * The assignments of s[0..n) into e (room for a line each) and in *rest the
 * offset after the final ".": 0, or the number of the first bad line.
 */
static unsigned long
assign_lines(const char *s, size_t n, struct entry *e, size_t *ne, size_t *rest)
{
	unsigned long line = 0;
	size_t pos = 0;

	*ne = 0;
	while (pos < n) {
		const char *p = s + pos, *nl = memchr(p, '\n', n - pos);
		size_t l;

		line++;
		if (!nl)
			return line;
		l = (size_t)(nl - p);
		pos += l + 1;
		if (l == 1 && p[0] == '.') {
			*rest = pos;
			return 0;
		}
		if (!line_ok(p, l, &e[*ne]))
			return line;
		++*ne;
	}
	return line + 1;
}

/* the assignment that takes local[0..len), and in *plen what it matched */
static const struct entry *
find(const struct entry *e, size_t ne, const char *local, size_t len,
     size_t *plen)
{
	const struct entry *best = 0;
	size_t i;

	for (i = 0; i < ne; i++)
		if (e[i].type == '=' && e[i].fl[0] == len &&
		    same_nocase(e[i].f[0], local, len)) {
			*plen = len;
			return &e[i];
		}
	for (i = 0; i < ne; i++)
		if (e[i].type == '+' && e[i].fl[0] <= len &&
		    same_nocase(e[i].f[0], local, e[i].fl[0]) &&
		    (!best || e[i].fl[0] > best->fl[0]))
			best = &e[i];
	if (best)
		*plen = best->fl[0];
	return best;
}

/* what users_rcpt_ok must say of the alias user's extension ext */
static int
alias_has(const char *ext, size_t len)
{
	static const char list[] = "list-";

	if (len == 4 && same_nocase(ext, "info", 4))
		return 1;
	return len >= 5 && same_nocase(ext, list, 5);
}

/* what any answer must be like */
static void
check_user(const struct user *u)
{
	if (!holds(&u->user, u->user.s, u->user.len, "", 0) ||
	    !holds(&u->home, u->home.s, u->home.len, "", 0) ||
	    !holds(&u->dash, u->dash.s, u->dash.len, "", 0) ||
	    !holds(&u->ext, u->ext.s, u->ext.len, "", 0) || !u->user.len ||
	    u->home.s[0] != '/' || u->uid == (uid_t)-1 || u->gid == (gid_t)-1)
		abort();
	if (u->source != USERS_FROM_TABLE && u->source != USERS_FROM_ACCOUNT &&
	    u->source != USERS_FROM_ALIAS)
		abort();
}

static void
check_alias(const struct user *u, const char *local, size_t len)
{
	if (u->source != USERS_FROM_ALIAS ||
	    !holds(&u->user, "alias", 5, "", 0) || u->uid != geteuid() ||
	    u->gid != getegid() ||
	    !holds(&u->home, path[P_ALIAS], strlen(path[P_ALIAS]), "", 0) ||
	    !holds(&u->dash, "-", 1, "", 0) ||
	    !holds(&u->ext, local, len, "", 0))
		abort();
}

static void
check_account(const struct user *u, const char *local, size_t len)
{
	size_t n = u->user.len;

	if (n > USERS_NAME_MAX || n > len || u->uid == 0 ||
	    !same_nocase(u->user.s, local, n))
		abort();
	if (n == len ? !holds(&u->dash, "", 0, "", 0) ||
	                   !holds(&u->ext, "", 0, "", 0)
	             : local[n] != '-' || !holds(&u->dash, "-", 1, "", 0) ||
	                   !holds(&u->ext, local + n + 1, len - n - 1, "", 0))
		abort();
}

/*
 * Look local[0..len) up; with e (ne assignments), the table compiled from
 * them is users/cdb.
 */
static void
lookup(const char *local, size_t len, int flags, const struct entry *e,
       size_t ne)
{
	struct user u = USER_INIT;
	const struct entry *want = 0;
	size_t plen = 0;
	int r, ok, err;

	errno = 0;
	r = users_lookup(root, local, len, flags, &u);
	err = errno;
	ok = users_rcpt_ok(root, local, len, flags);
	if (len == 0 || len > USERS_LOCAL_MAX || memchr(local, 0, len)) {
		if (r != 0 || ok != 0)
			abort();
		goto out;
	}
	if (e && (flags & USERS_SYSTEM) && geteuid() != 0) {
		/* users/cdb is ours, not root's */
		if (r != -1 || err != EPERM || ok != -1)
			abort();
		goto out;
	}
	if (e)
		want = find(e, ne, local, len, &plen);
	if (want) {
		if (r != 1 || u.source != USERS_FROM_TABLE ||
		    !holds(&u.user, want->f[1], want->fl[1], "", 0) ||
		    u.uid != want->uid || u.gid != want->gid ||
		    !holds(&u.home, want->f[4], want->fl[4], "", 0) ||
		    !holds(&u.dash, want->f[5], want->fl[5], "", 0) ||
		    !holds(&u.ext, want->f[6], want->fl[6], local + plen,
		           len - plen))
			abort();
	} else if (e && !(flags & USERS_SYSTEM)) {
		if (r != 1)
			abort();
		check_alias(&u, local, len);
	}
	if (r == -1) {
		if (e || (err != EPROTO && err != EPERM) || ok != -1)
			abort();
		goto out;
	}
	if (r == 0) {
		if (ok != 0)
			abort();
		goto out;
	}
	if (r != 1)
		abort();
	check_user(&u);
	if (u.source == USERS_FROM_ALIAS && !(flags & USERS_SYSTEM))
		check_alias(&u, local, len);
	if (u.source == USERS_FROM_ACCOUNT)
		check_account(&u, local, len);
	if (u.source == USERS_FROM_ALIAS && !(flags & USERS_SYSTEM)) {
		if (ok != alias_has(local, len))
			abort();
	} else if (u.source == USERS_FROM_TABLE &&
	           !(u.ext.len && holds(&u.dash, "-", 1, "", 0))) {
		if (ok != 1)
			abort();
	} else if (ok < -1 || ok > 1) {
		abort();
	}
out:
	users_free(&u);
}

/* the lines of s[0..n) as local parts, at most *left of them */
static void
lookup_lines(const char *s, size_t n, int flags, const struct entry *e,
             size_t ne, size_t *left)
{
	size_t pos = 0;

	while (pos < n && *left) {
		const char *p = s + pos, *nl = memchr(p, '\n', n - pos);
		size_t l = nl ? (size_t)(nl - p) : n - pos;

		--*left;
		lookup(p, l, flags, e, ne);
		pos += l + 1;
	}
}

static void
from_assign(const char *s, size_t n, int flags)
{
	struct entry *e;
	const char *err;
	char msg[600], want[64];
	str key = STR_INIT;
	size_t ne, rest = n, i, lines = 1, left = LOOKUPS;
	unsigned long bad;
	int r;

	for (i = 0; i < n; i++)
		lines += s[i] == '\n';
	e = calloc(lines, sizeof *e);
	if (!e)
		abort();
	bad = assign_lines(s, n, e, &ne, &rest);

	put_file(path[P_ASSIGN], s, n);
	put_file(path[P_CDB], sentinel, sizeof sentinel - 1);
	r = users_check(root, &err);
	snprintf(msg, sizeof msg, "%s", err);
	if (users_compile(root, &err) != r || strcmp(msg, err))
		abort();
	if (access(path[P_TMP], F_OK) == 0 || errno != ENOENT)
		abort();
	if (bad) {
		snprintf(want, sizeof want, "users/assign line %lu: ", bad);
		if (r != USERS_SYNTAX || strncmp(err, want, strlen(want)))
			abort();
		if (!file_is(path[P_CDB], sentinel, sizeof sentinel - 1))
			abort();
		goto out;
	}
	if (r != 0)
		abort();

	for (i = 0; i < ne && left; i++, left--) {
		key.len = 0;
		if (str_catb(&key, e[i].f[0], e[i].fl[0]) == -1 ||
		    (e[i].type == '+' && str_cats(&key, "-Ext") == -1))
			abort();
		lookup(key.s ? key.s : "", key.len, flags, e, ne);
	}
	lookup_lines(s + rest, n - rest, flags, e, ne, &left);
out:
	free(e);
	str_free(&key);
}

/* users/cdb made of the lines "KEY|VALUE"; the other lines are looked up */
static void
from_records(const char *s, size_t n, int flags)
{
	struct cdb_make cm;
	size_t pos = 0, left = LOOKUPS;
	int fd =
	    open(path[P_CDB], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd == -1 || cdb_make_start(&cm, fd) == -1)
		abort();
	while (pos < n) {
		const char *p = s + pos, *nl = memchr(p, '\n', n - pos);
		size_t l = nl ? (size_t)(nl - p) : n - pos;
		const char *bar = memchr(p, '|', l);

		if (bar && cdb_make_add(&cm, p, (unsigned)(bar - p), bar + 1,
		                        (unsigned)(l - (size_t)(bar - p) - 1)))
			abort();
		pos += l + 1;
	}
	if (cdb_make_finish(&cm) == -1 || close(fd) == -1)
		abort();
	for (pos = 0; pos < n && left;) {
		const char *p = s + pos, *nl = memchr(p, '\n', n - pos);
		size_t l = nl ? (size_t)(nl - p) : n - pos;

		if (!memchr(p, '|', l)) {
			left--;
			lookup(p, l, flags, 0, 0);
		}
		pos += l + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;
	size_t i;
	int flags;

	if (size < 1 || size - 1 > 1024 * 1024)
		return 0;
	flags = data[0] & 0x04 ? USERS_SYSTEM : 0;
	switch (data[0] & 3) {
	case 0:
	case 1:
		from_assign(s, size - 1, flags);
		break;
	case 2:
		from_records(s, size - 1, flags);
		break;
	default:
		put_file(path[P_CDB], s, size - 1);
		for (i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
			lookup(fixed[i], strlen(fixed[i]), flags, 0, 0);
	}
	return 0;
}
