/*
 * moat: the front end.
 *
 *   moat run [--root DIR] [--listen ADDR:PORT]... [--user NAME] [--domain D]...
 *   moat queue [--root DIR]
 *
 * `moat run` is the embedded default: one directory (default ./moat-data)
 * holding control/, queue/, users/ and mail/, created on first use, and
 * the listener (moat-tcpd running moat-smtpd) in the foreground, logging to
 * stderr, until SIGINT or SIGTERM stops everything it started.  Control
 * files are written only when missing (me, locals, rcpthosts: localhost and
 * any --domain), so what an administrator puts there stays.  Started by
 * root, it binds the ports, gives the directory to --user (default nobody)
 * and drops to that account before anything else runs: nothing stays root.
 *
 * `moat queue` lists the queued messages: id, age, size, sender and each
 * recipient with its state.
 *
 * Runs as: the caller (moat run as root: root only until the ports are
 * bound).  Exit codes: 0 success, 100 usage error, 111 system error.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"
#include "users.h"

#define MAX_LISTEN 16

static int slurp(const char *, str *);

static void
usage(void)
{
	die(100, "usage: moat run [--root DIR] [--listen ADDR:PORT]... "
		 "[--user NAME] [--domain DOMAIN]... [--hold]\n"
		 "       moat adduser [--root DIR] [--user NAME] MAILBOX...\n"
		 "       moat queue [--root DIR]");
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
	(void)flag;
	(void)f;
	if (st->st_uid != chown_uid &&
	    lchown(p, chown_uid, chown_gid) == -1)
		return -1;
	return 0;
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
		char *argv[] = {tcpd.s, "--", smtpd.s, 0};
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
		if (nftw(abs, chown_one, 32, FTW_PHYS) == -1)
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
		if (nftw(abs, chown_one, 32, FTW_PHYS) == -1)
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

/* ---------------------------------------------------------- moat queue */

/* read a whole small file */
static int
slurp(const char *path, str *out)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[8192];
	ssize_t n;

	out->len = 0;
	if (fd == -1)
		return -1;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		if (str_catb(out, buf, (size_t)n) == -1) {
			close(fd);
			return -1;
		}
	close(fd);
	return n < 0 ? -1 : 0;
}

static void
print_age(time_t secs)
{
	if (secs < 0)
		secs = 0;
	if (secs < 120)
		printf("%lds", (long)secs);
	else if (secs < 7200)
		printf("%ldm", (long)(secs / 60));
	else if (secs < 172800)
		printf("%ldh", (long)(secs / 3600));
	else
		printf("%ldd", (long)(secs / 86400));
}

/* print escaped so a hostile address cannot forge lines */
static void
print_addr(const char *s, size_t n)
{
	char buf[4200];

	log_escape(buf, sizeof buf, s, n);
	printf("<%s>", buf);
}

/* recipients of one channel file: T pending, D done (as moat-send marks) */
static void
list_channel(const char *qdir, const char *chan, unsigned long long id)
{
	str f = STR_INIT, data = STR_INIT;
	size_t i = 0;

	if (queue_file(&f, chan, id) == -1)
		return;
	if (slurp(f.s, &data) == 0) {
		while (i < data.len) {
			size_t l = strnlen(data.s + i, data.len - i);
			char tag = data.s[i];

			if (l && (tag == 'T' || tag == 'D')) {
				printf("  %-6s ", chan);
				print_addr(data.s + i + 1, l - 1);
				printf(" %s\n", tag == 'T' ? "pending" : "done");
			}
			i += l + 1;
		}
	}
	(void)qdir;
	str_free(&f);
	str_free(&data);
}

static int
list_one(unsigned long long id, time_t now)
{
	str f = STR_INIT, data = STR_INIT;
	struct stat st;
	int todo = 0, shown = 0;
	size_t i = 0;

	/* preprocessed messages have info/; new ones only todo/; a mess/
	 * file with neither is not committed (or being retired): skip it */
	if (queue_file(&f, "info", id) == -1)
		goto out;
	if (slurp(f.s, &data) == -1) {
		if (queue_file(&f, "todo", id) == -1 || slurp(f.s, &data) == -1)
			goto out;
		todo = 1;
	}
	if (queue_file(&f, "mess", id) == -1 || stat(f.s, &st) == -1)
		goto out;
	shown = 1;
	printf("%llu  age ", id);
	print_age(now - st.st_mtime);
	printf("  size %lld", (long long)st.st_size);
	while (i < data.len) {
		size_t l = strnlen(data.s + i, data.len - i);

		if (l && data.s[i] == 'F') {
			printf("  from ");
			print_addr(data.s + i + 1, l - 1);
		}
		i += l + 1;
	}
	printf("%s\n", todo ? "  (not yet preprocessed)" : "");
	if (todo) {
		for (i = 0; i < data.len;) {
			size_t l = strnlen(data.s + i, data.len - i);

			if (l && data.s[i] == 'T') {
				printf("  to     ");
				print_addr(data.s + i + 1, l - 1);
				printf(" pending\n");
			}
			i += l + 1;
		}
	} else {
		list_channel(".", "local", id);
		list_channel(".", "remote", id);
	}
out:
	str_free(&f);
	str_free(&data);
	return shown;
}

static int
cmp_id(const void *a, const void *b)
{
	unsigned long long x = *(const unsigned long long *)a,
			   y = *(const unsigned long long *)b;
	return x < y ? -1 : x > y;
}

static int
cmd_queue(int argc, char **argv)
{
	const char *root = 0, *v;
	unsigned long long *ids = 0;
	size_t n = 0, cap = 0, k;
	time_t now = time(0);
	str p = STR_INIT;
	int i;

	for (i = 2; i < argc; i++) {
		if ((v = optval(argc, argv, &i, "--root")))
			root = v;
		else
			usage();
	}
	if (!root)
		root = getenv("MOAT_ROOT") && *getenv("MOAT_ROOT")
			       ? getenv("MOAT_ROOT")
		       : access("moat-data/queue", F_OK) == 0 ? "moat-data"
							      : root_dir(0);
	root_path(&p, root, "queue");
	if (chdir(p.s) == -1)
		die_sys(111, "unable to enter %s", p.s);
	/* every message has a mess/ file: list by it */
	for (i = 0; i < QUEUE_SPLIT; i++) {
		char d[32];
		DIR *dir;
		struct dirent *e;

		snprintf(d, sizeof d, "mess/%d", i);
		dir = opendir(d);
		if (!dir)
			die_sys(111, "unable to read %s/%s", p.s, d);
		while ((e = readdir(dir))) {
			char *end;
			unsigned long long id = strtoull(e->d_name, &end, 10);

			if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end)
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
	for (k = 0, i = 0; k < n; k++)
		i += list_one(ids[k], now);
	printf("%d message%s\n", i, i == 1 ? "" : "s");
	free(ids);
	str_free(&p);
	return fflush(stdout) == 0 ? 0 : 111;
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
	if (!strcmp(argv[1], "adduser"))
		return cmd_adduser(argc, argv);
	usage();
}
