/*
 * users.c: the user table, the password-database rules and the alias user;
 * see users.h and moat-users(5).
 *
 * ROOT/users/cdb is moat's own format (written only by users_compile):
 *
 *   key ""         "moat-users 1" and then ":N" for every distinct length N
 *                  of a wildcard prefix, longest first
 *   key "=" LOCAL  user NUL uid NUL gid NUL home NUL dash NUL ext NUL
 *   key "+" PREFIX user NUL uid NUL gid NUL home NUL dash NUL pre NUL
 *
 * Keys are lowercased.  Where users/assign repeats a key the earliest line
 * wins, because a cdb lookup finds the first record added.  The lengths in
 * the "" record let a lookup try only the prefix lengths that exist.  A file
 * without that record (a qmail users/cdb, say) is refused as damaged rather
 * than misread.
 */
#include "users.h"
#include "io.h"
#include "privs.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "moat-users 1"
#define NFIELDS 7 /* local user uid gid home dash ext */

static char errbuf[512];

static char
lc(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* a uid or gid: 1..10 digits, below (uid_t)-1 */
static int
parse_id(const char *s, size_t n, unsigned long *v)
{
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (unsigned long)(s[i] - '0');
	}
	return *v >= 0xffffffffUL ? -1 : 0;
}

/* root + "/" + rel, made absolute with the working directory if needed */
static int
abs_path(str *out, const char *root, const char *rel)
{
	out->len = 0;
	if (root[0] != '/') {
		char *cwd = getcwd(0, 0);
		int r;

		if (!cwd)
			return -1;
		r = str_cats(out, cwd);
		free(cwd);
		if (r == -1 || str_catc(out, '/') == -1)
			return -1;
	}
	if (str_cats(out, root) == -1 || str_catc(out, '/') == -1 ||
	    str_cats(out, rel) == -1 || str_0(out) == -1)
		return -1;
	return 0;
}

static int
set(str *x, const char *s, size_t n)
{
	if (str_copyb(x, s, n) == -1 || str_0(x) == -1)
		return -1;
	return 0;
}

void
users_free(struct user *u)
{
	str_free(&u->user);
	str_free(&u->home);
	str_free(&u->dash);
	str_free(&u->ext);
}

/* ---- compiling users/assign ---- */

static int
syntax(unsigned long line, const char *what)
{
	snprintf(errbuf, sizeof errbuf, "users/assign line %lu: %s", line,
	         what);
	return USERS_SYNTAX;
}

/* whole file into out, at most max bytes: 0, or -1 (errno) */
static int
slurp(const char *path, str *out, size_t max)
{
	return io_readfile(path, out, max, 0);
}

/*
 * One assignment line (without its newline) into key and val; sets the
 * wildcard prefix length in *plen (or -1 for an exact entry).
 */
static int
parse_line(const char *s, size_t l, unsigned long line, str *key, str *val,
           long *plen)
{
	const char *f[NFIELDS];
	size_t fl[NFIELDS], i, k = 0, start = 1;
	unsigned long uid, gid;
	char type;

	if (l > USERS_LINE_MAX)
		return syntax(line, "line longer than 4096 bytes");
	for (i = 0; i < l; i++)
		if ((unsigned char)s[i] < 32 || s[i] == 127)
			return syntax(line, "control character (NUL, CR, TAB, "
			                    "...) in the line");
	if (l == 0)
		return syntax(line, "empty line (the table ends with a "
		                    "line \".\")");
	type = s[0];
	if (type != '=' && type != '+')
		return syntax(line, "an assignment starts with '=' or '+'");
	for (i = 1; i < l && k < NFIELDS; i++) {
		if (s[i] == ':') {
			f[k] = s + start;
			fl[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	if (k < NFIELDS)
		return syntax(line,
		              "too few fields: want "
		              "=local:user:uid:gid:homedir:dash:ext: "
		              "or +prefix:user:uid:gid:homedir:dash:pre:");
	if (start != l)
		return syntax(line, "text after the seventh ':'");
	if (type == '=' && fl[0] == 0)
		return syntax(line, "empty address in a '=' assignment");
	if (fl[0] > USERS_LOCAL_MAX)
		return syntax(line, "address longer than 1024 bytes");
	if (fl[1] == 0)
		return syntax(line, "empty user name");
	if (parse_id(f[2], fl[2], &uid) == -1)
		return syntax(line, "uid is not a decimal number below "
		                    "4294967295");
	if (parse_id(f[3], fl[3], &gid) == -1)
		return syntax(line, "gid is not a decimal number below "
		                    "4294967295");
	if (fl[4] == 0 || f[4][0] != '/')
		return syntax(line, "home directory is not an absolute path");
	if (memchr(f[5], '/', fl[5]) || memchr(f[6], '/', fl[6]))
		return syntax(line, "'/' in dash or extension");

	key->len = 0;
	if (str_catc(key, type) == -1)
		return -1;
	for (i = 0; i < fl[0]; i++)
		if (str_catc(key, lc(f[0][i])) == -1)
			return -1;
	val->len = 0;
	if (str_catb(val, f[1], fl[1]) == -1 || str_catc(val, 0) == -1 ||
	    str_catu(val, uid) == -1 || str_catc(val, 0) == -1 ||
	    str_catu(val, gid) == -1 || str_catc(val, 0) == -1)
		return -1;
	for (i = 4; i < NFIELDS; i++)
		if (str_catb(val, f[i], fl[i]) == -1 || str_catc(val, 0) == -1)
			return -1;
	*plen = type == '+' ? (long)fl[0] : -1;
	return 0;
}

static int
sysfail(const char *what, const char *path)
{
	int e = errno;

	snprintf(errbuf, sizeof errbuf, "%s %s", what, path);
	errno = e;
	return -1;
}

/* parse text and add its records to c; 0, USERS_SYNTAX or -1 */
static int
compile_text(const str *text, struct cdb_make *c, const char *tmp)
{
	static unsigned char seen[USERS_LOCAL_MAX + 1];
	str key = STR_INIT, val = STR_INIT;
	unsigned long line = 0;
	size_t pos = 0;
	int r, done = 0;
	long n;

	memset(seen, 0, sizeof seen);
	while (!done && pos < text->len) {
		const char *s = text->s + pos;
		const char *nl = memchr(s, '\n', text->len - pos);
		size_t l;
		long plen;

		++line;
		if (!nl) {
			r = syntax(line, "no newline at the end, and no final "
			                 "line \".\"");
			goto out;
		}
		l = (size_t)(nl - s);
		pos += l + 1;
		if (l == 1 && s[0] == '.') {
			done = 1;
			continue;
		}
		r = parse_line(s, l, line, &key, &val, &plen);
		if (r == -1)
			goto nomem;
		if (r != 0)
			goto out;
		if (cdb_make_add(c, key.s, (unsigned)key.len, val.s,
		                 (unsigned)val.len) == -1) {
			r = sysfail("unable to write", tmp);
			goto out;
		}
		if (plen >= 0)
			seen[plen] = 1;
	}
	if (!done) {
		r = syntax(line + 1, "missing the final line \".\" (is the "
		                     "file truncated?)");
		goto out;
	}
	key.len = 0;
	if (str_cats(&key, MAGIC) == -1)
		goto nomem;
	for (n = USERS_LOCAL_MAX; n >= 0; n--)
		if (seen[n] && (str_catc(&key, ':') == -1 ||
		                str_catu(&key, (unsigned long)n) == -1))
			goto nomem;
	r = 0;
	if (cdb_make_add(c, "", 0, key.s, (unsigned)key.len) == -1)
		r = sysfail("unable to write", tmp);
	goto out;
nomem:
	r = sysfail("out of memory compiling", "users/assign");
out:
	str_free(&key);
	str_free(&val);
	return r;
}

int
users_compile(const char *root, const char **err)
{
	str assign = STR_INIT, tmp = STR_INIT, cdbp = STR_INIT, dir = STR_INIT;
	str text = STR_INIT;
	struct cdb_make c;
	int fd = -1, made = 0, started = 0, r = -1, e, dfd;

	errbuf[0] = 0;
	*err = errbuf;
	if (abs_path(&assign, root, "users/assign") == -1 ||
	    abs_path(&tmp, root, "users/cdb.tmp") == -1 ||
	    abs_path(&cdbp, root, "users/cdb") == -1 ||
	    abs_path(&dir, root, "users") == -1) {
		r = sysfail("out of memory", "");
		goto out;
	}
	if (slurp(assign.s, &text, USERS_ASSIGN_MAX) == -1) {
		r = sysfail("unable to read", assign.s);
		goto out;
	}
	fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	          0644);
	if (fd == -1) {
		r = sysfail("unable to create", tmp.s);
		goto out;
	}
	made = 1;
	if (fchmod(fd, 0644) == -1 || cdb_make_start(&c, fd) == -1) {
		r = sysfail("unable to write", tmp.s);
		goto out;
	}
	started = 1;
	r = compile_text(&text, &c, tmp.s);
	if (r != 0)
		goto out;
	started = 0;
	if (cdb_make_finish(&c) == -1 || fsync(fd) == -1) {
		r = sysfail("unable to write", tmp.s);
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		r = sysfail("unable to write", tmp.s);
		goto out;
	}
	if (rename(tmp.s, cdbp.s) == -1) {
		r = sysfail("unable to rename users/cdb.tmp to", cdbp.s);
		goto out;
	}
	made = 0;
	/* the rename itself must survive a crash */
	r = -1;
	dfd = open(dir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1 || fsync(dfd) == -1)
		r = sysfail("unable to fsync", dir.s);
	else
		r = 0;
	if (dfd != -1)
		close(dfd);
out:
	e = errno;
	if (started)
		cdb_make_finish(&c); /* only to free its memory */
	if (fd != -1)
		close(fd);
	if (made)
		unlink(tmp.s);
	str_free(&assign);
	str_free(&tmp);
	str_free(&cdbp);
	str_free(&dir);
	str_free(&text);
	errno = e;
	return r;
}

int
users_check(const char *root, const char **err)
{
	str assign = STR_INIT, text = STR_INIT;
	struct cdb_make c;
	int fd, r, e;

	errbuf[0] = 0;
	*err = errbuf;
	if (abs_path(&assign, root, "users/assign") == -1) {
		r = sysfail("out of memory", "");
		goto out;
	}
	if (slurp(assign.s, &text, USERS_ASSIGN_MAX) == -1) {
		r = sysfail("unable to read", assign.s);
		goto out;
	}
	/* the same parser, with the table going nowhere */
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd == -1) {
		r = sysfail("unable to open", "/dev/null");
		goto out;
	}
	if (cdb_make_start(&c, fd) == -1) {
		r = sysfail("unable to start a table on", "/dev/null");
		close(fd);
		goto out;
	}
	r = compile_text(&text, &c, "/dev/null");
	e = errno;
	cdb_make_finish(&c); /* only to free its memory */
	close(fd);
	errno = e;
out:
	e = errno;
	str_free(&assign);
	str_free(&text);
	errno = e;
	return r;
}

/* ---- lookups ---- */

/* a record's value into *u; ext is prepended to extra[0..xlen) */
static int
parse_value(const char *v, size_t vl, const char *extra, size_t xlen,
            struct user *u)
{
	const char *f[NFIELDS - 1];
	size_t fl[NFIELDS - 1], i, k = 0, start = 0;
	unsigned long id;

	for (i = 0; i < vl && k < NFIELDS - 1; i++)
		if (v[i] == 0) {
			f[k] = v + start;
			fl[k++] = i - start;
			start = i + 1;
		}
	if (k != NFIELDS - 1 || start != vl || fl[0] == 0 || fl[3] == 0 ||
	    f[3][0] != '/')
		goto bad;
	if (parse_id(f[1], fl[1], &id) == -1)
		goto bad;
	u->uid = (uid_t)id;
	if (parse_id(f[2], fl[2], &id) == -1)
		goto bad;
	u->gid = (gid_t)id;
	if (set(&u->user, f[0], fl[0]) == -1 ||
	    set(&u->home, f[3], fl[3]) == -1 ||
	    set(&u->dash, f[4], fl[4]) == -1 ||
	    str_copyb(&u->ext, f[5], fl[5]) == -1 ||
	    str_catb(&u->ext, extra, xlen) == -1 || str_0(&u->ext) == -1)
		return -1;
	u->source = USERS_FROM_TABLE;
	return 1;
bad:
	errno = EPROTO;
	return -1;
}

/* the lengths list of the "" record: next one after *pos, or -1 at end */
static long
next_len(const char *m, size_t ml, size_t *pos)
{
	unsigned long v = 0;
	size_t i = *pos;

	if (i >= ml)
		return -1;
	if (m[i] != ':' || i + 1 >= ml)
		return -2;
	for (i++; i < ml && m[i] != ':'; i++) {
		if (m[i] < '0' || m[i] > '9' || v > USERS_LOCAL_MAX)
			return -2;
		v = v * 10 + (unsigned long)(m[i] - '0');
	}
	if (m[i - 1] == ':' || v > USERS_LOCAL_MAX)
		return -2;
	*pos = i;
	return (long)v;
}

static int
table_lookup(const char *root, const char *local, const char *low, size_t len,
             int flags, struct user *u)
{
	str path = STR_INIT, key = STR_INIT;
	struct cdb c;
	struct stat st;
	const char *meta;
	size_t ml, pos;
	long n, last = USERS_LOCAL_MAX + 1;
	int fd, r = -1, e;

	if (abs_path(&path, root, "users/cdb") == -1)
		return -1;
	fd = open(path.s, O_RDONLY | O_CLOEXEC);
	str_free(&path);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) == -1) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	if ((flags & USERS_SYSTEM) && (st.st_uid != 0 || (st.st_mode & 022))) {
		close(fd);
		errno = EPERM;
		return -1;
	}
	if (cdb_init(&c, fd) == -1) {
		e = errno;
		close(fd);
		errno = e ? e : EPROTO;
		return -1;
	}
	if (cdb_find(&c, "", 0) <= 0)
		goto bad;
	meta = cdb_getdata(&c);
	ml = cdb_datalen(&c);
	if (!meta || ml < sizeof MAGIC - 1 ||
	    memcmp(meta, MAGIC, sizeof MAGIC - 1))
		goto bad;

	if (str_catc(&key, '=') == -1 || str_catb(&key, low, len) == -1)
		goto out;
	switch (cdb_find(&c, key.s, (unsigned)key.len)) {
	case -1:
		goto bad;
	case 1:
		r = parse_value(cdb_getdata(&c), cdb_datalen(&c), "", 0, u);
		goto out;
	}
	pos = sizeof MAGIC - 1;
	while ((n = next_len(meta, ml, &pos)) != -1) {
		if (n < 0 || n >= last)
			goto bad;
		last = n;
		if ((size_t)n > len)
			continue;
		key.len = 0;
		if (str_catc(&key, '+') == -1 ||
		    str_catb(&key, low, (size_t)n) == -1)
			goto out;
		switch (cdb_find(&c, key.s, (unsigned)key.len)) {
		case -1:
			goto bad;
		case 1:
			r = parse_value(cdb_getdata(&c), cdb_datalen(&c),
			                local + n, len - (size_t)n, u);
			goto out;
		}
	}
	r = 0;
	goto out;
bad:
	errno = EPROTO;
	r = -1;
out:
	e = errno;
	cdb_free(&c);
	close(fd);
	str_free(&key);
	errno = e;
	return r;
}

/*
 * The account name[0..n), as qmail-getpw sees accounts: a non-zero uid and
 * an existing home directory the account owns.  Names outside the portable
 * set [a-z0-9._-] (or too long, or starting with '-') are never looked up,
 * so nothing odd from the network reaches the name service.
 */
static int
account(const char *name, size_t n, struct user *u)
{
	char buf[USERS_NAME_MAX + 1];
	struct passwd *pw;
	struct stat st;
	size_t i;

	if (n == 0 || n > USERS_NAME_MAX || name[0] == '-')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	memcpy(buf, name, n);
	buf[n] = 0;
	errno = 0;
	pw = getpwnam(buf);
	if (!pw) {
		if (errno == 0 || errno == ENOENT || errno == ESRCH ||
		    errno == EBADF || errno == EPERM)
			return 0;
		return -1;
	}
	if (pw->pw_uid == 0 || !pw->pw_dir || pw->pw_dir[0] != '/')
		return 0;
	if (set(&u->user, buf, n) == -1 ||
	    set(&u->home, pw->pw_dir, strlen(pw->pw_dir)) == -1)
		return -1;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	if (stat(u->home.s, &st) == -1)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	if (!S_ISDIR(st.st_mode) || st.st_uid != u->uid)
		return 0;
	u->source = USERS_FROM_ACCOUNT;
	return 1;
}

static int
account_lookup(const char *local, const char *low, size_t len, struct user *u)
{
	size_t i = len;
	int r;

	for (;;) {
		r = account(low, i, u);
		if (r != 0)
			break;
		while (i > 0 && low[--i] != '-')
			;
		if (i == 0)
			return 0;
	}
	if (r < 0)
		return -1;
	if (set(&u->dash, i < len ? "-" : "", i < len ? 1 : 0) == -1)
		return -1;
	if (i < len)
		i++;
	return set(&u->ext, local + i, len - i) == -1 ? -1 : 1;
}

static int
alias_lookup(const char *root, const char *local, size_t len, int flags,
             struct user *u)
{
	struct stat st;
	int r;

	if (flags & USERS_SYSTEM) {
		/* the alias account's name, as moat setup recorded it in
		 * control/accounts (a --user-prefix renames it) */
		struct priv_names n;
		const char *a = "alias";

		if (priv_names_load(&n) >= 0)
			a = n.acct[PA_ALIAS];
		r = account(a, strlen(a), u);
		if (r != 1)
			return r;
	} else {
		if (abs_path(&u->home, root, "alias") == -1)
			return -1;
		if (stat(u->home.s, &st) == -1)
			return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
		if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid())
			return 0;
		if (set(&u->user, "alias", 5) == -1)
			return -1;
		u->uid = geteuid();
		u->gid = getegid();
	}
	if (set(&u->dash, "-", 1) == -1 || set(&u->ext, local, len) == -1)
		return -1;
	u->source = USERS_FROM_ALIAS;
	return 1;
}

int
users_lookup(const char *root, const char *local, size_t len, int flags,
             struct user *u)
{
	char low[USERS_LOCAL_MAX];
	size_t i;
	int r;

	u->source = 0;
	if (len == 0 || len > USERS_LOCAL_MAX || memchr(local, 0, len))
		return 0;
	for (i = 0; i < len; i++)
		low[i] = lc(local[i]);
	r = table_lookup(root, local, low, len, flags, u);
	if (r == 0 && (flags & USERS_SYSTEM))
		r = account_lookup(local, low, len, u);
	if (r == 0)
		r = alias_lookup(root, local, len, flags, u);
	return r;
}

/* 1 if home/name exists, 0 if not, -1 if we cannot tell */
static int
exists(str *path, size_t base, const char *name, size_t n)
{
	struct stat st;

	path->len = base;
	if (str_catb(path, name, n) == -1 || str_0(path) == -1)
		return -1;
	if (stat(path->s, &st) == 0)
		return 1;
	/* a name too long for the filesystem names no file, as moat-local
	 * sees it */
	return errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG
		       ? 0
		       : -1;
}

/*
 * Does the alias user have a .qmail file for ext?  As qmail-local searches:
 * .qmail-EXT, then .qmail-PREFIX-default for each prefix of EXT that ends
 * with a '-' (longest first), then .qmail-default.  A name with a '/' in it
 * cannot be a file in home, so it is not tried.
 */
static int
dotqmail(const char *home, const char *ext, size_t len)
{
	str path = STR_INIT, name = STR_INIT;
	size_t i, base;
	int r = -1;

	if (str_copys(&path, home) == -1 || str_cats(&path, "/.qmail-") == -1)
		goto out;
	base = path.len;
	for (i = 0; i < len; i++)
		if (str_catc(&name, ext[i] == '.' ? ':' : lc(ext[i])) == -1)
			goto out;
	if (len && !memchr(name.s, '/', len) &&
	    (r = exists(&path, base, name.s, len)) != 0)
		goto out;
	for (i = len;; i--) {
		if (i == 0 ||
		    (name.s[i - 1] == '-' && !memchr(name.s, '/', i))) {
			path.len = base;
			if (str_catb(&path, name.s, i) == -1) {
				r = -1;
				goto out;
			}
			if ((r = exists(&path, path.len, "default", 7)) != 0)
				goto out;
		}
		if (i == 0)
			break;
	}
	r = 0;
out:
	str_free(&path);
	str_free(&name);
	return r;
}

int
users_rcpt_ok(const char *root, const char *local, size_t len, int flags)
{
	struct user u = USER_INIT;
	int r = users_lookup(root, local, len, flags, &u);

	/* an extension is taken only through a .qmail file, as moat-local
	 * searches (a home we may not read: -1, cannot tell) */
	if (r == 1 && (u.source == USERS_FROM_ALIAS ||
		       (u.ext.len && u.dash.len == 1 && u.dash.s[0] == '-')))
		r = dotqmail(u.home.s, u.ext.s, u.ext.len);
	users_free(&u);
	return r;
}
