/*
 * moat-setup: prepare an installed tree (accounts, queue, configuration).
 *
 *   moat-setup [--prefix DIR] [--user-prefix P] [--me HOST]
 *              [--sendmail-links | --remove-sendmail-links]
 *              [--links-root DIR]
 *   moat-setup --check [--prefix DIR]
 *   moat-setup --list [--prefix DIR]
 *
 * Runs as: root (--list: anyone).  DIR defaults to the prefix compiled in
 * (MOAT_PREFIX); the programs in DIR/bin must have been built for the same
 * prefix, since moat-queue, being setuid, trusts only that one.
 *
 * In this order, and each step only when something is missing or wrong:
 *   1. the group moat and the accounts moatd, moatq, moats, moatr, moatl
 *      and alias (privs.h), as system accounts (groupadd/useradd
 *      --system; no login shell); with --user-prefix P they are Pmoatd ...
 *      and Pmoat, and the names are recorded in control/accounts, which
 *      later runs and moat-start read.  An existing account is used as it
 *      is if it is not uid 0 and has the primary group privs.h asks for;
 *   2. the tree of privs.h's priv_walk(): DIR, bin/, control/, users/,
 *      alias/, log/, queue/ and every queue directory, and the trigger
 *      fifo, with their owners and modes (existing ones are corrected);
 *   3. control/me (--me, else the host's fully qualified name), locals and
 *      rcpthosts (localhost and me), control/accounts; alias/Maildir/ and
 *      alias/.qmail-postmaster, -mailer-daemon, -root (./Maildir/);
 *   3a. control/servercert.pem, when missing: a self-signed certificate
 *      for control/me made by bin/moat-tlsd -g, given to moatd, mode 0400
 *      (moat-tlsd reads it as moatd on STARTTLS; replace it by a real one);
 *   4. the programs in bin/: moat-queue owned by moatq, mode 4711; every
 *      other file owned by root, mode 0755: nothing else is setuid or
 *      setgid;
 *   5. with --sendmail-links: symbolic links /usr/sbin/sendmail,
 *      /usr/lib/sendmail (when /usr/lib exists) to DIR/bin/sendmail and
 *      /usr/bin/mailq to DIR/bin/mailq, under --links-root (default /).
 *      A path that exists and is not already that link (another MTA's
 *      file) makes it refuse and change none; so does a missing target.
 *      --remove-sendmail-links removes those links, and only those.
 *
 * Never removes anything else, never rewrites an existing control file and
 * never opens a file inside queue/: running it again is safe, and is how
 * an upgrade (make install) gets moat-queue's setuid bit back.  Everything
 * is opened relative to DIR, component by component, without following
 * symbolic links, so an account that owns a directory of the tree (moatq
 * owns queue/) cannot make root change something outside it.  DIR and its
 * parents must be owned by root and not writable by others (sticky
 * directories such as /tmp excepted).
 *
 * --check changes nothing and reports every difference from the tables
 * (exit 100 if there is one); --list prints the tables: one line per
 * entry, "TYPE MODE OWNER GROUP PATH" (TYPE d directory, p fifo, f
 * program), then "run PROGRAM ACCOUNT how" for every program.
 *
 * Exit codes: 0 done; 100 usage error, refusal, or --check differences;
 * 111 system error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "paths.h"
#include "privs.h"
#include "str.h"

static const char *prefix = MOAT_PREFIX;
static int rootfd = -1;
static struct priv_names names;
static uid_t uids[PA_NACCT];
static gid_t gids[PA_NACCT], group_gid;
static int checking, problems, changes;

static _Noreturn void
usage(void)
{
	/* not through die(): it would show the newlines as \x0a */
	fputs("usage: moat-setup [--prefix DIR] [--user-prefix P] [--me HOST]\n"
	      "                  [--sendmail-links | --remove-sendmail-links] "
	      "[--links-root DIR]\n"
	      "       moat-setup --check [--prefix DIR]\n"
	      "       moat-setup --list [--prefix DIR]\n",
	      stderr);
	_exit(100);
}

static void
nomem(void)
{
	die(111, "out of memory");
}

/* ------------------------------------------------------------ paths */

/* absolute, no empty, "." or ".." components, no trailing slash */
static int
clean_path(const char *p)
{
	const char *c = p;

	if (*p != '/' || strlen(p) > PATH_MAX / 2)
		return 0;
	if (!strcmp(p, "/"))
		return 1; /* the caller refuses it where it must */
	while (*c == '/') {
		const char *e = strchr(c + 1, '/');
		size_t n = e ? (size_t)(e - c - 1) : strlen(c + 1);

		if (n == 0 || (n == 1 && c[1] == '.') ||
		    (n == 2 && c[1] == '.' && c[2] == '.'))
			return 0;
		if (!e)
			return 1;
		c = e;
	}
	return 0;
}

/* every ancestor of p owned by root and writable by nobody else (or
 * sticky), so that nobody but root can swap a component */
static void
check_parents(const char *p)
{
	char buf[PATH_MAX];
	struct stat st;
	char *slash;

	snprintf(buf, sizeof buf, "%s", p);
	while ((slash = strrchr(buf, '/'))) {
		if (slash == buf)
			slash[1] = 0;
		else
			*slash = 0;
		if (stat(buf, &st) == -1)
			die_sys(111, "unable to check %s", buf);
		if (st.st_uid != 0 ||
		    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)))
			die(100,
			    "refusing to work under %s: it must be owned by "
			    "root and writable by root alone",
			    buf);
		if (slash == buf)
			break;
	}
}

/* the directory holding rel's last component, opened without following
 * links from rootfd; *last points into rel */
static int
open_parent(const char *rel, const char **last)
{
	char comp[NAME_MAX + 1];
	const char *s = rel, *slash;
	int fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 0);

	if (fd == -1)
		return -1;
	while ((slash = strchr(s, '/'))) {
		size_t n = (size_t)(slash - s);
		int nfd;

		if (n == 0 || n > NAME_MAX) {
			close(fd);
			errno = EINVAL;
			return -1;
		}
		memcpy(comp, s, n);
		comp[n] = 0;
		nfd = openat(fd, comp,
		             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (nfd == -1)
			return -1;
		fd = nfd;
		s = slash + 1;
	}
	*last = s;
	return fd;
}

/* ------------------------------------------------------------ accounts */

static void
run(char *const argv[])
{
	static const char *dirs[] = {"/usr/sbin/", "/sbin/", "/usr/bin/",
	                             "/bin/"};
	char path[256];
	char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", 0};
	size_t i;
	int status;
	pid_t pid;

	for (i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(path, sizeof path, "%s%s", dirs[i], argv[0]);
		if (access(path, X_OK) == 0)
			break;
	}
	if (i == sizeof dirs / sizeof *dirs)
		die(111, "%s not found: install it (Debian: package passwd)",
		    argv[0]);
	pid = fork();
	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		execve(path, argv, envp);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) == -1)
		die_sys(111, "unable to wait for %s", argv[0]);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		die(111, "%s %s failed", argv[0], argv[1]);
}

static const char *
nologin(void)
{
	return access("/usr/sbin/nologin", X_OK) == 0 ? "/usr/sbin/nologin"
	       : access("/sbin/nologin", X_OK) == 0   ? "/sbin/nologin"
	                                              : "/bin/false";
}

static void
ensure_group(void)
{
	struct group *g = getgrnam(names.group);

	if (!g) {
		char *argv[] = {"groupadd", "--system", names.group, 0};

		run(argv);
		log_msg("created the group %s", names.group);
		changes++;
		g = getgrnam(names.group);
		if (!g)
			die(111, "group %s missing after groupadd",
			    names.group);
	}
	if (g->gr_gid == 0)
		die(100, "refusing to use group %s: its gid is 0", names.group);
	group_gid = g->gr_gid;
}

static void
ensure_account(int i)
{
	const struct priv_account *a = &priv_accounts[i];
	const char *name = names.acct[i];
	struct passwd *pw = getpwnam(name);

	if (!pw) {
		char home[PATH_MAX], gid[32];
		char *argv[16];
		int n = 0;

		snprintf(home, sizeof home, "%s%s%s", prefix,
		         *a->home ? "/" : "", a->home);
		snprintf(gid, sizeof gid, "%lu", (unsigned long)group_gid);
		argv[n++] = "useradd";
		argv[n++] = "--system";
		argv[n++] = "--no-create-home";
		argv[n++] = "--home-dir";
		argv[n++] = home;
		argv[n++] = "--shell";
		argv[n++] = (char *)nologin();
		argv[n++] = "--comment";
		argv[n++] = (char *)a->gecos;
		if (a->in_group) {
			argv[n++] = "--gid";
			argv[n++] = gid;
		} else {
			argv[n++] = "--user-group";
		}
		argv[n++] = (char *)name;
		argv[n] = 0;
		run(argv);
		log_msg("created the account %s", name);
		changes++;
		pw = getpwnam(name);
		if (!pw)
			die(111, "account %s missing after useradd", name);
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		die(100, "refusing to use account %s: uid or gid 0", name);
	if (a->in_group && pw->pw_gid != group_gid)
		die(100,
		    "account %s exists, but its primary group is not %s "
		    "(usermod -g %s %s)",
		    name, names.group, names.group, name);
	if (!a->in_group && pw->pw_gid == group_gid)
		die(100,
		    "account %s must not have %s as its primary group: it "
		    "would read the queue",
		    name, names.group);
	uids[i] = pw->pw_uid;
	gids[i] = pw->pw_gid;
}

/* without creating anything: for --check and --list */
static void
lookup_accounts(int must)
{
	struct group *g = getgrnam(names.group);
	int i;

	group_gid = g ? g->gr_gid : (gid_t)-1;
	if (!g && must) {
		log_msg("no group %s", names.group);
		problems++;
	}
	for (i = 0; i < PA_NACCT; i++) {
		struct passwd *pw = getpwnam(names.acct[i]);

		uids[i] = pw ? pw->pw_uid : (uid_t)-1;
		gids[i] = pw ? pw->pw_gid : (gid_t)-1;
		if (!pw && must) {
			log_msg("no account %s", names.acct[i]);
			problems++;
		}
	}
}

/* ------------------------------------------------------------ the tree */

static void
want_ids(const struct priv_entry *e, uid_t *u, gid_t *g)
{
	*u = e->owner == PA_ROOT ? 0 : uids[e->owner];
	*g = e->group == PA_ROOT    ? 0
	     : e->group == PA_GROUP ? group_gid
	                            : gids[e->owner];
}

static const char *
shown(const char *rel)
{
	static char buf[PATH_MAX];

	snprintf(buf, sizeof buf, "%s%s%s", prefix, *rel ? "/" : "", rel);
	return buf;
}

/* fd refers to rel: give it the owner and mode asked for */
static void
settle(int fd, const char *rel, uid_t u, gid_t g, mode_t mode, int created)
{
	struct stat st;

	if (fstat(fd, &st) == -1)
		die_sys(111, "unable to check %s", shown(rel));
	if (st.st_uid == u && st.st_gid == g && (st.st_mode & 07777) == mode)
		return;
	if (checking) {
		log_msg("%s is %ld:%ld %04o, wants %ld:%ld %04o", shown(rel),
		        (long)st.st_uid, (long)st.st_gid,
		        (unsigned)(st.st_mode & 07777), (long)u, (long)g,
		        (unsigned)mode);
		problems++;
		return;
	}
	/* the owner first: chown may clear set-ID bits */
	if ((st.st_uid != u || st.st_gid != g) && fchown(fd, u, g) == -1)
		die_sys(111, "unable to give %s to %ld:%ld", shown(rel),
		        (long)u, (long)g);
	if (fchmod(fd, mode) == -1)
		die_sys(111, "unable to set the mode of %s", shown(rel));
	if (!created) {
		log_msg("corrected %s to %ld:%ld %04o", shown(rel), (long)u,
		        (long)g, (unsigned)mode);
		changes++;
	}
}

static int
make_entry(const struct priv_entry *e, void *arg)
{
	const char *last;
	uid_t u;
	gid_t g;
	int pfd, fd, created = 0;

	(void)arg;
	want_ids(e, &u, &g);
	if (!*e->path) {
		settle(rootfd, "", u, g, e->mode, 0);
		return 0;
	}
	pfd = open_parent(e->path, &last);
	if (pfd == -1) {
		if (checking && errno == ENOENT)
			return 0; /* the parent was reported */
		die_sys(111, "unable to open the directory of %s",
		        shown(e->path));
	}
	if (!checking) {
		int r = e->type == 'd' ? mkdirat(pfd, last, e->mode & 0777)
		                       : mkfifoat(pfd, last, e->mode & 0777);
		if (r == 0) {
			created = 1;
			changes++;
		} else if (errno != EEXIST) {
			die_sys(111, "unable to create %s", shown(e->path));
		}
	}
	fd = openat(pfd, last,
	            e->type == 'd'
	                ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
	                : O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	close(pfd);
	if (fd == -1) {
		if (checking) {
			log_sys("unable to open %s", shown(e->path));
			problems++;
			return 0;
		}
		if (errno == ELOOP || errno == ENOTDIR)
			die(100, "refusing to use %s: not a %s", shown(e->path),
			    e->type == 'd' ? "directory" : "fifo");
		die_sys(111, "unable to open %s", shown(e->path));
	}
	if (e->type == 'p') {
		struct stat st;

		if (fstat(fd, &st) == -1 || !S_ISFIFO(st.st_mode))
			die(100, "refusing to use %s: not a fifo",
			    shown(e->path));
	}
	settle(fd, e->path, u, g, e->mode, created);
	close(fd);
	return 0;
}

static void
open_root(void)
{
	struct stat st;

	check_parents(prefix);
	if (!checking && mkdir(prefix, 0755) == 0) {
		log_msg("created %s", prefix);
		changes++;
	} else if (!checking && errno != EEXIST) {
		die_sys(111, "unable to create %s", prefix);
	}
	rootfd = open(prefix, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd == -1)
		die_sys(111, "unable to open %s", prefix);
	if (fstat(rootfd, &st) == -1)
		die_sys(111, "unable to check %s", prefix);
	if (st.st_uid != 0)
		die(100, "refusing to set up %s: it is not owned by root",
		    prefix);
}

/* ------------------------------------------------------------ files */

/* dirfd/name with content, only if missing; 1 written, 0 existed */
static int
write_new(int dirfd, const char *rel, const char *name, const char *content,
          uid_t u, gid_t g)
{
	size_t n = strlen(content);
	int fd =
	    openat(dirfd, name,
	           O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);

	if (fd == -1) {
		if (errno == EEXIST)
			return 0;
		die_sys(111, "unable to create %s/%s", shown(rel), name);
	}
	if (write(fd, content, n) != (ssize_t)n || fchown(fd, u, g) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1) {
		unlinkat(dirfd, name, 0);
		die_sys(111, "unable to write %s/%s", shown(rel), name);
	}
	log_msg("wrote %s/%s", shown(rel), name);
	changes++;
	return 1;
}

static int
open_dir(const char *rel)
{
	int fd = openat(rootfd, rel,
	                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1)
		die_sys(111, "unable to open %s", shown(rel));
	return fd;
}

/* a valid host name for control/me */
static int
valid_host(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > 253 || h[0] == '.' || h[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') ||
		      (h[i] >= 'A' && h[i] <= 'Z') ||
		      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' ||
		      h[i] == '-'))
			return 0;
	return 1;
}

/* the fully qualified host name, as well as we can tell */
static void
host_name(char *out, size_t size)
{
	struct addrinfo hints, *ai = 0;
	char h[256];

	if (gethostname(h, sizeof h - 1) == -1)
		snprintf(h, sizeof h, "localhost");
	h[sizeof h - 1] = 0;
	if (!strchr(h, '.')) {
		memset(&hints, 0, sizeof hints);
		hints.ai_flags = AI_CANONNAME;
		hints.ai_socktype = SOCK_STREAM;
		if (getaddrinfo(h, 0, &hints, &ai) == 0 && ai &&
		    ai->ai_canonname && strchr(ai->ai_canonname, '.') &&
		    valid_host(ai->ai_canonname))
			snprintf(h, sizeof h, "%s", ai->ai_canonname);
		if (ai)
			freeaddrinfo(ai);
	}
	if (!valid_host(h))
		snprintf(h, sizeof h, "localhost");
	snprintf(out, size, "%s", h);
}

static void
control_files(const char *me)
{
	char host[256], list[600];
	str acc = STR_INIT;
	int fd = open_dir("control");

	if (me)
		snprintf(host, sizeof host, "%s", me);
	else
		host_name(host, sizeof host);
	snprintf(list, sizeof list, "localhost\n%s\n", host);
	if (!strcmp(host, "localhost"))
		snprintf(list, sizeof list, "localhost\n");
	strcat(host, "\n");
	write_new(fd, "control", "me", host, 0, 0);
	write_new(fd, "control", "locals", list, 0, 0);
	write_new(fd, "control", "rcpthosts", list, 0, 0);
	if (priv_names_format(&names, &acc) == -1 || str_0(&acc) == -1)
		nomem();
	write_new(fd, "control", "accounts", acc.s, 0, 0);
	str_free(&acc);
	close(fd);
}

/* STARTTLS's certificate and key, if there is none: moat-tlsd -g runs as
 * root in the root-owned control/, writes a temporary file and renames it */
static void
server_cert(void)
{
	str prog = STR_INIT, path = STR_INIT, me = STR_INIT;
	int fd = open_dir("control"), status;
	pid_t pid;

	if (faccessat(fd, "servercert.pem", F_OK, AT_SYMLINK_NOFOLLOW) == 0 ||
	    errno != ENOENT) {
		close(fd);
		return;
	}
	if (root_path(&prog, prefix, "bin/moat-tlsd") == -1 ||
	    root_path(&path, prefix, "control/servercert.pem") == -1 ||
	    ctl_line("me", &me) == -1)
		nomem();
	pid = fork();
	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		char *argv[] = {prog.s, "-g", path.s, me.s, 0};

		execv(prog.s, argv);
		_exit(111);
	}
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		log_msg("no certificate made: STARTTLS stays off until "
		        "control/servercert.pem exists");
	} else if (fchownat(fd, "servercert.pem", uids[PA_MOATD],
	                    gids[PA_MOATD], AT_SYMLINK_NOFOLLOW) == -1 ||
	           fchmodat(fd, "servercert.pem", 0400, 0) == -1) {
		die_sys(111, "unable to give control/servercert.pem to %s",
		        priv_acct_name(&names, PA_MOATD));
	} else {
		log_msg("wrote control/servercert.pem (self-signed, for %s)",
		        me.s);
		changes++;
	}
	close(fd);
	str_free(&prog);
	str_free(&path);
	str_free(&me);
}

/* a directory name in dirfd, made if missing, opened without following
 * links and given to u:g with mode */
static int
own_dir(int dirfd, const char *rel, const char *name, uid_t u, gid_t g,
        mode_t mode)
{
	int fd;

	if (mkdirat(dirfd, name, mode) == 0)
		changes++;
	else if (errno != EEXIST)
		die_sys(111, "unable to create %s/%s", shown(rel), name);
	fd = openat(dirfd, name,
	            O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		die_sys(111, "unable to open %s/%s", shown(rel), name);
	settle(fd, rel, u, g, mode, 1);
	return fd;
}

/* alias/Maildir and the .qmail files for the addresses every host needs */
static void
alias_files(void)
{
	static const char *dot[] = {".qmail-postmaster", ".qmail-mailer-daemon",
	                            ".qmail-root"};
	static const char *sub[] = {"tmp", "new", "cur"};
	uid_t u = uids[PA_ALIAS];
	gid_t g = gids[PA_ALIAS];
	size_t i;
	int afd = open_dir("alias");
	int md = own_dir(afd, "alias", "Maildir", u, g, 0700);

	for (i = 0; i < sizeof sub / sizeof *sub; i++)
		close(own_dir(md, "alias/Maildir", sub[i], u, g, 0700));
	close(md);
	for (i = 0; i < sizeof dot / sizeof *dot; i++)
		write_new(afd, "alias", dot[i], "./Maildir/\n", u, g);
	close(afd);
}

/* ------------------------------------------------------------ programs */

static void
programs(void)
{
	int bfd = open_dir("bin"), have_queue = 0;
	DIR *d = fdopendir(fcntl(bfd, F_DUPFD_CLOEXEC, 0));
	struct dirent *de;

	if (!d)
		die_sys(111, "unable to read %s", shown("bin"));
	while ((de = readdir(d))) {
		const struct priv_prog *p = priv_prog_find(de->d_name);
		char rel[NAME_MAX + 8];
		struct stat st;
		uid_t u = 0;
		mode_t mode;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof rel, "bin/%s", de->d_name);
		if (fstatat(bfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			die_sys(111, "unable to check %s", shown(rel));
		if (S_ISLNK(st.st_mode)) {
			char to[NAME_MAX + 1];
			ssize_t n =
			    readlinkat(bfd, de->d_name, to, sizeof to - 1);

			/* sendmail -> moat-sendmail and the like */
			if (n > 0 && !memchr(to, '/', (size_t)n))
				continue;
		}
		if (!S_ISREG(st.st_mode)) {
			log_msg("warning: %s is not a regular file; left alone",
			        shown(rel));
			continue;
		}
		mode = p && p->mode ? p->mode : 0755;
		if (mode & S_ISUID)
			u = uids[p->acct];
		if (p && !strcmp(p->name, "moat-queue"))
			have_queue = 1;
		fd = openat(bfd, de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1)
			die_sys(111, "unable to open %s", shown(rel));
		settle(fd, rel, u, 0, mode, 0);
		close(fd);
	}
	closedir(d);
	close(bfd);
	if (!have_queue) {
		if (!checking)
			die(100, "%s is missing: run make install first",
			    shown("bin/moat-queue"));
		log_msg("%s is missing", shown("bin/moat-queue"));
		problems++;
	}
}

/* ------------------------------------------------------------ links */

static const struct {
	const char *path; /* under --links-root */
	const char *prog; /* in PREFIX/bin */
	int optional;     /* skipped when its directory or program is not
	                     there */
} link_tab[] = {
    {"usr/sbin/sendmail", "sendmail", 0},
    {"usr/lib/sendmail", "sendmail", 1},
    {"usr/bin/mailq", "mailq", 0},
    {"usr/bin/newaliases", "newaliases", 1},
};
#define NLINKS (sizeof link_tab / sizeof *link_tab)

static void
links(const char *lroot, int add)
{
	char path[NLINKS][PATH_MAX], target[NLINKS][PATH_MAX];
	int skip[NLINKS] = {0};
	size_t i;

	for (i = 0; i < NLINKS; i++) {
		char buf[PATH_MAX], dir[PATH_MAX];
		struct stat st;
		int missing;
		ssize_t n;

		snprintf(path[i], sizeof path[i], "%s%s%s", lroot,
		         lroot[strlen(lroot) - 1] == '/' ? "" : "/",
		         link_tab[i].path);
		snprintf(target[i], sizeof target[i], "%s/bin/%s", prefix,
		         link_tab[i].prog);
		snprintf(dir, sizeof dir, "%s", path[i]);
		*strrchr(dir, '/') = 0;
		missing = stat(target[i], &st) == -1 || !S_ISREG(st.st_mode);
		if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode) ||
		    (add && missing && link_tab[i].optional)) {
			if (!add || link_tab[i].optional) {
				skip[i] = 1;
				continue;
			}
			die(100, "no directory %s for %s", dir, path[i]);
		}
		n = readlink(path[i], buf, sizeof buf - 1);
		if (n >= 0) {
			buf[n] = 0;
			if (!strcmp(buf, target[i])) {
				skip[i] = add; /* there already */
				continue;
			}
		}
		if (!add) {
			skip[i] = 1;
			if (n >= 0 || lstat(path[i], &st) == 0)
				log_msg("leaving %s alone: it is not moat's",
				        path[i]);
			continue;
		}
		if (n >= 0 || lstat(path[i], &st) == 0 || errno != ENOENT)
			die(100,
			    "refusing to replace %s: it belongs to another "
			    "mail system (remove that first); nothing changed",
			    path[i]);
		if (missing)
			die(100,
			    "%s is not installed, so %s cannot point to it; "
			    "nothing changed",
			    target[i], path[i]);
	}
	for (i = 0; i < NLINKS; i++) {
		if (skip[i])
			continue;
		if (add) {
			if (symlink(target[i], path[i]) == -1)
				die_sys(111, "unable to link %s", path[i]);
			log_msg("linked %s to %s", path[i], target[i]);
		} else {
			if (unlink(path[i]) == -1 && errno != ENOENT)
				die_sys(111, "unable to remove %s", path[i]);
			log_msg("removed %s", path[i]);
		}
		changes++;
	}
}

/* ------------------------------------------------------------ --list */

static const char *
group_name(const struct priv_entry *e)
{
	struct group *g;

	if (e->group == PA_ROOT)
		return "root";
	if (e->group == PA_GROUP)
		return names.group;
	if (gids[e->owner] != (gid_t)-1 && (g = getgrgid(gids[e->owner])))
		return g->gr_name;
	return names.acct[e->owner]; /* useradd --user-group */
}

static int
list_entry(const struct priv_entry *e, void *arg)
{
	(void)arg;
	printf("%c %04o %s %s %s\n", e->type, (unsigned)e->mode,
	       priv_acct_name(&names, e->owner), group_name(e),
	       *e->path ? e->path : ".");
	return 0;
}

static void
list(void)
{
	const struct priv_prog *p;

	priv_walk(list_entry, 0);
	for (p = priv_progs; p->name; p++)
		if (p->mode)
			printf("f %04o %s root bin/%s\n", (unsigned)p->mode,
			       p->mode & S_ISUID
			           ? priv_acct_name(&names, p->acct)
			           : "root",
			       p->name);
	for (p = priv_progs; p->name; p++)
		printf("run %s %s %s\n", p->name,
		       priv_acct_name(&names, p->acct), p->how);
}

/* ------------------------------------------------------------ main */

static int
same_names(const struct priv_names *a, const struct priv_names *b)
{
	int i;

	for (i = 0; i < PA_NACCT; i++)
		if (strcmp(a->acct[i], b->acct[i]))
			return 0;
	return !strcmp(a->group, b->group);
}

static const char *
optval(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n))
		return 0;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return 0;
	if (*i + 1 >= argc)
		usage();
	return argv[++*i];
}

int
main(int argc, char **argv)
{
	const char *uprefix = 0, *me = 0, *lroot = "/", *v;
	int i, add_links = 0, rm_links = 0, do_list = 0, r;
	str ctl = STR_INIT;
	struct priv_names want;

	log_init("moat-setup");
	for (i = 1; i < argc; i++) {
		if ((v = optval(argc, argv, &i, "--prefix")))
			prefix = v;
		else if ((v = optval(argc, argv, &i, "--user-prefix")))
			uprefix = v;
		else if ((v = optval(argc, argv, &i, "--me")))
			me = v;
		else if ((v = optval(argc, argv, &i, "--links-root")))
			lroot = v;
		else if (!strcmp(argv[i], "--sendmail-links"))
			add_links = 1;
		else if (!strcmp(argv[i], "--remove-sendmail-links"))
			rm_links = 1;
		else if (!strcmp(argv[i], "--check"))
			checking = 1;
		else if (!strcmp(argv[i], "--list"))
			do_list = 1;
		else
			usage();
	}
	if (add_links + rm_links + checking + do_list > 1)
		usage();
	if (!clean_path(prefix) || !strcmp(prefix, "/"))
		die(100,
		    "the prefix must be an absolute path without . or .. "
		    "components: %s",
		    prefix);
	if (!clean_path(lroot))
		die(100, "bad --links-root %s", lroot);
	if (me && !valid_host(me))
		die(100, "bad host name %s", me);
	if (uprefix && priv_names_default(&want, uprefix) == -1)
		die(100,
		    "bad --user-prefix %s: lower-case letters, digits, _ "
		    "and -, starting with a letter, at most %d characters "
		    "with the account name",
		    uprefix, PRIV_NAME_MAX);
	if (strcmp(prefix, MOAT_PREFIX))
		log_msg("warning: %s is not the prefix these programs were "
		        "built for (%s); moat-queue uses only the one it was "
		        "built for",
		        prefix, MOAT_PREFIX);
	umask(022);

	if (root_path(&ctl, prefix, "control") == -1)
		nomem();
	ctl_setdir(ctl.s);
	r = priv_names_load(&names);
	if (r == -1)
		die_sys(111, "unable to read %s/accounts", ctl.s);
	if (uprefix) {
		if (r == 1 && !same_names(&want, &names))
			die(100,
			    "%s/accounts names other accounts than "
			    "--user-prefix %s asks for; use the same prefix, "
			    "or remove that file",
			    ctl.s, uprefix);
		names = want;
	}

	if (do_list) {
		lookup_accounts(0);
		list();
		return fflush(stdout) == 0 ? 0 : 111;
	}
	if (getuid() != 0 || geteuid() != 0)
		die(100, "must be run as root");

	if (rm_links) {
		links(lroot, 0);
		return 0;
	}
	if (checking) {
		lookup_accounts(1);
		if (problems)
			die(100, "%d problem%s", problems,
			    problems == 1 ? "" : "s");
		open_root();
		priv_walk(make_entry, 0);
		programs();
		if (problems)
			die(100, "%d problem%s", problems,
			    problems == 1 ? "" : "s");
		printf("%s matches the tables\n", prefix);
		return 0;
	}

	ensure_group();
	for (i = 0; i < PA_NACCT; i++)
		ensure_account(i);
	open_root();
	priv_walk(make_entry, 0);
	control_files(me);
	server_cert();
	alias_files();
	programs();
	if (add_links)
		links(lroot, 1);
	log_msg("%s is ready (%d change%s)", prefix, changes,
	        changes == 1 ? "" : "s");
	str_free(&ctl);
	return 0;
}
