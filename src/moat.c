/*
 * moat: the front end.
 *
 *   moat run [--root DIR] [--listen ADDR:PORT]... [--user NAME] [--domain D]...
 *            [--hold]
 *   moat adduser [--root DIR] [--user NAME] MAILBOX...
 *   moat queue [--root DIR] [--json] [ID...]
 *   moat queue remove [--root DIR] ID...
 *   moat queue retry [--root DIR] [ID...]
 *   moat stat [--root DIR] [--json]
 *   moat ctl [--root DIR] [--json] [NAME...]
 *   moat check [--root DIR]
 *   moat log [ID [--file FILE]]
 *   moat smtpuser [--root DIR] [--delete] NAME
 *   moat setup [OPTION...]      (moat-setup(8): the installed system)
 *
 * `moat run` is the embedded default: one directory (default ./moat-data)
 * holding control/, queue/, users/ and mail/, created on first use, and
 * the listener (moat-tcpd running moat-smtpd) in the foreground, logging to
 * stderr, until SIGINT or SIGTERM stops everything it started.  Control
 * files are written only when missing (me, locals, rcpthosts: localhost and
 * any --domain), so what an administrator puts there stays.  Started by
 * root, it binds the ports, gives the directory to --user (default nobody)
 * and drops to that account before anything else runs: nothing stays root.
 * --hold accepts mail into the queue and delivers none (no moat-send).
 *
 * The operator tools work on --root, else $MOAT_ROOT, else ./moat-data if
 * it exists, else the installed prefix.  They read the queue as moat-send
 * leaves it (see moat-send.c) and need the rights of its owners: root on
 * an installed system, the run account under `moat run`.
 *
 * `moat smtpuser NAME` sets NAME's SMTP AUTH password in control/smtpusers:
 * the first line of standard input (asked for without echo on a terminal),
 * hashed by crypt(3) with its preferred method and a random salt; --delete
 * removes NAME.  The file is replaced through a temporary file and a
 * rename, keeping its owner and mode; a new one is mode 0600, owned as
 * control/servercert.pem is (the account that runs STARTTLS), else as
 * control/.
 *
 * `moat queue` lists the committed messages (todo/ or info/): id, age,
 * size, sender, then each recipient with its channel (local, remote; "to"
 * before preprocessing) and state: pending (with the next try, from the
 * channel file's mtime), done, or bounced (listed in bounce/, or its last
 * result in error/ a permanent failure), and for pending and bounced ones
 * the last error moat-send recorded in queue/error (lasterr.h).  With
 * IDs, only those.  --json prints one object {"messages": [...], "count":
 * N}; each message has id, arrival, age, size, sender, preprocessed,
 * bounce_waiting and recipients, each with address, channel (null before
 * preprocessing), state, next_try (Unix time or null) and last_error
 * (null or {kind: deferral|failure, time, text}); strings are escaped as
 * json.h says.
 *
 * `moat stat`: messages, how many are not yet preprocessed (and their
 * recipients), local and remote recipients pending, those pending after
 * an error, bounces waiting, the oldest message's age; --json likewise.
 *
 * `moat queue remove ID...` is safe while moat-send runs.  moat-send holds
 * an exclusive flock on queue/info while it runs, and
 *   - when it runs, the message is moat-send's: once it is preprocessed
 *     (a message still in todo/ is waited for, at most REMOVE_WAIT
 *     seconds, then reported as "try again", exit 111) its bounce/ file is
 *     removed and its pending 'T' records are flipped to done 'D' in place
 *     (fsynced), as moat-send itself marks them; moat-send gets SIGALRM,
 *     re-reads the channel files on that attempt, finds nothing pending
 *     and retires the message.  A delivery already running is not
 *     stopped: it finishes, and a permanent failure of it still bounces.
 *   - when it does not run, moat takes the lock itself (a moat-send that
 *     starts meanwhile waits for it) and removes the message's files, the
 *     commit marks (todo, info) before mess, so a crash leaves at worst an
 *     orphaned mess/ file that moat-send reaps.  Pending bounces are
 *     dropped too: a removed message reports nothing.
 * Exit 0, 100 when an id is not queued, 111 when one could not be removed.
 *
 * `moat queue retry [ID...]` sends moat-send SIGALRM (its pid from
 * queue/info/pid, checked against /proc/PID/comm), which tries every
 * pending recipient now: moat-send has one retry signal.  With IDs it
 * also sets their channel files' mtimes (the next retry) to now, so they
 * are due at once when moat-send is not running and starts later.
 *
 * `moat ctl` prints every control file of ctl_table (control.h) with its
 * effective value, where the value came from (file; default; derived
 * "from NAME (...)" for "=NAME" defaults; host name; unset; or an error)
 * and its default; with NAMEs only those, lists in full.  --json gives
 * name, kind, value (string, number, list of strings, or for a cdb
 * whether it exists), default, source (file, default, derived, hostname,
 * unset, error), derived_from, origin (the text), error and doc.
 *
 * `moat check` prints one line per finding, "error: ..." or "warning:
 * ...", then a summary; exit 1 if there is an error.  Errors: no
 * control/me (or empty); no rcpthosts, or an entry that is not a domain,
 * "." or a one-label suffix such as ".com"; a relayclients line that is
 * not a rule, or one covering most of the Internet; virtualdomains or
 * smtproutes lines without ':'; a control file that cannot be read or a
 * number that does not parse; queue directories (queue_dirs) missing or
 * with the wrong type, mode or owner (moatq/moats when those accounts
 * exist and own the queue, else queue/'s owner); lock/trigger missing or
 * not a fifo (on an installed system: not writable by moat-queue); a
 * users/assign moat-newu would refuse, a users/cdb missing or older than
 * users/assign; a missing program (moat-queue not setuid moatq on an
 * installed system).  Warnings: control files nothing reads, an empty
 * rcpthosts, a users/cdb without users/assign, nobody taking postmaster,
 * no remote delivery programs.
 *
 * `moat log` prints the log format (also in moat(8)); `moat log ID` prints
 * the lines of a log (--file, else stdin) about message ID: its arrival,
 * preprocessing, bounce and end, and its deliveries, which are numbered
 * by slot: "starting delivery N: msg ID" ties N to ID until as many
 * "delivery N:" results have followed; a moat-send "started:" line resets
 * the numbering.  Lines may have any prefix (time stamps).
 *
 * Runs as: the caller (moat run as root: root only until the ports are
 * bound).  Exit codes: 0 success, 100 usage error, 111 system error
 * (moat check: 1 when it found an error).
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "io.h"
#include "ipmatch.h"
#include "json.h"
#include "lasterr.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"
#include "users.h"

#define MAX_LISTEN 16

static int slurp(const char *, str *);

static _Noreturn void
usage(void)
{
	/* not through die(): it would show the newlines as \x0a */
	fputs("usage: moat run [--root DIR] [--listen ADDR:PORT]... "
	      "[--user NAME] [--domain DOMAIN]... [--hold]\n"
	      "       moat adduser [--root DIR] [--user NAME] MAILBOX...\n"
	      "       moat queue [--root DIR] [--json] [ID...]\n"
	      "       moat queue remove [--root DIR] ID...\n"
	      "       moat queue retry [--root DIR] [ID...]\n"
	      "       moat stat [--root DIR] [--json]\n"
	      "       moat ctl [--root DIR] [--json] [NAME...]\n"
	      "       moat check [--root DIR]\n"
	      "       moat log [ID [--file FILE]]\n"
	      "       moat smtpuser [--root DIR] [--delete] NAME\n"
	      "       moat setup [moat-setup options]\n",
	      stderr);
	_exit(100);
}

/* "--opt value" or "--opt=value"; advances *i */
static const char *
optval(int argc, char **argv, int *i, const char *opt)
{
	size_t n = strlen(opt);

	if (!strncmp(argv[*i], opt, n)) {
		if (argv[*i][n] == '=')
			return argv[*i] + n + 1;
		if (argv[*i][n] == 0) {
			if (*i + 1 >= argc)
				usage();
			return argv[++*i];
		}
	}
	return 0;
}

/* ------------------------------------------------------------ moat run */

static int
write_if_missing(const char *path, const char *content)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0644);
	size_t n = strlen(content);

	if (fd == -1)
		return errno == EEXIST ? 0 : -1;
	if (write(fd, content, n) != (ssize_t)n || fsync(fd) == -1) {
		close(fd);
		unlink(path);
		return -1;
	}
	return close(fd);
}

static void
mkdir_p(const char *p, mode_t mode)
{
	if (mkdir(p, mode) == -1 && errno != EEXIST)
		die_sys(111, "unable to create %s", p);
}

static uid_t chown_uid;
static gid_t chown_gid;

static int
chown_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	/* the leaves (queue/mess/N, mail/NAME/Maildir, ...: three levels
	 * down) hold only what moat's programs wrote as the run account:
	 * when a leaf is ours already, skip it, so that a start with a big
	 * queue does not stat every message.  Directories higher up are
	 * always walked: a new version may have added one as root. */
	if (flag == FTW_D && f->level >= 3 && st->st_uid == chown_uid)
		return FTW_SKIP_SUBTREE;
	if (st->st_uid != chown_uid &&
	    lchown(p, chown_uid, chown_gid) == -1)
		return FTW_STOP;
	return FTW_CONTINUE;
}

static void
init_root(const char *root, str *domains)
{
	str p = STR_INIT, list = STR_INIT;
	const char *what;
	size_t i;

	mkdir_p(root, 0755);
	root_path(&p, root, "control");
	mkdir_p(p.s, 0755);
	root_path(&p, root, "users");
	mkdir_p(p.s, 0755);
	root_path(&p, root, "mail");
	mkdir_p(p.s, 0700);
	dir_spread(p.s); /* each mailbox in a block group of its own */

	if (str_copys(&list, "localhost\n") == -1)
		die(111, "out of memory");
	for (i = 0; i < domains->len; i += strlen(domains->s + i) + 1)
		if (str_cats(&list, domains->s + i) == -1 ||
		    str_catc(&list, '\n') == -1 || str_0(&list) == -1)
			die(111, "out of memory");
	if (str_0(&list) == -1)
		die(111, "out of memory");
	root_path(&p, root, "control/me");
	if (write_if_missing(p.s, "localhost\n") == -1)
		die_sys(111, "unable to write %s", p.s);
	root_path(&p, root, "control/locals");
	if (write_if_missing(p.s, list.s) == -1)
		die_sys(111, "unable to write %s", p.s);
	root_path(&p, root, "control/rcpthosts");
	if (write_if_missing(p.s, list.s) == -1)
		die_sys(111, "unable to write %s", p.s);

	root_path(&p, root, "queue");
	if (queue_create(p.s, (uid_t)-1, (uid_t)-1, (gid_t)-1, &what) == -1)
		die_sys(111, "unable to create %s", what);
	str_free(&p);
	str_free(&list);
}

/* "127.0.0.1:2525" or "[::1]:2525" */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon;
	char *end;
	unsigned long port;
	size_t hl;

	memset(ss, 0, sizeof *ss);
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = 0;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port > 65535)
		return -1;
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((unsigned short)port);
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		*len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((unsigned short)port);
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		*len = sizeof *a;
	}
	return 0;
}

static int
bind_listen(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	if (parse_listen(spec, &ss, &len) == -1)
		die(100, "bad listen address %s (want 127.0.0.1:2525 or "
			 "[::1]:2525)",
		    spec);
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd == -1)
		die_sys(111, "unable to create a socket for %s", spec);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&ss, len) == -1)
		die_sys(111, "unable to bind %s", spec);
	if (listen(fd, 128) == -1)
		die_sys(111, "unable to listen on %s", spec);
	return fd;
}

static void
drop_to(const struct passwd *pw)
{
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		die_sys(111, "unable to switch to user %s", pw->pw_name);
	if (getuid() == 0 || geteuid() == 0)
		die(111, "still root after switching to %s", pw->pw_name);
}

static volatile sig_atomic_t stopping;

static void
on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

static void
on_alarm(int sig)
{
	(void)sig; /* only interrupts waitpid */
}

static pid_t
spawn_tcpd(int *fds, int nfds)
{
	str tcpd = STR_INIT, smtpd = STR_INIT;
	pid_t pid;

	if (bin_path(&tcpd, "moat-tcpd") == -1 ||
	    bin_path(&smtpd, "moat-smtpd") == -1)
		die_sys(111, "unable to find the moat programs");
	pid = fork();
	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		char n[16], me[24];
		char *argv[] = {tcpd.s, "-F", "--", smtpd.s, 0};
		int i;

		/* move the sockets to 3, 4, ... as socket activation does;
		 * first out of the way so none is overwritten */
		for (i = 0; i < nfds; i++) {
			fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + MAX_LISTEN);
			if (fds[i] == -1)
				_exit(111);
		}
		for (i = 0; i < nfds; i++)
			if (dup2(fds[i], 3 + i) == -1)
				_exit(111);
		snprintf(n, sizeof n, "%d", nfds);
		snprintf(me, sizeof me, "%ld", (long)getpid());
		setenv("LISTEN_FDS", n, 1);
		setenv("LISTEN_PID", me, 1);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execv(tcpd.s, argv);
		_exit(111);
	}
	str_free(&tcpd);
	str_free(&smtpd);
	return pid;
}

/* a self-signed certificate for STARTTLS on first start (moat-tlsd -g);
 * without one moat runs on, offering no STARTTLS */
static void
make_cert(void)
{
	str path = STR_INIT, me = STR_INIT;
	pid_t pid;
	int status;

	if (access("control/servercert.pem", F_OK) == 0)
		return;
	if (bin_path(&path, "moat-tlsd") == -1 || ctl_line("me", &me) == -1)
		die(111, "out of memory");
	pid = fork();
	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		char *argv[] = {path.s, "-g", "control/servercert.pem", me.s, 0};

		execv(path.s, argv);
		_exit(111);
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	if (access("control/servercert.pem", R_OK) == 0)
		log_msg("made a self-signed certificate for %s in "
			"control/servercert.pem, for STARTTLS",
			me.s);
	else
		log_msg("no control/servercert.pem: STARTTLS is not offered");
	str_free(&path);
	str_free(&me);
}

/* the account that owns a run directory's mailboxes */
struct owner {
	uid_t uid;
	gid_t gid;
	char name[64];
};

static void
owner_of(struct owner *o, const struct passwd *pw)
{
	struct passwd *me = pw ? 0 : getpwuid(getuid());

	o->uid = pw ? pw->pw_uid : getuid();
	o->gid = pw ? pw->pw_gid : getgid();
	snprintf(o->name, sizeof o->name, "%s",
		 pw ? pw->pw_name : me ? me->pw_name : "moat");
}

static int
valid_name(const char *n)
{
	size_t i;

	if (!*n || *n == '.' || *n == '-' || strlen(n) > 64)
		return 0;
	for (i = 0; n[i]; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') ||
		      (n[i] >= '0' && n[i] <= '9') || strchr("._-", n[i])))
			return 0;
	return 1;
}

/* ROOT/mail/NAME/Maildir and NAME's users/assign entries (exact, and
 * NAME-ext for extensions), then users/cdb; existing ones are kept */
static void
ensure_mailbox(const char *root, const char *name, const struct owner *o)
{
	str p = STR_INIT, assign = STR_INIT, out = STR_INIT, line = STR_INIT;
	const char *err, *sub[] = {"", "/Maildir", "/Maildir/tmp",
				   "/Maildir/new", "/Maildir/cur"};
	size_t i = 0;
	int fd, have = 0;

	for (i = 0; i < sizeof sub / sizeof *sub; i++) {
		p.len = 0;
		if (str_cats(&p, root) == -1 || str_cats(&p, "/mail/") == -1 ||
		    str_cats(&p, name) == -1 || str_cats(&p, sub[i]) == -1 ||
		    str_0(&p) == -1)
			die(111, "out of memory");
		mkdir_p(p.s, 0700);
		if (geteuid() == 0 && lchown(p.s, o->uid, o->gid) == -1)
			die_sys(111, "unable to give %s to %s", p.s, o->name);
	}
	root_path(&p, root, "users/assign");
	if (slurp(p.s, &assign) == -1 && errno != ENOENT)
		die_sys(111, "unable to read %s", p.s);
	/* keep every line but the final "."; see whether NAME is there */
	if (str_cats(&line, "=") == -1 || str_cats(&line, name) == -1 ||
	    str_cats(&line, ":") == -1 || str_0(&line) == -1)
		die(111, "out of memory");
	for (i = 0; i < assign.len;) {
		char *nl = memchr(assign.s + i, '\n', assign.len - i);
		size_t l = nl ? (size_t)(nl - assign.s - i) : assign.len - i;

		if (!(l == 1 && assign.s[i] == '.')) {
			if (l >= line.len && !memcmp(assign.s + i, line.s, line.len))
				have = 1;
			if (str_catb(&out, assign.s + i, l) == -1 ||
			    str_catc(&out, '\n') == -1)
				die(111, "out of memory");
		}
		i += l + 1;
	}
	if (!have) {
		char buf[1024];
		int n = snprintf(buf, sizeof buf,
				 "=%s:%s:%ld:%ld:%s/mail/%s:::\n"
				 "+%s-:%s:%ld:%ld:%s/mail/%s:-::\n",
				 name, o->name, (long)o->uid, (long)o->gid, root,
				 name, name, o->name, (long)o->uid,
				 (long)o->gid, root, name);
		if (n < 0 || (size_t)n >= sizeof buf)
			die(100, "path too long: %s", root);
		if (str_cats(&out, buf) == -1)
			die(111, "out of memory");
	}
	if (str_cats(&out, ".\n") == -1)
		die(111, "out of memory");
	if (!have) {
		str tmp = STR_INIT;

		root_path(&tmp, root, "users/assign.tmp");
		fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
				     O_CLOEXEC, 0644);
		if (fd == -1 || write(fd, out.s, out.len) != (ssize_t)out.len ||
		    fsync(fd) == -1 || close(fd) == -1 ||
		    rename(tmp.s, p.s) == -1)
			die_sys(111, "unable to write %s", p.s);
		str_free(&tmp);
	}
	root_path(&p, root, "users/cdb");
	if (!have || access(p.s, F_OK) == -1) {
		if (users_compile(root, &err) != 0)
			die(111, "unable to compile users/assign: %s",
			    err ? err : strerror(errno));
	}
	if (geteuid() == 0) {
		const char *f[] = {"users/assign", "users/cdb"};
		for (i = 0; i < 2; i++) {
			root_path(&p, root, f[i]);
			if (lchown(p.s, o->uid, o->gid) == -1 && errno != ENOENT)
				die_sys(111, "unable to give %s to %s", p.s,
					o->name);
		}
	}
	str_free(&p);
	str_free(&assign);
	str_free(&out);
	str_free(&line);
}

static const char *
default_root(void)
{
	const char *r = getenv("MOAT_ROOT");

	return r && *r ? r : "./moat-data";
}

static int
cmd_adduser(int argc, char **argv)
{
	const char *root = default_root(), *user = "nobody", *v;
	struct passwd *pw = 0;
	struct owner o;
	str none = STR_INIT;
	char abs[PATH_MAX];
	int i, n = 0;

	for (i = 2; i < argc; i++) {
		if ((v = optval(argc, argv, &i, "--root")))
			root = v;
		else if ((v = optval(argc, argv, &i, "--user")))
			user = v;
		else if (argv[i][0] == '-')
			usage();
		else if (!valid_name(argv[i]))
			die(100, "bad mailbox name %s: use a-z, 0-9, . _ -",
			    argv[i]);
		else
			n++;
	}
	if (!n)
		usage();
	if (geteuid() == 0) {
		pw = getpwnam(user);
		if (!pw || pw->pw_uid == 0)
			die(100, "give --user with an unprivileged account");
	}
	owner_of(&o, pw);
	umask(022);
	init_root(root, &none);
	if (!realpath(root, abs))
		die_sys(111, "unable to resolve %s", root);
	ensure_mailbox(abs, "postmaster", &o);
	for (i = 2; i < argc; i++) {
		if (!strncmp(argv[i], "--", 2)) {
			if (!strchr(argv[i], '='))
				i++;
			continue;
		}
		ensure_mailbox(abs, argv[i], &o);
		printf("%s: %s/mail/%s/Maildir/\n", argv[i], abs, argv[i]);
	}
	if (pw) {
		chown_uid = pw->pw_uid;
		chown_gid = pw->pw_gid;
		if (nftw(abs, chown_one, 32, FTW_PHYS | FTW_ACTIONRETVAL) != 0)
			die_sys(111, "unable to give %s to %s", abs, user);
	}
	return 0;
}

/* the processes `moat run` started, to stop and reap */
#define MAX_CHILD 8
static struct {
	pid_t pid;
	const char *name;
} child[MAX_CHILD];
static int nchild;

static void
track(pid_t pid, const char *name)
{
	if (nchild < MAX_CHILD) {
		child[nchild].pid = pid;
		child[nchild++].name = name;
	}
}

/* fd to fd numbers `at`: out of the way first so none is overwritten */
static void
place_fds(const int *from, const int *at, int n)
{
	int tmp[8], i;

	for (i = 0; i < n; i++)
		if ((tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 20)) == -1)
			_exit(111);
	for (i = 0; i < n; i++)
		if (dup2(tmp[i], at[i]) == -1)
			_exit(111);
}

/* run bin/prog with the given descriptors in place */
static pid_t
spawn(const char *prog, const int *from, const int *at, int n)
{
	str path = STR_INIT;
	pid_t pid;

	if (bin_path(&path, prog) == -1)
		die_sys(111, "unable to find %s", prog);
	pid = fork();
	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		char *argv[] = {path.s, 0};

		place_fds(from, at, n);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		execv(path.s, argv);
		_exit(111);
	}
	str_free(&path);
	track(pid, prog);
	return pid;
}

static int
have_prog(const char *prog)
{
	str path = STR_INIT;
	int r = bin_path(&path, prog) == 0 && access(path.s, X_OK) == 0;

	str_free(&path);
	return r;
}

/* moat-send with moat-clean, moat-lspawn and (when built) moat-rspawn,
 * connected by sockets as moat-start connects them */
static void
start_chain(void)
{
	int l[2], r[2] = {-1, -1}, c[2];
	int at01[2] = {0, 1};

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c) == -1)
		die_sys(111, "unable to create sockets");
	{
		int f[2] = {l[1], l[1]};
		spawn("moat-lspawn", f, at01, 2);
	}
	{
		int f[2] = {c[1], c[1]};
		spawn("moat-clean", f, at01, 2);
	}
	if (have_prog("moat-rspawn")) {
		int f[2];

		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r) == -1)
			die_sys(111, "unable to create sockets");
		f[0] = f[1] = r[1];
		spawn("moat-rspawn", f, at01, 2);
		close(r[1]);
	}
	{
		int f[3] = {l[0], r[0], c[0]}, at[3] = {3, 4, 5};

		spawn("moat-send", r[0] == -1 ? (int[]){l[0], c[0]} : f,
		      r[0] == -1 ? (int[]){3, 5} : at, r[0] == -1 ? 2 : 3);
	}
	close(l[0]);
	close(l[1]);
	close(c[0]);
	close(c[1]);
	if (r[0] != -1)
		close(r[0]);
}

static const char *
child_name(pid_t pid)
{
	int i;

	for (i = 0; i < nchild; i++)
		if (child[i].pid == pid)
			return child[i].name;
	return 0;
}

static void
forget(pid_t pid)
{
	int i;

	for (i = 0; i < nchild; i++)
		if (child[i].pid == pid)
			child[i] = child[--nchild];
}

static int
in_chain(const char *name)
{
	return strcmp(name, "moat-tcpd") != 0;
}

/* a helper of the delivery chain died: stop the rest of the chain, wait
 * for it, start it again (moat-send rebuilds its state from the queue) */
static int
restart_chain(time_t *starts, int *nstarts)
{
	time_t t = time(0);
	int i, status;

	memmove(starts + 1, starts, 4 * sizeof *starts);
	starts[0] = t;
	if (++*nstarts >= 5 && t - starts[4] < 60) {
		log_msg("the delivery chain keeps failing; stopping");
		return -1;
	}
	for (i = 0; i < nchild; i++)
		if (in_chain(child[i].name))
			kill(child[i].pid, SIGTERM);
	alarm(10);
	for (;;) {
		pid_t r;

		for (i = 0; i < nchild && !in_chain(child[i].name); i++)
			;
		if (i == nchild)
			break;
		r = waitpid(-1, &status, 0);
		if (r == -1 && errno == EINTR) {
			for (i = 0; i < nchild; i++)
				if (in_chain(child[i].name))
					kill(child[i].pid, SIGKILL);
			continue;
		}
		if (r == -1)
			break;
		if (child_name(r) && !in_chain(child_name(r)))
			return -1; /* the listener died too */
		forget(r);
	}
	alarm(0);
	if (stopping)
		return -1;
	log_msg("restarting the delivery chain");
	start_chain();
	return 0;
}

/* wait for a stop signal or a dying child.  A dead delivery helper
 * restarts the chain; a dead listener, or a stop signal, stops all: the
 * listener and moat-send first (it finishes running deliveries), the
 * helpers follow when their sockets close */
static int
supervise(void)
{
	int status, failed = 0, i, nstarts = 0;
	time_t deadline = 0, starts[5] = {0};

	while (nchild) {
		pid_t r;

		if (stopping && !deadline) {
			for (i = 0; i < nchild; i++)
				if (!strcmp(child[i].name, "moat-tcpd") ||
				    !strcmp(child[i].name, "moat-send"))
					kill(child[i].pid, SIGTERM);
			deadline = time(0) + 150;
			alarm(1);
		}
		if (deadline && time(0) > deadline) {
			for (i = 0; i < nchild; i++)
				kill(child[i].pid, SIGKILL);
			deadline = time(0) + 3600;
		}
		r = waitpid(-1, &status, 0);
		if (r == -1) {
			if (errno == EINTR) {
				if (deadline)
					alarm(1);
				continue;
			}
			break;
		}
		if (!child_name(r))
			continue;
		if (!stopping) {
			const char *name = child_name(r);

			log_msg("%s ended unexpectedly (status %d)", name,
				WIFEXITED(status) ? WEXITSTATUS(status)
						  : 128 + WTERMSIG(status));
			forget(r);
			if (in_chain(name) &&
			    restart_chain(starts, &nstarts) == 0)
				continue;
			failed = 1;
			stopping = 1;
			continue;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			log_msg("%s ended with status %d", child_name(r),
				WIFEXITED(status) ? WEXITSTATUS(status)
						  : 128 + WTERMSIG(status));
		}
		forget(r);
	}
	log_msg(failed ? "stopped after a failure" : "stopped");
	return failed ? 111 : 0;
}

static int
cmd_run(int argc, char **argv)
{
	const char *root = "./moat-data", *user = "nobody", *v;
	const char *listen_on[MAX_LISTEN];
	int nlisten = 0, fds[MAX_LISTEN], i, hold = 0;
	str domains = STR_INIT;
	char abs[PATH_MAX];
	struct passwd *pw = 0;
	struct sigaction sa;
	struct owner o;
	pid_t tcpd;

	for (i = 2; i < argc; i++) {
		if ((v = optval(argc, argv, &i, "--root")))
			root = v;
		else if ((v = optval(argc, argv, &i, "--user")))
			user = v;
		else if (!strcmp(argv[i], "--hold"))
			hold = 1;
		else if ((v = optval(argc, argv, &i, "--listen"))) {
			if (nlisten == MAX_LISTEN)
				die(100, "at most %d --listen", MAX_LISTEN);
			listen_on[nlisten++] = v;
		} else if ((v = optval(argc, argv, &i, "--domain"))) {
			if (strchr(v, '\n') || strchr(v, '/') || !*v)
				die(100, "bad domain %s", v);
			if (str_cats(&domains, v) == -1 ||
			    str_catc(&domains, 0) == -1)
				die(111, "out of memory");
		} else
			usage();
	}
	if (!nlisten)
		listen_on[nlisten++] = "127.0.0.1:2525";

	if (geteuid() == 0) {
		pw = getpwnam(user);
		if (!pw)
			die(111, "no such user %s (give --user NAME)", user);
		if (pw->pw_uid == 0)
			die(100, "refusing to run the MTA as root: give --user "
				 "with an unprivileged account");
	}
	umask(022);
	init_root(root, &domains);
	if (!realpath(root, abs))
		die_sys(111, "unable to resolve %s", root);
	owner_of(&o, pw);
	ensure_mailbox(abs, "postmaster", &o);
	if (pw) {
		chown_uid = pw->pw_uid;
		chown_gid = pw->pw_gid;
		if (nftw(abs, chown_one, 32, FTW_PHYS | FTW_ACTIONRETVAL) != 0)
			die_sys(111, "unable to give %s to %s", abs, user);
	}
	for (i = 0; i < nlisten; i++)
		fds[i] = bind_listen(listen_on[i]);
	if (pw)
		drop_to(pw);
	if (chdir(abs) == -1)
		die_sys(111, "unable to enter %s", abs);
	setenv("MOAT_ROOT", abs, 1);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, 0);
	sigaction(SIGTERM, &sa, 0);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, 0);
	signal(SIGPIPE, SIG_IGN);

	/* tells moat-smtpd to judge recipients by the user table alone */
	setenv("MOAT_SINGLE_USER", "1", 1);
	if (paths_setup_control(abs) == -1)
		die(111, "out of memory");
	make_cert();
	if (!hold)
		start_chain();
	else
		log_msg("--hold: accepting mail into the queue, delivering none");
	tcpd = spawn_tcpd(fds, nlisten);
	track(tcpd, "moat-tcpd");
	for (i = 0; i < nlisten; i++)
		close(fds[i]);
	for (i = 0; i < nlisten; i++)
		log_msg("listening on %s", listen_on[i]);
	log_msg("running in %s as uid %ld; stop with Ctrl-C", abs,
		(long)getuid());
	return supervise();
}

/* ------------------------------------------------------ operator tools */

/* read a whole file; -1 with errno (ENOENT: no such file) */
static int
slurp(const char *path, str *out)
{
	return io_readfile(path, out, (size_t)-1, O_NOFOLLOW);
}

/* the options of the operator commands; the rest are arguments */
struct opts {
	const char *root;
	const char *file;
	int json;
	int del; /* --delete */
	char **arg;
	int narg;
};

static void
get_opts(int argc, char **argv, int first, const char *allow, struct opts *o)
{
	const char *v;
	int i;

	memset(o, 0, sizeof *o);
	o->arg = calloc((size_t)argc + 1, sizeof *o->arg);
	if (!o->arg)
		die(111, "out of memory");
	for (i = first; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (++i < argc)
				o->arg[o->narg++] = argv[i];
			break;
		}
		if (strchr(allow, 'r') &&
		    (v = optval(argc, argv, &i, "--root")))
			o->root = v;
		else if (strchr(allow, 'f') &&
		         (v = optval(argc, argv, &i, "--file")))
			o->file = v;
		else if (strchr(allow, 'j') && !strcmp(argv[i], "--json"))
			o->json = 1;
		else if (strchr(allow, 'd') && !strcmp(argv[i], "--delete"))
			o->del = 1;
		else if (argv[i][0] == '-' && argv[i][1])
			usage();
		else
			o->arg[o->narg++] = argv[i];
	}
}

/* --root, else MOAT_ROOT, else ./moat-data if it exists, else the prefix */
static const char *
pick_root(const char *given)
{
	const char *r = getenv("MOAT_ROOT");
	struct stat st;

	if (given && *given)
		return given;
	if (r && *r)
		return r;
	if (stat("moat-data", &st) == 0 && S_ISDIR(st.st_mode))
		return "moat-data";
	return root_dir(0);
}

static const char *
enter_queue(const char *root)
{
	static str p = STR_INIT;

	if (root_path(&p, root, "queue") == -1)
		die(111, "out of memory");
	if (chdir(p.s) == -1)
		die_sys(111, "unable to enter %s", p.s);
	return p.s;
}

/* a message id: decimal digits only, no overflow */
static int
parse_id(const char *s, unsigned long long *id)
{
	size_t i;

	*id = 0;
	if (!*s || strlen(s) > 20)
		return -1;
	for (i = 0; s[i]; i++)
		if (s[i] < '0' || s[i] > '9' ||
		    __builtin_mul_overflow(*id, 10, id) ||
		    __builtin_add_overflow(*id, (unsigned)(s[i] - '0'), id))
			return -1;
	return 0;
}

static unsigned long long *
parse_ids(char **arg, int n)
{
	unsigned long long *ids = calloc((size_t)n + 1, sizeof *ids);
	int i;

	if (!ids)
		die(111, "out of memory");
	for (i = 0; i < n; i++)
		if (parse_id(arg[i], &ids[i]) == -1)
			die(100,
			    "bad message id %s: want the number moat queue "
			    "shows",
			    arg[i]);
	return ids;
}

/* does queue/DIR/N/id exist?  (in the queue directory) */
static int
qexists(const char *dir, unsigned long long id)
{
	str f = STR_INIT;
	int r;

	if (queue_file(&f, dir, id) == -1)
		die(111, "out of memory");
	r = access(f.s, F_OK) == 0;
	if (!r && errno != ENOENT)
		die_sys(111, "unable to look at %s", f.s);
	str_free(&f);
	return r;
}

static void
fmt_age(char *buf, size_t size, time_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		snprintf(buf, size, "%lds", (long)secs);
	else if (secs < 7200)
		snprintf(buf, size, "%ldm", (long)(secs / 60));
	else if (secs < 172800)
		snprintf(buf, size, "%ldh", (long)(secs / 3600));
	else
		snprintf(buf, size, "%ldd", (long)(secs / 86400));
}

/* print escaped so a hostile address or text cannot forge lines */
static void
print_esc(const char *fmt, const char *s, size_t n)
{
	char buf[4200];

	log_escape(buf, sizeof buf, s, n);
	printf(fmt, buf);
}

static void
print_addr(const char *s, size_t n)
{
	print_esc("<%s>", s, n);
}

static void
json_out(const str *j)
{
	if (fwrite(j->s, 1, j->len, stdout) != j->len)
		die_sys(111, "unable to write");
}

/* append s; j stays NUL-terminated */
static void
jcat(str *j, const char *s)
{
	if (str_cats(j, s) == -1 || str_0(j) == -1)
		die(111, "out of memory");
}

static void
jnum(str *j, long long v)
{
	char b[32];

	snprintf(b, sizeof b, "%lld", v);
	jcat(j, b);
}

static void
jstr(str *j, const char *s)
{
	if (json_strs(j, s) == -1)
		die(111, "out of memory");
}

/* ---------------------------------------------------- reading the queue */

static int
cmp_id(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a,
	                   y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

/* every id with a mess/ file: every message has one */
static unsigned long long *
queue_ids(size_t *count)
{
	unsigned long long *ids = 0;
	size_t n = 0, cap = 0;
	int i;

	for (i = 0; i < QUEUE_SPLIT; i++) {
		char d[32];
		DIR *dir;
		struct dirent *e;

		snprintf(d, sizeof d, "mess/%d", i);
		dir = opendir(d);
		if (!dir)
			die_sys(111, "unable to read %s", d);
		while ((e = readdir(dir))) {
			unsigned long long id;

			if (parse_id(e->d_name, &id) == -1)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				unsigned long long *ni;

				if (nc > SIZE_MAX / sizeof *ids ||
				    !(ni = realloc(ids, nc * sizeof *ids)))
					die(111, "out of memory");
				ids = ni;
				cap = nc;
			}
			ids[n++] = id;
		}
		closedir(dir);
	}
	if (n)
		qsort(ids, n, sizeof *ids, cmp_id);
	*count = n;
	return ids;
}

enum { R_PENDING, R_DONE, R_BOUNCED };
static const char *const state_name[] = {"pending", "done", "bounced"};
static const char *const chan_name[] = {"local", "remote"};

struct qrcpt {
	const char *addr;
	int chan;  /* 0 local, 1 remote, -1 not yet preprocessed */
	int state; /* R_... */
	const struct lasterr_ent *err;
	const char *btext; /* its failure in bounce/, if listed there */
};

struct qmsg {
	unsigned long long id;
	int todo; /* not yet preprocessed */
	long long size;
	time_t arrival;
	const char *sender;
	str env, chan[2], bounce;
	time_t next[2]; /* channel file mtimes: the next retry */
	struct lasterr errs;
	struct qrcpt *r;
	size_t nr, cap;
	size_t pending[2], todo_rcpts;
};

static void
add_rcpt(struct qmsg *m, const char *addr, int chan, int state)
{
	struct qrcpt *r;

	if (m->nr == m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 16;

		if (nc > SIZE_MAX / sizeof *r ||
		    !(r = realloc(m->r, nc * sizeof *r)))
			die(111, "out of memory");
		m->r = r;
		m->cap = nc;
	}
	r = &m->r[m->nr++];
	r->addr = addr;
	r->chan = chan;
	r->state = state;
	r->err = 0;
	r->btext = 0;
}

/* the failure text bounce/ holds for addr (triples T, S, D), or NULL */
static const char *
bounce_text(const struct qmsg *m, const char *addr)
{
	size_t i = 0;
	const char *t = 0;

	while (i < m->bounce.len) {
		const char *f = m->bounce.s + i;
		size_t l = strnlen(f, m->bounce.len - i);

		if (i + l >= m->bounce.len)
			break;
		i += l + 1;
		if (f[0] == 'T')
			t = strcmp(f + 1, addr) ? 0 : f;
		else if (f[0] == 'D' && t)
			return f + 1;
	}
	return 0;
}

/* NUL-terminated records of a queue file, a torn tail left out */
#define EACH_FIELD(data, i, f, l)                                              \
	for ((i) = 0;                                                          \
	     (i) < (data)->len &&                                              \
	     ((f) = (data)->s + (i), (l) = strnlen((f), (data)->len - (i)),    \
	     (i) + (l) < (data)->len);                                         \
	     (i) += (l) + 1)

static void
read_or_empty(const char *dir, unsigned long long id, str *out, time_t *mtime)
{
	str f = STR_INIT;
	struct stat st;

	if (queue_file(&f, dir, id) == -1)
		die(111, "out of memory");
	if (slurp(f.s, out) == -1) {
		if (errno != ENOENT)
			die_sys(111, "unable to read %s", f.s);
		out->len = 0;
	}
	if (mtime)
		*mtime = stat(f.s, &st) == 0 ? st.st_mtime : 0;
	str_free(&f);
}

/* 1: m holds committed message id; 0: it is not (or no longer) queued */
static int
qmsg_load(struct qmsg *m, unsigned long long id)
{
	str f = STR_INIT;
	struct stat st;
	size_t i, l;
	const char *rec;
	int c, r = 0;

	m->id = id;
	m->todo = 0;
	m->sender = "";
	m->nr = 0;
	m->pending[0] = m->pending[1] = m->todo_rcpts = 0;
	m->next[0] = m->next[1] = 0;
	m->bounce.len = 0;
	m->chan[0].len = m->chan[1].len = 0;
	lasterr_free(&m->errs);
	/* a todo/ entry means moat-send has not (fully) taken it over */
	if (queue_file(&f, "todo", id) == -1)
		die(111, "out of memory");
	if (slurp(f.s, &m->env) == 0) {
		m->todo = 1;
	} else {
		if (errno != ENOENT)
			die_sys(111, "unable to read %s", f.s);
		if (queue_file(&f, "info", id) == -1)
			die(111, "out of memory");
		if (slurp(f.s, &m->env) == -1) {
			if (errno != ENOENT)
				die_sys(111, "unable to read %s", f.s);
			goto out;
		}
	}
	if (queue_file(&f, "mess", id) == -1)
		die(111, "out of memory");
	if (stat(f.s, &st) == -1) {
		if (errno != ENOENT)
			die_sys(111, "unable to look at %s", f.s);
		goto out;
	}
	m->size = (long long)st.st_size;
	m->arrival = st.st_mtime;
	r = 1;
	EACH_FIELD(&m->env, i, rec, l)
	{
		if (l && rec[0] == 'F')
			m->sender = rec + 1;
		else if (l > 1 && rec[0] == 'B' && !m->todo)
			m->arrival = (time_t)strtoll(rec + 1, 0, 10);
		else if (l > 1 && rec[0] == 'T' && m->todo) {
			add_rcpt(m, rec + 1, -1, R_PENDING);
			m->todo_rcpts++;
		}
	}
	if (m->todo)
		goto out;
	read_or_empty("bounce", id, &m->bounce, 0);
	if (queue_file(&f, "error", id) == -1)
		die(111, "out of memory");
	if (lasterr_read(f.s, &m->errs) == -1)
		die_sys(111, "unable to read %s", f.s);
	for (c = 0; c < 2; c++) {
		read_or_empty(chan_name[c], id, &m->chan[c], &m->next[c]);
		EACH_FIELD(&m->chan[c], i, rec, l)
		{
			const char *bt;
			int state;

			if (l < 2 || (rec[0] != 'T' && rec[0] != 'D'))
				continue;
			bt = bounce_text(m, rec + 1);
			state = rec[0] == 'T' ? R_PENDING : R_DONE;
			add_rcpt(m, rec + 1, c, state);
			m->r[m->nr - 1].err = lasterr_find(&m->errs, rec + 1);
			m->r[m->nr - 1].btext = bt;
			if (bt || (state == R_DONE && m->r[m->nr - 1].err &&
			           m->r[m->nr - 1].err->kind == 'D'))
				m->r[m->nr - 1].state = R_BOUNCED;
			if (m->r[m->nr - 1].state == R_PENDING)
				m->pending[c]++;
		}
	}
out:
	str_free(&f);
	return r;
}

static void
show_text(const struct qmsg *m, time_t now)
{
	char age[32], when[32];
	size_t k;

	fmt_age(age, sizeof age, now - m->arrival);
	printf("%llu  age %s  size %lld  from ", m->id, age, m->size);
	print_addr(m->sender, strlen(m->sender));
	printf("%s%s\n", m->todo ? "  (not yet preprocessed)" : "",
	       m->bounce.len ? "  (bounce waiting)" : "");
	for (k = 0; k < m->nr; k++) {
		const struct qrcpt *r = &m->r[k];

		printf("  %-6s ", r->chan < 0 ? "to" : chan_name[r->chan]);
		print_addr(r->addr, strlen(r->addr));
		printf(" %s", state_name[r->state]);
		if (r->state == R_PENDING && r->chan >= 0) {
			time_t next = m->next[r->chan];

			if (next > now) {
				fmt_age(when, sizeof when, next - now);
				printf(", next try in %s", when);
			} else {
				printf(", next try now");
			}
		}
		if (r->state == R_BOUNCED && (r->err || r->btext)) {
			const char *t = r->btext ? r->btext : r->err->text;

			if (r->err && r->err->kind == 'D') {
				fmt_age(when, sizeof when,
				        now - (time_t)r->err->when);
				printf(" %s ago", when);
			}
			print_esc(": %s", t, strlen(t));
		} else if (r->state == R_PENDING && r->err) {
			fmt_age(when, sizeof when, now - (time_t)r->err->when);
			printf("; last error %s ago", when);
			print_esc(": %s", r->err->text, strlen(r->err->text));
		}
		printf("\n");
	}
}

static void
show_json(str *j, const struct qmsg *m, time_t now)
{
	size_t k;

	jcat(j, "{\"id\":");
	jnum(j, (long long)m->id);
	jcat(j, ",\"arrival\":");
	jnum(j, (long long)m->arrival);
	jcat(j, ",\"age\":");
	jnum(j, (long long)(now > m->arrival ? now - m->arrival : 0));
	jcat(j, ",\"size\":");
	jnum(j, m->size);
	jcat(j, ",\"sender\":");
	jstr(j, m->sender);
	jcat(j, m->todo ? ",\"preprocessed\":false" : ",\"preprocessed\":true");
	jcat(j, m->bounce.len ? ",\"bounce_waiting\":true"
	                      : ",\"bounce_waiting\":false");
	jcat(j, ",\"recipients\":[");
	for (k = 0; k < m->nr; k++) {
		const struct qrcpt *r = &m->r[k];

		jcat(j, k ? ",{\"address\":" : "{\"address\":");
		jstr(j, r->addr);
		jcat(j, ",\"channel\":");
		if (r->chan < 0)
			jcat(j, "null");
		else
			jstr(j, chan_name[r->chan]);
		jcat(j, ",\"state\":");
		jstr(j, state_name[r->state]);
		jcat(j, ",\"next_try\":");
		if (r->state == R_PENDING && r->chan >= 0 && m->next[r->chan])
			jnum(j, (long long)m->next[r->chan]);
		else
			jcat(j, "null");
		jcat(j, ",\"last_error\":");
		if (r->state != R_DONE && r->err &&
		    (r->state == R_PENDING || !r->btext)) {
			jcat(j, "{\"kind\":");
			jstr(j, r->err->kind == 'Z' ? "deferral" : "failure");
			jcat(j, ",\"time\":");
			jnum(j, r->err->when);
			jcat(j, ",\"text\":");
			jstr(j, r->err->text);
			jcat(j, "}");
		} else if (r->state == R_BOUNCED && r->btext) {
			jcat(j, "{\"kind\":\"failure\",\"time\":");
			if (r->err && r->err->kind == 'D')
				jnum(j, r->err->when);
			else
				jcat(j, "null");
			jcat(j, ",\"text\":");
			jstr(j, r->btext);
			jcat(j, "}");
		} else {
			jcat(j, "null");
		}
		jcat(j, "}");
	}
	jcat(j, "]}");
}

static void
qmsg_free(struct qmsg *m)
{
	str_free(&m->env);
	str_free(&m->chan[0]);
	str_free(&m->chan[1]);
	str_free(&m->bounce);
	lasterr_free(&m->errs);
	free(m->r);
}

/* moat queue [--json] [ID...] */
static int
queue_list(const struct opts *o)
{
	unsigned long long *ids, *want = parse_ids(o->arg, o->narg);
	struct qmsg m;
	size_t n, k;
	time_t now = time(0);
	str j = STR_INIT;
	int shown = 0, missing = 0;

	memset(&m, 0, sizeof m);
	enter_queue(pick_root(o->root));
	if (o->narg) {
		ids = want;
		n = (size_t)o->narg;
	} else {
		ids = queue_ids(&n);
	}
	if (o->json)
		jcat(&j, "{\"messages\":[");
	for (k = 0; k < n; k++) {
		if (!qmsg_load(&m, ids[k])) {
			if (o->narg) {
				log_msg("%llu: no such message", ids[k]);
				missing = 1;
			}
			continue;
		}
		if (o->json) {
			if (shown)
				jcat(&j, ",");
			show_json(&j, &m, now);
			if (j.len > 65536) {
				json_out(&j);
				j.len = 0;
			}
		} else {
			show_text(&m, now);
		}
		shown++;
	}
	if (o->json) {
		jcat(&j, "],\"count\":");
		jnum(&j, shown);
		jcat(&j, "}\n");
		json_out(&j);
	} else {
		printf("%d message%s\n", shown, shown == 1 ? "" : "s");
	}
	qmsg_free(&m);
	str_free(&j);
	if (ids != want)
		free(ids);
	free(want);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return missing ? 100 : 0;
}

/* ------------------------------------------------------------ moat stat */

static int
cmd_stat(int argc, char **argv)
{
	struct opts o;
	unsigned long long *ids, oldest_id = 0;
	size_t n, k, msgs = 0, todo = 0, todo_rcpts = 0, pend[2] = {0, 0},
	             bounces = 0, deferred = 0;
	time_t now = time(0), oldest = 0;
	struct qmsg m;
	char age[32];

	get_opts(argc, argv, 2, "rj", &o);
	if (o.narg)
		usage();
	memset(&m, 0, sizeof m);
	enter_queue(pick_root(o.root));
	ids = queue_ids(&n);
	for (k = 0; k < n; k++) {
		size_t x;

		if (!qmsg_load(&m, ids[k]))
			continue;
		msgs++;
		if (m.todo) {
			todo++;
			todo_rcpts += m.todo_rcpts;
		}
		pend[0] += m.pending[0];
		pend[1] += m.pending[1];
		if (m.bounce.len)
			bounces++;
		for (x = 0; x < m.nr; x++)
			if (m.r[x].state == R_PENDING && m.r[x].err)
				deferred++;
		if (!oldest_id || m.arrival < oldest) {
			oldest = m.arrival;
			oldest_id = m.id;
		}
	}
	if (o.json) {
		str j = STR_INIT;

		jcat(&j, "{\"messages\":");
		jnum(&j, (long long)msgs);
		jcat(&j, ",\"not_preprocessed\":");
		jnum(&j, (long long)todo);
		jcat(&j, ",\"not_preprocessed_recipients\":");
		jnum(&j, (long long)todo_rcpts);
		jcat(&j, ",\"local_pending\":");
		jnum(&j, (long long)pend[0]);
		jcat(&j, ",\"remote_pending\":");
		jnum(&j, (long long)pend[1]);
		jcat(&j, ",\"deferred\":");
		jnum(&j, (long long)deferred);
		jcat(&j, ",\"bounces_waiting\":");
		jnum(&j, (long long)bounces);
		jcat(&j, ",\"oldest_age\":");
		if (msgs)
			jnum(&j, (long long)(now > oldest ? now - oldest : 0));
		else
			jcat(&j, "null");
		jcat(&j, ",\"oldest_id\":");
		if (msgs)
			jnum(&j, (long long)oldest_id);
		else
			jcat(&j, "null");
		jcat(&j, "}\n");
		json_out(&j);
		str_free(&j);
	} else {
		printf("messages                  %zu\n", msgs);
		printf("not yet preprocessed      %zu (%zu recipients)\n", todo,
		       todo_rcpts);
		printf("local recipients pending  %zu\n", pend[0]);
		printf("remote recipients pending %zu\n", pend[1]);
		printf("pending after an error    %zu\n", deferred);
		printf("bounces waiting           %zu\n", bounces);
		if (msgs) {
			fmt_age(age, sizeof age, now - oldest);
			printf("oldest                    %s (message %llu)\n",
			       age, oldest_id);
		} else {
			printf("oldest                    -\n");
		}
	}
	qmsg_free(&m);
	free(ids);
	free(o.arg);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return 0;
}

/* ------------------------------------------- moat queue remove, retry */

#define REMOVE_WAIT 10 /* seconds to wait for moat-send to take a message */

/*
 * Is moat-send running on this queue?  It holds an exclusive flock on
 * queue/info.  When it is not, and lockfd is given, the lock is kept (in
 * *lockfd) so no moat-send starts meanwhile (one that does waits for it).
 */
static int
send_running(int *lockfd)
{
	int fd = open("info", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		die_sys(111, "unable to open queue/info");
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		if (errno != EWOULDBLOCK)
			die_sys(111, "unable to lock queue/info");
		close(fd);
		return 1;
	}
	if (lockfd)
		*lockfd = fd;
	else
		close(fd); /* unlocks */
	return 0;
}

/* moat-send's pid from queue/info/pid, checked by the process's name */
static pid_t
send_pid(void)
{
	str s = STR_INIT;
	char comm[64];
	unsigned long long v;
	pid_t pid = 0;

	if (slurp("info/pid", &s) == 0 && s.len && s.s[s.len - 1] == '\n') {
		s.s[s.len - 1] = 0;
		if (parse_id(s.s, &v) == 0 && v > 1 && v < INT_MAX) {
			snprintf(comm, sizeof comm, "/proc/%llu/comm", v);
			if (slurp(comm, &s) == 0 && s.len == 10 &&
			    !memcmp(s.s, "moat-send\n", 10))
				pid = (pid_t)v;
		}
	}
	str_free(&s);
	return pid;
}

/* SIGALRM to moat-send: it tries every pending recipient now */
static int
poke_send(void)
{
	pid_t pid = send_pid();

	if (!pid) {
		log_msg(
		    "moat-send holds the queue lock but queue/info/pid does "
		    "not name it: not signalled");
		return -1;
	}
	if (kill(pid, SIGALRM) == -1) {
		log_sys("unable to signal moat-send (pid %ld)", (long)pid);
		return -1;
	}
	return 0;
}

/* flip the pending ('T') records of a channel file to done ('D') in
 * place, as moat-send does; how many were flipped */
static long
flip_pending(const char *dir, unsigned long long id)
{
	str f = STR_INIT, data = STR_INIT;
	size_t i, l;
	const char *rec;
	long n = 0;
	int fd;

	if (queue_file(&f, dir, id) == -1)
		die(111, "out of memory");
	fd = open(f.s, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		if (errno != ENOENT)
			die_sys(111, "unable to open %s", f.s);
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (str_readyplus(&data, 65536) == -1)
			die(111, "out of memory");
		r = read(fd, data.s + data.len, data.a - data.len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die_sys(111, "unable to read %s", f.s);
		if (r == 0)
			break;
		data.len += (size_t)r;
	}
	EACH_FIELD(&data, i, rec, l)
	{
		if (l > 1 && rec[0] == 'T') {
			if (pwrite(fd, "D", 1, (off_t)i) != 1)
				die_sys(111, "unable to write %s", f.s);
			n++;
		}
	}
	if (n && fsync(fd) == -1)
		die_sys(111, "unable to write %s", f.s);
	close(fd);
out:
	str_free(&f);
	str_free(&data);
	return n;
}

static void
unlink_q(const char *dir, unsigned long long id)
{
	str f = STR_INIT;

	if (queue_file(&f, dir, id) == -1)
		die(111, "out of memory");
	if (unlink(f.s) == -1 && errno != ENOENT)
		die_sys(111, "unable to remove %s", f.s);
	str_free(&f);
}

/* 0 removed, 100 no such message, 111 not taken over in time */
static int
remove_one(unsigned long long id, int running, time_t deadline, int *poke)
{
	long n;

	if (!running) {
		/* we hold the lock: no moat-send can look meanwhile.  The
		 * commit marks (todo, info) go before mess, so a crash
		 * leaves at worst an orphan that moat-send reaps */
		static const char *const order[] = {"local",  "remote", "error",
		                                    "bounce", "todo",   "info",
		                                    "intd",   "mess",   0};
		int k;

		if (!qexists("todo", id) && !qexists("info", id)) {
			log_msg("%llu: no such message", id);
			return 100;
		}
		for (k = 0; order[k]; k++)
			unlink_q(order[k], id);
		printf("%llu: removed\n", id);
		return 0;
	}
	/* moat-send runs and owns the message once it is preprocessed:
	 * wait (bounded) until it has taken a new one over */
	while (qexists("todo", id)) {
		if (time(0) >= deadline) {
			log_msg("%llu: moat-send has not preprocessed it yet; "
			        "try again",
			        id);
			return 111;
		}
		usleep(100000);
	}
	if (!qexists("info", id)) {
		log_msg("%llu: no such message", id);
		return 100;
	}
	unlink_q("bounce", id); /* no bounce for what is removed */
	n = flip_pending("local", id) + flip_pending("remote", id);
	*poke = 1;
	printf("%llu: removed: %ld pending recipient%s dropped; moat-send "
	       "retires it\n",
	       id, n, n == 1 ? "" : "s");
	return 0;
}

static int
queue_remove(const struct opts *o)
{
	unsigned long long *ids;
	int i, running, lockfd = -1, poke = 0, worst = 0;
	time_t deadline;

	if (o->narg < 2)
		usage();
	ids = parse_ids(o->arg + 1, o->narg - 1);
	enter_queue(pick_root(o->root));
	running = send_running(&lockfd);
	deadline = time(0) + REMOVE_WAIT;
	for (i = 0; i + 1 < o->narg; i++) {
		int r = remove_one(ids[i], running, deadline, &poke);

		if (r > worst)
			worst = r;
	}
	if (poke && poke_send() == -1)
		printf("moat-send retires the messages at its next attempt\n");
	if (lockfd != -1)
		close(lockfd);
	free(ids);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return worst;
}

/* set the next-retry time (the channel files' mtimes) to now */
static void
due_now(unsigned long long id)
{
	str f = STR_INIT;
	int c;

	for (c = 0; c < 2; c++) {
		if (queue_file(&f, chan_name[c], id) == -1)
			die(111, "out of memory");
		if (utimensat(AT_FDCWD, f.s, 0, 0) == -1 && errno != ENOENT)
			die_sys(111, "unable to set the retry time of %s", f.s);
	}
	str_free(&f);
}

static int
queue_retry(const struct opts *o)
{
	unsigned long long *ids = parse_ids(o->arg + 1, o->narg - 1);
	int i, worst = 0;

	enter_queue(pick_root(o->root));
	for (i = 0; i + 1 < o->narg; i++) {
		if (qexists("todo", ids[i])) {
			printf("%llu: not yet preprocessed: moat-send tries it "
			       "as soon as it takes it\n",
			       ids[i]);
		} else if (qexists("info", ids[i])) {
			due_now(ids[i]);
			printf("%llu: due now\n", ids[i]);
		} else {
			log_msg("%llu: no such message", ids[i]);
			worst = 100;
		}
	}
	if (send_running(0)) {
		if (poke_send() == -1)
			worst = 111;
		else
			printf("moat-send is retrying every pending "
			       "recipient\n");
	} else {
		printf("moat-send is not running: it tries every pending "
		       "recipient when it starts\n");
	}
	free(ids);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return worst;
}

static int
cmd_queue(int argc, char **argv)
{
	struct opts o;
	int r;

	get_opts(argc, argv, 2, "rj", &o);
	if (o.narg && !strcmp(o.arg[0], "remove")) {
		if (o.json)
			usage();
		r = queue_remove(&o);
	} else if (o.narg && !strcmp(o.arg[0], "retry")) {
		if (o.json)
			usage();
		r = queue_retry(&o);
	} else if (o.narg && !strcmp(o.arg[0], "list")) {
		o.arg++;
		o.narg--;
		r = queue_list(&o);
		o.arg--;
	} else
		r = queue_list(&o);
	free(o.arg);
	return r;
}

/* ------------------------------------------------------------- moat ctl */

static const char *const kind_name[] = {"line", "number", "list", "cdb", "file"};

/* control/NAME SUFFIX exists (as anything) */
static int
ctl_exists(const char *name, const char *suffix, struct stat *st)
{
	str p = STR_INIT;
	struct stat tmp;
	int r;

	if (str_cats(&p, ctl_dir()) == -1 || str_catc(&p, '/') == -1 ||
	    str_cats(&p, name) == -1 || str_cats(&p, suffix) == -1 ||
	    str_0(&p) == -1)
		die(111, "out of memory");
	r = lstat(p.s, st ? st : &tmp) == 0;
	str_free(&p);
	return r;
}

struct ctlval {
	int r;   /* CTL_FILE, CTL_DEFAULT, or -1 */
	int err; /* errno when r is -1 */
	str s;   /* LINE: the line; NUM: its text; LIST: n NUL-ended items */
	size_t n;
	unsigned long long num;
};

static void
ctl_get(const struct ctl_def *d, struct ctlval *v)
{
	v->s.len = 0;
	v->n = 0;
	v->num = 0;
	errno = 0;
	switch (d->kind) {
	case CTL_LINE:
		v->r = ctl_line(d->name, &v->s);
		break;
	case CTL_NUM:
		v->r = ctl_num(d->name, &v->num);
		v->err = errno;
		if (ctl_line(d->name, &v->s) == -1)
			v->s.len = 0;
		errno = v->err;
		break;
	case CTL_LIST:
		v->r = ctl_list(d->name, &v->s, &v->n);
		break;
	case CTL_CDB:
		v->r = ctl_exists(d->name, ".cdb", 0) ? CTL_FILE : CTL_DEFAULT;
		break;
	case CTL_PRESENT:
		v->r = ctl_exists(d->name, "", 0) ? CTL_FILE : CTL_DEFAULT;
		break;
	}
	v->err = v->r == -1 ? errno : 0;
}

/* where d's value comes from: SOURCE is file, default, derived,
 * hostname, unset or error; the text follows "=NAME" defaults */
static const char *
ctl_origin(const struct ctl_def *d, str *out, int depth)
{
	struct ctlval v;
	const struct ctl_def *o = 0;
	const char *src;

	memset(&v, 0, sizeof v);
	ctl_get(d, &v);
	if (d->def && d->def[0] == '=')
		o = ctl_find(d->def + 1);
	if (v.r == -1) {
		src = "error";
		jcat(out, "error: ");
		jcat(out, v.err == EINVAL ? "not a number" : strerror(v.err));
	} else if (v.r == CTL_FILE) {
		src = "file";
		jcat(out, "file");
	} else if (o && depth < 4) {
		src = "derived";
		jcat(out, "from ");
		jcat(out, o->name);
		jcat(out, " (");
		ctl_origin(o, out, depth + 1);
		jcat(out, ")");
	} else if (!strcmp(d->name, "me")) {
		src = "hostname";
		jcat(out, "host name");
	} else if (d->def) {
		src = "default";
		jcat(out, "default");
	} else {
		src = "unset";
		jcat(out, "unset");
	}
	if (v.r == CTL_DEFAULT && d->kind != CTL_CDB &&
	    d->kind != CTL_PRESENT && ctl_exists(d->name, "", 0))
		jcat(out, ", control file empty");
	str_free(&v.s);
	return src;
}

static void
ctl_default_text(const struct ctl_def *d, str *out)
{
	if (!strcmp(d->name, "me"))
		jcat(out, "the host name");
	else if (!d->def)
		jcat(out, "none");
	else if (d->def[0] == '=') {
		jcat(out, "same as ");
		jcat(out, d->def + 1);
	} else
		jcat(out, d->def);
}

static void
ctl_show_text(const struct ctl_def *d, int full)
{
	struct ctlval v;
	str origin = STR_INIT, val = STR_INIT, def = STR_INIT;
	size_t i, off = 0;

	memset(&v, 0, sizeof v);
	ctl_get(d, &v);
	ctl_origin(d, &origin, 0);
	ctl_default_text(d, &def);
	switch (d->kind) {
	case CTL_LINE:
		if (v.r == CTL_DEFAULT && !v.s.len)
			jcat(&val, "(none)");
		else if (str_copyb(&val, v.s.s ? v.s.s : "", v.s.len) == -1)
			die(111, "out of memory");
		break;
	case CTL_NUM:
		if (v.r == -1) {
			jcat(&val, "(invalid: \"");
			if (str_catb(&val, v.s.s ? v.s.s : "", v.s.len) == -1)
				die(111, "out of memory");
			jcat(&val, "\")");
		} else {
			char b[32];
			snprintf(b, sizeof b, "%llu", v.num);
			jcat(&val, b);
		}
		break;
	case CTL_LIST:
		for (i = 0; i < v.n; i++) {
			const char *it = v.s.s + off;

			off += strlen(it) + 1;
			if (!full && val.len > 60) {
				char b[48];
				snprintf(b, sizeof b, ", ... (%zu in all)",
				         v.n);
				jcat(&val, b);
				break;
			}
			if (i)
				jcat(&val, ", ");
			jcat(&val, it);
		}
		if (!v.n)
			jcat(&val, "(none)");
		break;
	case CTL_CDB:
		jcat(&val, v.r == CTL_FILE ? "(" : "(no ");
		jcat(&val, d->name);
		jcat(&val, ".cdb)");
		break;
	case CTL_PRESENT:
		jcat(&val, v.r == CTL_FILE ? "(present)" : "(none)");
		break;
	}
	printf("%-19s ", d->name);
	print_esc("= %s", val.s ? val.s : "", val.len);
	if (origin.s && !strcmp(origin.s, "default"))
		printf("  [default]\n");
	else
		printf("  [%s; default: %s]\n", origin.s ? origin.s : "",
		       def.s);
	str_free(&v.s);
	str_free(&origin);
	str_free(&val);
	str_free(&def);
}

static void
ctl_show_json(str *j, const struct ctl_def *d)
{
	struct ctlval v;
	str origin = STR_INIT;
	const char *src;
	size_t i, off = 0;

	memset(&v, 0, sizeof v);
	ctl_get(d, &v);
	src = ctl_origin(d, &origin, 0);
	jcat(j, "{\"name\":");
	jstr(j, d->name);
	jcat(j, ",\"kind\":");
	jstr(j, kind_name[d->kind]);
	jcat(j, ",\"value\":");
	if (v.r == -1) {
		jcat(j, "null");
	} else if (d->kind == CTL_LINE) {
		if (!strcmp(src, "unset"))
			jcat(j, "null");
		else if (json_str(j, v.s.s ? v.s.s : "", v.s.len) == -1)
			die(111, "out of memory");
	} else if (d->kind == CTL_NUM) {
		char b[32];
		snprintf(b, sizeof b, "%llu", v.num);
		jcat(j, b);
	} else if (d->kind == CTL_LIST) {
		jcat(j, "[");
		for (i = 0; i < v.n; i++) {
			const char *it = v.s.s + off;

			off += strlen(it) + 1;
			if (i)
				jcat(j, ",");
			jstr(j, it);
		}
		jcat(j, "]");
	} else {
		jcat(j, v.r == CTL_FILE ? "true" : "false");
	}
	jcat(j, ",\"default\":");
	if (d->def && strcmp(d->name, "me"))
		jstr(j, d->def);
	else
		jcat(j, "null");
	jcat(j, ",\"source\":");
	jstr(j, src);
	jcat(j, ",\"derived_from\":");
	if (!strcmp(src, "derived"))
		jstr(j, d->def + 1);
	else
		jcat(j, "null");
	jcat(j, ",\"origin\":");
	jstr(j, origin.s ? origin.s : "");
	jcat(j, ",\"error\":");
	if (v.r == -1)
		jstr(j, v.err == EINVAL ? "not a number" : strerror(v.err));
	else
		jcat(j, "null");
	jcat(j, ",\"doc\":");
	jstr(j, d->doc);
	jcat(j, "}");
	str_free(&v.s);
	str_free(&origin);
}

/* moat ctl [--json] [NAME...] */
static int
cmd_ctl(int argc, char **argv)
{
	struct opts o;
	const struct ctl_def *d;
	str j = STR_INIT;
	int i, first = 1;

	get_opts(argc, argv, 2, "rj", &o);
	for (i = 0; i < o.narg; i++)
		if (!ctl_find(o.arg[i]))
			die(100, "%s is not a control file moat knows",
			    o.arg[i]);
	if (paths_setup_control(pick_root(o.root)) == -1)
		die(111, "out of memory");
	if (o.json)
		jcat(&j, "{\"controls\":[");
	for (d = ctl_table; d->name; d++) {
		if (o.narg) {
			for (i = 0; i < o.narg && strcmp(o.arg[i], d->name);
			     i++)
				;
			if (i == o.narg)
				continue;
		}
		if (o.json) {
			if (!first)
				jcat(&j, ",");
			ctl_show_json(&j, d);
		} else {
			ctl_show_text(d, o.narg > 0);
		}
		first = 0;
	}
	if (o.json) {
		jcat(&j, "]}\n");
		json_out(&j);
	}
	str_free(&j);
	free(o.arg);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return 0;
}

/* ----------------------------------------------------------- moat check */

static int n_errors, n_warnings;

static void __attribute__((format(printf, 2, 3)))
finding(int error, const char *fmt, ...)
{
	char raw[2048], line[4200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	log_escape(line, sizeof line, raw,
	           (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1);
	printf("%s: %s\n", error ? "error" : "warning", line);
	if (error)
		n_errors++;
	else
		n_warnings++;
}

/* an rcpthosts entry that accepts far more than anyone means to */
static void
check_rcpthost(const char *it)
{
	size_t i;

	for (i = 0; it[i]; i++)
		if (!((it[i] >= 'a' && it[i] <= 'z') ||
		      (it[i] >= 'A' && it[i] <= 'Z') ||
		      (it[i] >= '0' && it[i] <= '9') ||
		      strchr(".-_[]:", it[i]))) {
			finding(1,
			        "control/rcpthosts: \"%s\" is not a domain "
			        "or .suffix (no wildcards: .example.com "
			        "covers the subdomains)",
			        it);
			return;
		}
	if (!strcmp(it, ".") || (it[0] == '.' && !strchr(it + 1, '.')))
		finding(1,
		        "control/rcpthosts: \"%s\" is far too wide: it "
		        "would accept mail for every domain under %s",
		        it, it[1] ? it : "the root");
}

/* relayclients: each line a rule; none may cover everyone */
static void
check_relayclients(void)
{
	str items = STR_INIT;
	size_t n, i, off = 0;

	if (ctl_list("relayclients", &items, &n) == -1)
		return; /* reported with the others */
	for (i = 0; i < n; i++) {
		const char *it = items.s + off;
		struct ipnet net;

		off += strlen(it) + 1;
		if (ipnet_parse(it, strlen(it), &net) == -1)
			finding(1,
			        "control/relayclients: \"%s\" is not an "
			        "address or prefix (moat-tcpd ignores it)",
			        it);
		else if (ip_is4(net.ip) ? net.bits < 96 + 8 : net.bits < 16)
			finding(1,
			        "control/relayclients: \"%s\" lets most of "
			        "the Internet relay (an open relay)",
			        it);
	}
	str_free(&items);
}

/* secrets: the STARTTLS key and the AUTH hashes are nobody else's */
static void
check_secrets(void)
{
	str items = STR_INIT;
	size_t n, i, off = 0;
	struct stat st;

	if (ctl_exists("servercert.pem", "", &st) && (st.st_mode & 077))
		finding(1, "control/servercert.pem (the STARTTLS private key) "
		           "can be read by others than its owner: chmod 600");
	if (ctl_exists("smtpusers", "", &st) && (st.st_mode & 007))
		finding(1, "control/smtpusers (password hashes) can be read by "
		           "everyone: chmod 640, group of the SMTP account");
	if (ctl_list("smtpusers", &items, &n) == -1)
		return; /* reported with the others */
	for (i = 0; i < n; i++) {
		const char *it = items.s + off, *colon = strchr(it, ':');

		off += strlen(it) + 1;
		if (!colon || colon == it)
			finding(1,
			        "control/smtpusers: entry %zu is not user:hash "
			        "(it is ignored)",
			        i + 1);
		else if (colon[1] != '$')
			finding(1,
			        "control/smtpusers: %.*s has no crypt(3) hash, "
			        "so cannot AUTH: set one with moat smtpuser",
			        (int)(colon - it), it);
	}
	if (n && !ctl_exists("servercert.pem", "", 0))
		finding(0, "control/smtpusers lists accounts, but without "
		           "control/servercert.pem there is no STARTTLS, and "
		           "so no AUTH");
	str_free(&items);
}

/* lines of a domain:value list must have a colon */
static void
check_colons(const char *name, const char *want)
{
	str items = STR_INIT;
	size_t n, i, off = 0;

	if (ctl_list(name, &items, &n) == -1)
		return;
	for (i = 0; i < n; i++) {
		const char *it = items.s + off;

		off += strlen(it) + 1;
		if (!strchr(it, ':'))
			finding(1, "control/%s: \"%s\" has no ':' (want %s)",
			        name, it, want);
	}
	str_free(&items);
}

static void
check_control(const char *root)
{
	const struct ctl_def *d;
	struct ctlval v;
	struct stat st;
	DIR *dir;
	struct dirent *e;

	memset(&v, 0, sizeof v);
	if (stat(ctl_dir(), &st) == -1 || !S_ISDIR(st.st_mode)) {
		finding(1, "%s is missing: no control files at all", ctl_dir());
		return;
	}
	if (!ctl_exists("me", "", 0)) {
		ctl_line("me", &v.s);
		finding(1,
		        "control/me is missing: moat calls itself \"%s\" "
		        "(the host name); write this host's fully "
		        "qualified name there",
		        v.s.s ? v.s.s : "");
	} else if (ctl_line("me", &v.s) == CTL_DEFAULT) {
		finding(1, "control/me is empty: write this host's fully "
		           "qualified name there");
	}
	for (d = ctl_table; d->name; d++) {
		ctl_get(d, &v);
		if (v.r != -1)
			continue;
		if (d->kind == CTL_NUM && v.err == EINVAL)
			finding(1, "control/%s: \"%.*s\" is not a number",
			        d->name, (int)(v.s.len > 200 ? 200 : v.s.len),
			        v.s.s ? v.s.s : "");
		else
			finding(1, "control/%s: %s", d->name, strerror(v.err));
	}
	if (!ctl_exists("rcpthosts", "", 0)) {
		finding(1, "control/rcpthosts is missing: mail from the "
		           "network is accepted only for locals; list every "
		           "domain this host takes mail for there");
	} else if (ctl_list("rcpthosts", &v.s, &v.n) != -1) {
		size_t i, off = 0;

		if (!v.n)
			finding(0, "control/rcpthosts lists no domain: only "
			           "relay clients can send mail here");
		for (i = 0; i < v.n; i++) {
			check_rcpthost(v.s.s + off);
			off += strlen(v.s.s + off) + 1;
		}
	}
	check_relayclients();
	check_secrets();
	check_colons("virtualdomains", "domain:prepend");
	check_colons("smtproutes", "domain:relay[:port]");
	/* files nothing reads are usually typos */
	dir = opendir(ctl_dir());
	while (dir && (e = readdir(dir))) {
		const struct ctl_def *k;
		char base[256];
		size_t l = strlen(e->d_name);

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (ctl_find(e->d_name))
			continue;
		if (l > 4 && l < sizeof base &&
		    !strcmp(e->d_name + l - 4, ".cdb")) {
			memcpy(base, e->d_name, l - 4);
			base[l - 4] = 0;
			k = ctl_find(base);
			if (k && k->kind == CTL_CDB)
				continue;
		}
		finding(0,
		        "control/%s is not a control file moat reads (a "
		        "typo?)",
		        e->d_name);
	}
	if (dir)
		closedir(dir);
	str_free(&v.s);
	(void)root;
}

/* one queue directory: exists, a directory, its mode and owner */
static int
dir_problem(const char *p, mode_t mode, mode_t ignore, uid_t uid, char *why,
            size_t size)
{
	struct stat st;

	if (lstat(p, &st) == -1) {
		snprintf(why, size, "%s", strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(why, size, "not a directory");
		return 1;
	}
	if ((st.st_mode & 07777 & ~ignore) != mode) {
		snprintf(why, size, "mode %04o, want %04o",
		         (unsigned)(st.st_mode & 07777), (unsigned)mode);
		return 1;
	}
	if (st.st_uid != uid) {
		snprintf(why, size, "owner uid %ld, want %ld", (long)st.st_uid,
		         (long)uid);
		return 1;
	}
	return 0;
}

/* an account of an installed system: NAME, or the name control/accounts
 * ("default:actual" lines, from moat-setup --user-prefix) gives it */
static struct passwd *
moat_account(const char *name)
{
	str items = STR_INIT;
	size_t n, i, off = 0, l = strlen(name);
	struct passwd *pw = 0;
	int found = 0;

	if (ctl_find("accounts") && ctl_list("accounts", &items, &n) >= 0)
		for (i = 0; i < n && !found; i++) {
			const char *it = items.s + off;

			off += strlen(it) + 1;
			if (!strncmp(it, name, l) && it[l] == ':') {
				pw = getpwnam(it + l + 1);
				found = 1;
			}
		}
	if (!found)
		pw = getpwnam(name);
	str_free(&items);
	return pw;
}

/* an installed system: queue/ belongs to moatq (else a run directory) */
static int
installed(const char *root)
{
	struct passwd *pq = moat_account("moatq");
	str q = STR_INIT;
	struct stat st;
	int r;

	root_path(&q, root, "queue");
	r = pq && stat(q.s, &st) == 0 && st.st_uid == pq->pw_uid;
	str_free(&q);
	return r;
}

static void
check_queue(const char *root)
{
	const struct queue_dir *d;
	struct passwd *pq = moat_account("moatq"), *ps;
	uid_t uq, us;
	str q = STR_INIT;
	char p[4200], why[128], first[4400];
	struct stat st;
	int system, i;

	root_path(&q, root, "queue");
	if (lstat(q.s, &st) == -1 || !S_ISDIR(st.st_mode)) {
		finding(1,
		        "%s is missing: moat run creates it (or the "
		        "installer)",
		        q.s);
		str_free(&q);
		return;
	}
	/* installed: moatq and moats own their parts, and moatq's
	 * directories are set-group-ID (privs.h); else one account */
	uq = pq ? pq->pw_uid : 0;
	ps = moat_account("moats");
	system = pq && ps && st.st_uid == uq;
	uq = system ? uq : st.st_uid;
	us = system ? ps->pw_uid : st.st_uid;
	if ((st.st_mode & 07777) != 0750)
		finding(1, "%s: mode %04o, want 0750", q.s,
		        (unsigned)(st.st_mode & 07777));
	for (d = queue_dirs; d->name; d++) {
		uid_t u = d->owner == QO_QUEUE ? uq : us;
		mode_t want = d->mode, ignore = system ? 0 : S_ISGID;
		int bad = 0;

		if (system && d->owner == QO_QUEUE)
			want |= S_ISGID;
		snprintf(p, sizeof p, "%s/%s", q.s, d->name);
		if (dir_problem(p, want, ignore, u, why, sizeof why)) {
			finding(1, "%s: %s", p, why);
			continue;
		}
		for (i = 0; d->split && i < QUEUE_SPLIT; i++) {
			char w[128];

			snprintf(p, sizeof p, "%s/%s/%d", q.s, d->name, i);
			if (!dir_problem(p, want, ignore, u, w, sizeof w))
				continue;
			if (!bad++)
				snprintf(first, sizeof first, "%s: %s", p, w);
		}
		if (bad == 1)
			finding(1, "%s", first);
		else if (bad)
			finding(1, "%s (and %d more of %s/%s/0..%d)", first,
			        bad - 1, q.s, d->name, QUEUE_SPLIT - 1);
	}
	snprintf(p, sizeof p, "%s/lock/trigger", q.s);
	if (lstat(p, &st) == -1)
		finding(1,
		        "%s is missing: moat-send is not told about new "
		        "mail (create it: mkfifo -m 0622 %s)",
		        p, p);
	else if (!S_ISFIFO(st.st_mode))
		finding(1,
		        "%s is not a fifo: moat-send is not told about new "
		        "mail (remove it and run mkfifo -m 0622 %s)",
		        p, p);
	else if (system && (!(st.st_mode & 0002) || st.st_uid != us))
		finding(1,
		        "%s: mode %04o, owner uid %ld; want 0622 and moats "
		        "so moat-queue can write it",
		        p, (unsigned)(st.st_mode & 07777), (long)st.st_uid);
	str_free(&q);
}

static int
older(const struct stat *a, const struct stat *b)
{
	return a->st_mtim.tv_sec < b->st_mtim.tv_sec ||
	       (a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	        a->st_mtim.tv_nsec < b->st_mtim.tv_nsec);
}

static void
check_users(const char *root)
{
	str a = STR_INIT, c = STR_INIT;
	struct stat sa, sc;
	const char *err;
	int has_a, has_c, r;

	root_path(&a, root, "users/assign");
	root_path(&c, root, "users/cdb");
	has_a = stat(a.s, &sa) == 0;
	has_c = stat(c.s, &sc) == 0;
	if (has_a) {
		r = users_check(root, &err);
		if (r == USERS_SYNTAX)
			finding(1, "%s (moat-newu refuses to compile it)", err);
		else if (r != 0)
			finding(1, "%s: %s", err, strerror(errno));
		if (!has_c)
			finding(1,
			        "%s is missing: run moat-newu to compile "
			        "users/assign",
			        c.s);
		else if (older(&sc, &sa))
			finding(1,
			        "%s is older than users/assign: run "
			        "moat-newu so the changes take effect",
			        c.s);
	} else if (has_c) {
		finding(0,
		        "%s exists without users/assign, which it is "
		        "compiled from",
		        c.s);
	}
	if (users_rcpt_ok(root, "postmaster", 10,
	                  installed(root) ? USERS_SYSTEM : 0) == 0)
		finding(0, "nobody receives mail for postmaster (RFC 5321 "
		           "requires it): add it to users/assign");
	str_free(&a);
	str_free(&c);
}

static void
check_programs(const char *root)
{
	static const char *const need[] = {
	    "moat-queue", "moat-smtpd", "moat-tcpd",
	    "moat-send",  "moat-clean", "moat-lspawn",
	    "moat-local", "moat-newu",  0};
	static const char *const want[] = {"moat-rspawn", "moat-remote", 0};
	struct passwd *pq = moat_account("moatq");
	str p = STR_INIT, q = STR_INIT;
	struct stat st, sq;
	int k, system;

	root_path(&q, root, "queue");
	system = pq && stat(q.s, &sq) == 0 && sq.st_uid == pq->pw_uid;
	for (k = 0; need[k]; k++) {
		if (bin_path(&p, need[k]) == -1)
			die_sys(111, "unable to find the moat programs");
		if (access(p.s, X_OK) == -1)
			finding(1, "%s: %s", p.s, strerror(errno));
		else if (system && !strcmp(need[k], "moat-queue") &&
		         (stat(p.s, &st) == -1 || !(st.st_mode & S_ISUID) ||
		          st.st_uid != pq->pw_uid))
			finding(1,
			        "%s is not setuid moatq: nobody but moatq "
			        "can queue mail",
			        p.s);
	}
	for (k = 0; want[k]; k++) {
		if (bin_path(&p, want[k]) == -1)
			die_sys(111, "unable to find the moat programs");
		if (access(p.s, X_OK) == -1)
			finding(0, "%s: %s: remote mail waits in the queue",
			        p.s, strerror(errno));
	}
	str_free(&p);
	str_free(&q);
}

/* moat check: one line per finding; exit 1 if any is an error */
static int
cmd_check(int argc, char **argv)
{
	struct opts o;
	const char *root;
	struct stat st;

	get_opts(argc, argv, 2, "r", &o);
	if (o.narg)
		usage();
	root = pick_root(o.root);
	if (stat(root, &st) == -1) {
		finding(1, "%s: %s", root, strerror(errno));
	} else if (!S_ISDIR(st.st_mode)) {
		finding(1, "%s: not a directory", root);
	} else {
		if (paths_setup_control(root) == -1)
			die(111, "out of memory");
		check_control(root);
		check_queue(root);
		check_users(root);
	}
	check_programs(root);
	if (!n_errors && !n_warnings)
		printf("ok: %s looks right\n", root);
	else
		printf("%d error%s, %d warning%s in %s\n", n_errors,
		       n_errors == 1 ? "" : "s", n_warnings,
		       n_warnings == 1 ? "" : "s", root);
	free(o.arg);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return n_errors ? 1 : 0;
}

/* ------------------------------------------------------------- moat log */

static const char log_doc[] =
    "moat logs one line per event on stderr (moat run's output; the\n"
    "installed programs' stderr, usually a log service that may add a\n"
    "time stamp in front).  Every line starts with the program's name.\n"
    "Text that came from outside (addresses, remote replies) has control\n"
    "bytes and non-ASCII shown as \\xHH, so a line cannot be forged.\n"
    "\n"
    "Following one message (ID is its queue id, the inode number that\n"
    "moat-smtpd reports as \"queued as ID\"):\n"
    "\n"
    "  moat-smtpd: queued ID from <S> via IP helo H rcpts N size B\n"
    "      accepted over SMTP and committed to the queue\n"
    "  moat-send: new msg ID size B from <S> qp PID uid UID local L "
    "remote R\n"
    "      moat-send took it over: L local and R remote recipients\n"
    "  moat-send: starting delivery N: msg ID to local|remote ADDR\n"
    "      delivery N begins; N is a slot number, reused once the\n"
    "      delivery ends, so it belongs to ID only until its result\n"
    "      (a remote delivery has one starting line per recipient of\n"
    "      the domain, and as many result lines)\n"
    "  moat-send: delivery N: success: TEXT\n"
    "  moat-send: delivery N: deferral: TEXT\n"
    "      temporary: tried again later (qmail's schedule)\n"
    "  moat-send: delivery N: failure: TEXT\n"
    "      permanent: the recipient goes into the bounce\n"
    "  moat-lspawn: moat-local (job N) ...\n"
    "  moat-rspawn: moat-remote (job N) ..., job N: ...\n"
    "      the spawners' view of delivery N\n"
    "  moat-send: bounce msg ID to <S>: K recipients\n"
    "      the failures were reported to the sender, in a new message\n"
    "      (its own \"new msg\" line follows, from <>)\n"
    "  moat-send: msg ID: PROBLEM\n"
    "      something went wrong with ID (it says what happens next)\n"
    "  moat-send: end msg ID\n"
    "      every recipient is settled: the message left the queue\n"
    "  moat-send: removing orphaned message ID\n"
    "      a message file left without an envelope by a crash\n"
    "\n"
    "moat log ID [--file FILE] prints the lines about message ID, its\n"
    "deliveries included, from FILE or standard input.\n";

struct logslot {
	unsigned long long id;
	unsigned long open; /* starting lines not yet matched by results */
};

static struct logslot *lslots;
static size_t nlslots;

#define LOG_SLOTS_MAX 1000000
#define LOG_LINE_MAX 65536

/* the decimal number at s; *end after it; -1 if none */
static int
num_at(const char *s, unsigned long long *v, const char **end)
{
	const char *p = s;

	*v = 0;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if (__builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (unsigned)(*p - '0'), v))
			return -1;
	*end = p;
	return 0;
}

/* "PREFIX<id>" followed by one of the bytes in after (or the end) */
static int
id_after(const char *s, const char *prefix, const char *after,
         unsigned long long want)
{
	size_t n = strlen(prefix);
	unsigned long long id;
	const char *end;

	if (strncmp(s, prefix, n) || num_at(s + n, &id, &end) == -1)
		return 0;
	return id == want && (!*end || strchr(after, *end));
}

static struct logslot *
lslot(unsigned long long n)
{
	if (n >= LOG_SLOTS_MAX)
		return 0;
	if (n >= nlslots) {
		size_t nn = (size_t)n + 64;
		struct logslot *s = realloc(lslots, nn * sizeof *s);

		if (!s)
			die(111, "out of memory");
		memset(s + nlslots, 0, (nn - nlslots) * sizeof *s);
		lslots = s;
		nlslots = nn;
	}
	return &lslots[n];
}

/* "job N" in a spawner's line: is N a delivery of want? */
static int
spawner_job(const char *s, unsigned long long want)
{
	const char *p = strstr(s, "job ");
	unsigned long long n;
	const char *end;
	struct logslot *sl;

	if (!p || num_at(p + 4, &n, &end) == -1 || (*end != ')' && *end != ':'))
		return 0;
	sl = lslot(n);
	return sl && sl->open && sl->id == want;
}

/* is line about message want?  Keeps the delivery slots up to date */
static int
log_line(const char *line, unsigned long long want)
{
	const char *p, *ev, *end;
	unsigned long long n, id;
	struct logslot *sl;

	if ((p = strstr(line, "moat-send: "))) {
		ev = p + 11;
		if (!strncmp(ev, "started:", 8)) {
			/* a new moat-send: delivery numbers start afresh */
			if (nlslots)
				memset(lslots, 0, nlslots * sizeof *lslots);
			return 0;
		}
		if (!strncmp(ev, "starting delivery ", 18)) {
			if (num_at(ev + 18, &n, &end) == -1 ||
			    strncmp(end, ": msg ", 6) ||
			    num_at(end + 6, &id, &end) == -1)
				return 0;
			if ((sl = lslot(n))) {
				if (!sl->open || sl->id != id)
					sl->open = 0;
				sl->id = id;
				sl->open++;
			}
			return id == want;
		}
		if (!strncmp(ev, "delivery ", 9)) {
			if (num_at(ev + 9, &n, &end) == -1 || *end != ':' ||
			    !(sl = lslot(n)) || !sl->open)
				return 0;
			sl->open--;
			return sl->id == want;
		}
		return id_after(ev, "new msg ", " ", want) ||
		       id_after(ev, "bounce msg ", " ", want) ||
		       id_after(ev, "end msg ", " ", want) ||
		       id_after(ev, "msg ", ": ", want) ||
		       id_after(ev, "removing orphaned message ", " ", want) ||
		       (!strncmp(ev, "moat-clean could not do ", 24) &&
		        ev[24] && id_after(ev + 25, " ", " ", want));
	}
	if ((p = strstr(line, "moat-smtpd: ")))
		return id_after(p + 12, "queued ", " ", want);
	if ((p = strstr(line, "moat-lspawn: ")) ||
	    (p = strstr(line, "moat-rspawn: ")))
		return spawner_job(p + 13, want);
	return 0;
}

/* moat setup ...: moat-setup(8), next to this program, with the rest */
static int
cmd_setup(int argc, char **argv)
{
	str path = STR_INIT;

	(void)argc;
	if (bin_path(&path, "moat-setup") == -1)
		die_sys(111, "unable to find moat-setup");
	argv[1] = path.s;
	execv(path.s, argv + 1);
	die_sys(111, "unable to run %s", path.s);
}

/* moat log [ID] [--file FILE] */
static int
cmd_log(int argc, char **argv)
{
	struct opts o;
	unsigned long long id;
	FILE *in = stdin;
	str line = STR_INIT;
	int ch, done = 0;

	get_opts(argc, argv, 2, "f", &o);
	if (o.narg == 0) {
		fputs(log_doc, stdout);
		free(o.arg);
		return fflush(stdout) == 0 ? 0 : 111;
	}
	if (o.narg != 1)
		usage();
	if (parse_id(o.arg[0], &id) == -1)
		die(100, "bad message id %s", o.arg[0]);
	if (o.file && !(in = fopen(o.file, "re")))
		die_sys(111, "unable to open %s", o.file);
	while (!done) {
		line.len = 0;
		/* one line, at most LOG_LINE_MAX bytes of it kept */
		while ((ch = getc(in)) != EOF && ch != '\n')
			if (line.len < LOG_LINE_MAX &&
			    str_catc(&line, (char)ch) == -1)
				die(111, "out of memory");
		if (ch == EOF) {
			done = 1;
			if (!line.len)
				break;
		}
		if (str_0(&line) == -1)
			die(111, "out of memory");
		if (strlen(line.s) == line.len && log_line(line.s, id) &&
		    printf("%s\n", line.s) < 0)
			die_sys(111, "unable to write");
	}
	if (ferror(in))
		die_sys(111, "unable to read %s", o.file ? o.file : "stdin");
	if (in != stdin)
		fclose(in);
	str_free(&line);
	free(o.arg);
	free(lslots);
	if (fflush(stdout) != 0)
		die_sys(111, "unable to write");
	return 0;
}

/* the password for moat smtpuser: stdin's first line, not echoed on a tty */
static void
read_password(str *pw)
{
	struct termios t, quiet;
	int tty = isatty(0) && tcgetattr(0, &t) == 0;
	io in;
	char buf[1024];
	int r;

	if (tty) {
		quiet = t;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fputs("password: ", stderr);
		tcsetattr(0, TCSAFLUSH, &quiet);
	}
	io_init(&in, 0, buf, sizeof buf, 0);
	r = io_getline(&in, pw, '\n', 1024);
	if (tty) {
		tcsetattr(0, TCSAFLUSH, &t);
		fputs("\n", stderr);
	}
	if (r == IO_ERR)
		die_sys(111, "unable to read the password");
	if (r == IO_LONG)
		die(100, "password longer than 1024 bytes");
	while (pw->len && (pw->s[pw->len - 1] == '\n' ||
			   pw->s[pw->len - 1] == '\r'))
		pw->len--;
	if (!pw->len)
		die(100, "empty password: give it on standard input");
	if (memchr(pw->s, 0, pw->len))
		die(100, "the password holds a NUL byte");
	if (str_0(pw) == -1)
		die(111, "out of memory");
}

/* moat smtpuser [--root DIR] [--delete] NAME */
static int
cmd_smtpuser(int argc, char **argv)
{
	struct opts o;
	str path = STR_INIT, tmp = STR_INIT, old = STR_INIT, out = STR_INIT,
	    pw = STR_INIT;
	const char *name, *hash = 0;
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = 0;
	struct stat st;
	size_t nl, off;
	int del, fd, found = 0;

	get_opts(argc, argv, 2, "rd", &o);
	del = o.del;
	if (o.narg != 1)
		usage();
	name = o.arg[0];
	nl = strlen(name);
	if (!nl || nl > 255 || strpbrk(name, ": \t\r\n#"))
		die(100, "bad user name %s: no colon, space or #", name);
	if (paths_setup_control(pick_root(o.root)) == -1 ||
	    ctl_path(&path, "smtpusers", "") == -1 ||
	    ctl_path(&tmp, "smtpusers", ".tmp") == -1)
		die(111, "out of memory");
	if (!del) {
		read_password(&pw);
		if (!(cd = calloc(1, sizeof *cd)))
			die(111, "out of memory");
		if (!crypt_gensalt_rn(0, 0, 0, 0, salt, sizeof salt) ||
		    !(hash = crypt_r(pw.s, salt, cd)) || hash[0] != '$')
			die_sys(111, "unable to hash the password");
		explicit_bzero(pw.s, pw.len);
	}
	if (io_readfile(path.s, &old, 1 << 24, O_NOFOLLOW) == -1 &&
	    errno != ENOENT)
		die_sys(111, "unable to read %s", path.s);
	/* every other line as it was, NAME's replaced (or dropped) */
	for (off = 0; off < old.len;) {
		const char *l = old.s + off, *e = memchr(l, '\n', old.len - off);
		size_t n = e ? (size_t)(e - l) + 1 : old.len - off;

		off += n;
		if (n > nl && !strncmp(l, name, nl) && l[nl] == ':') {
			found = 1;
			continue;
		}
		if (str_catb(&out, l, n) == -1 ||
		    (!e && str_catc(&out, '\n') == -1))
			die(111, "out of memory");
	}
	if (!del && (str_cats(&out, name) == -1 || str_catc(&out, ':') == -1 ||
		     str_cats(&out, hash) == -1 || str_catc(&out, '\n') == -1))
		die(111, "out of memory");
	if (del && !found)
		die(100, "%s is not in %s", name, path.s);
	if (stat(path.s, &st) == -1) {
		str cert = STR_INIT;

		if (ctl_path(&cert, "servercert.pem", "") == -1)
			die(111, "out of memory");
		if (stat(cert.s, &st) == -1 && stat(ctl_dir(), &st) == -1)
			die_sys(111, "unable to stat %s", ctl_dir());
		st.st_mode = 0600;
		str_free(&cert);
	}
	fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd == -1)
		die_sys(111, "unable to create %s", tmp.s);
	if ((geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) == -1) ||
	    fchmod(fd, st.st_mode & 0777) == -1 ||
	    io_writeall(fd, out.s ? out.s : "", out.len, 0) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1 || rename(tmp.s, path.s) == -1) {
		unlink(tmp.s);
		die_sys(111, "unable to write %s", path.s);
	}
	printf("%s: %s %s\n", path.s, name,
	       del ? "removed" : found ? "password changed" : "added");
	if (cd) {
		explicit_bzero(cd, sizeof *cd);
		free(cd);
	}
	free(o.arg);
	str_free(&path);
	str_free(&tmp);
	str_free(&old);
	str_free(&out);
	str_free(&pw);
	return 0;
}

int
main(int argc, char **argv)
{
	log_init("moat");
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc, argv);
	if (!strcmp(argv[1], "queue"))
		return cmd_queue(argc, argv);
	if (!strcmp(argv[1], "stat"))
		return cmd_stat(argc, argv);
	if (!strcmp(argv[1], "ctl"))
		return cmd_ctl(argc, argv);
	if (!strcmp(argv[1], "check"))
		return cmd_check(argc, argv);
	if (!strcmp(argv[1], "log"))
		return cmd_log(argc, argv);
	if (!strcmp(argv[1], "adduser"))
		return cmd_adduser(argc, argv);
	if (!strcmp(argv[1], "setup"))
		return cmd_setup(argc, argv);
	if (!strcmp(argv[1], "smtpuser"))
		return cmd_smtpuser(argc, argv);
	usage();
}
