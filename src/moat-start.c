/*
 * moat-start: run and supervise the delivery chain of an installed system.
 *
 *   moat-start [--log FILE]
 *
 * Runs as: root, and refuses otherwise.  Works in the prefix it was built
 * for (MOAT_PREFIX; the environment cannot move it, as it cannot move
 * moat-queue) and runs the programs next to its own executable.
 *
 * Starts, connected by socket pairs exactly as `moat run` connects them:
 *   moat-lspawn  fds 0/1: jobs and results; stays root, to switch to
 *                each recipient's uid;
 *   moat-clean   fds 0/1: requests and replies; as moatq;
 *   moat-rspawn  fds 0/1: jobs and results; as moatr (when installed);
 *   moat-send    fd 3 moat-lspawn, fd 4 moat-rspawn (closed without it),
 *                fd 5 moat-clean; fds 0 and 1 /dev/null; as moats.
 * The accounts are privs.h's, named as control/accounts says.  Each child
 * gets the group of its account alone, the environment PATH=/usr/bin:/bin,
 * MOAT_ROOT (and TZ if set), no other descriptors, and these limits: no
 * core files (they would hold mail); moat-send at most SEND_NPROC
 * processes and files of at most SEND_FSIZE bytes; moat-rspawn at most
 * concurrencyremote + RSPAWN_NPROC processes; moat-clean at most
 * CLEAN_NPROC (it never forks); the logger none.  (RLIMIT_NPROC counts
 * every process of the account, and does not bind root: moat-lspawn and
 * the recipients' moat-local get none, as it would count the recipient's
 * own processes too.)
 *
 * Logging: everything the chain writes to stderr goes to moat-start's
 * stderr (with systemd, the journal), or with --log to the logger, a child
 * named moat-log running as moatl, which appends each line, prefixed with
 * the local date and time, to FILE (relative names are in PREFIX/log/) and
 * reopens it on SIGHUP, so a rotated file is let go at once.
 *
 * Supervision: a chain program that dies stops the others (SIGTERM; SIGKILL
 * after RESTART_WAIT seconds) and the chain is started again, moat-send
 * rebuilding its state from the queue; after RESTARTS restarts within
 * RESTART_WINDOW seconds moat-start gives up and exits 111.  A dying
 * logger is restarted likewise.
 *
 * Signals: SIGTERM or SIGINT: a clean stop: moat-send first, which starts
 * no more deliveries and waits for the running ones; moat-lspawn,
 * moat-rspawn and moat-clean then finish at the end of their input.  After
 * STOP_WAIT seconds the rest get SIGTERM, KILL_WAIT seconds later SIGKILL
 * (a delivery cut short is made again: delivery is at least once).
 * SIGHUP: passed to moat-send, moat-lspawn and moat-rspawn (re-read the
 * control files) and to the logger (reopen FILE).  SIGALRM: passed to
 * moat-send (retry every message now).
 *
 * Exit codes: 0 after a clean stop; 100 usage, not root, or an unsafe
 * installation (a program or directory root runs from that others could
 * change); 111 system error, or the chain kept failing.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "paths.h"
#include "privs.h"
#include "str.h"

#define RESTARTS 5        /* chain restarts allowed ... */
#define RESTART_WINDOW 60 /* ... within this many seconds */
#define RESTART_WAIT 30   /* seconds a failed chain gets to stop */
#define STOP_WAIT 150     /* seconds moat-send gets after SIGTERM */
#define KILL_WAIT 10      /* seconds between SIGTERM and SIGKILL */
#define LOGGER_WAIT 5     /* seconds the logger gets to drain at the end */
#define SEND_NPROC 64
#define SEND_FSIZE (1024ULL * 1024 * 1024)
#define RSPAWN_NPROC 64
#define RSPAWN_NPROC_MAX 100000 /* concurrencyremote counted at most */
#define CLEAN_NPROC 8

enum { K_LOG, K_LSPAWN, K_CLEAN, K_RSPAWN, K_SEND, NKIDS };

static struct kid {
	const char *prog;
	int acct; /* from priv_progs */
	pid_t pid;
	uid_t uid;
	gid_t gid;
	str path;
} kids[NKIDS] = {
    [K_LOG] = {"moat-log", 0, 0, 0, 0, STR_INIT},
    [K_LSPAWN] = {"moat-lspawn", 0, 0, 0, 0, STR_INIT},
    [K_CLEAN] = {"moat-clean", 0, 0, 0, 0, STR_INIT},
    [K_RSPAWN] = {"moat-rspawn", 0, 0, 0, 0, STR_INIT},
    [K_SEND] = {"moat-send", 0, 0, 0, 0, STR_INIT},
};

static const char *root = MOAT_PREFIX;
static struct priv_names names;
static int have_rspawn, use_log;
static str logfile;
static int devnull, log_rd = -1, orig_err = -1;
static unsigned long long nproc_rspawn;
static char *child_env[4];

static void
nomem(void)
{
	die(111, "out of memory");
}

/* ------------------------------------------------------------ checks */

/* root runs what is here: nobody else may be able to change it */
static void
must_be_roots(const char *path, int dir)
{
	struct stat st;

	if (stat(path, &st) == -1)
		die_sys(111, "unable to check %s", path);
	if ((dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) ||
	    st.st_uid != 0 || (st.st_mode & 022) ||
	    (!dir && (st.st_mode & (S_ISUID | S_ISGID))))
		die(100,
		    "refusing to run: %s must be a %s owned by root, "
		    "writable by root alone%s (run moat-setup)",
		    path, dir ? "directory" : "file",
		    dir ? "" : ", not setuid");
}

static void
resolve(struct kid *k)
{
	const struct priv_prog *p = priv_prog_find(k->prog);
	struct passwd *pw;

	if (!p)
		die(111, "%s is missing from the privilege table", k->prog);
	k->acct = p->acct;
	if (k->acct == PA_ROOT) {
		k->uid = 0;
		k->gid = 0;
		return;
	}
	if (k->acct < 0 || k->acct >= PA_NACCT)
		die(111, "%s has no account to run as", k->prog);
	pw = getpwnam(names.acct[k->acct]);
	if (!pw)
		die(100, "no account %s for %s (run moat-setup)",
		    names.acct[k->acct], k->prog);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		die(100, "refusing to run %s as %s: uid or gid 0", k->prog,
		    names.acct[k->acct]);
	k->uid = pw->pw_uid;
	k->gid = pw->pw_gid;
}

static void
setup(void)
{
	static str ctl, env_root, env_tz;
	str dir = STR_INIT;
	const char *tz = getenv("TZ");
	unsigned long long n;
	int i, fd;

	must_be_roots(root, 1);
	if (chdir(root) == -1)
		die_sys(111, "unable to enter %s", root);
	if (root_path(&ctl, root, "control") == -1)
		nomem();
	ctl_setdir(ctl.s);
	if (priv_names_load(&names) == -1)
		die_sys(111, "unable to read %s/accounts", ctl.s);

	if (bin_path(&dir, "") == -1)
		die_sys(111, "unable to find my own directory");
	must_be_roots(dir.s, 1);
	str_free(&dir);
	for (i = 0; i < NKIDS; i++) {
		struct kid *k = &kids[i];

		if (i == K_LOG && !use_log)
			continue;
		if (i != K_LOG) {
			if (bin_path(&k->path, k->prog) == -1)
				die_sys(111, "unable to find %s", k->prog);
			if (i == K_RSPAWN) {
				have_rspawn = access(k->path.s, X_OK) == 0;
				if (!have_rspawn)
					continue;
			}
			must_be_roots(k->path.s, 0);
		}
		resolve(k);
	}

	if (ctl_num("concurrencyremote", &n) < 0)
		die_sys(111, "unable to read control/concurrencyremote");
	if (n > RSPAWN_NPROC_MAX)
		n = RSPAWN_NPROC_MAX;
	nproc_rspawn = n + RSPAWN_NPROC;

	/* a clean environment for everything we start */
	if (str_copys(&env_root, "MOAT_ROOT=") == -1 ||
	    str_cats(&env_root, root) == -1 || str_0(&env_root) == -1)
		nomem();
	child_env[0] = "PATH=/usr/bin:/bin";
	child_env[1] = env_root.s;
	if (tz && strlen(tz) < 256) {
		if (str_copys(&env_tz, "TZ=") == -1 ||
		    str_cats(&env_tz, tz) == -1 || str_0(&env_tz) == -1)
			nomem();
		child_env[2] = env_tz.s;
	}

	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull == -1)
		die_sys(111, "unable to open /dev/null");
	/* no second chain on this queue: moat-send's lock would refuse it
	 * later; say so now, clearly */
	fd = open("queue/info", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1)
		die_sys(111, "unable to open %s/queue/info (run moat-setup)",
		        root);
	if (flock(fd, LOCK_EX | LOCK_NB) == -1)
		die(111, "moat-send is already running on %s/queue", root);
	close(fd);
}

/* ------------------------------------------------------------ children */

static _Noreturn void
child_die(const char *prog, const char *what)
{
	log_sys("%s: unable to %s", prog, what);
	_exit(111);
}

static void
limit(int res, unsigned long long v)
{
	struct rlimit rl;

	rl.rlim_cur = rl.rlim_max = (rlim_t)v;
	if (setrlimit(res, &rl) == -1)
		child_die("moat-start", "set a resource limit");
}

/* in a child: limits, groups, uid, in that order, and checked */
static void
become(const struct kid *k)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	signal(SIGPIPE, SIG_DFL);
	limit(RLIMIT_CORE, 0);
	if (k == &kids[K_SEND]) {
		limit(RLIMIT_NPROC, SEND_NPROC);
		limit(RLIMIT_FSIZE, SEND_FSIZE);
	} else if (k == &kids[K_RSPAWN]) {
		limit(RLIMIT_NPROC, nproc_rspawn);
	} else if (k == &kids[K_CLEAN]) {
		limit(RLIMIT_NPROC, CLEAN_NPROC);
	} else if (k == &kids[K_LOG]) {
		limit(RLIMIT_NPROC, 0);
	}
	if (k->uid == 0) {
		if (setgroups(0, 0) == -1)
			child_die(k->prog, "drop supplementary groups");
		return;
	}
	if (setgroups(1, &k->gid) == -1 || setgid(k->gid) == -1 ||
	    setuid(k->uid) == -1)
		child_die(k->prog, "switch user");
	if (getuid() != k->uid || geteuid() != k->uid || getgid() != k->gid ||
	    getegid() != k->gid || setuid(0) != -1)
		child_die(k->prog, "switch user for good");
	/* cleared by the switch; now it stays across exec */
	if (k == &kids[K_SEND] && prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		child_die(k->prog, "ask for the parent's death signal");
}

static void
close_from(int lo)
{
	long max, fd;

	if (close_range((unsigned)lo, ~0U, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = lo; fd < max; fd++)
		close((int)fd);
}

/* start k with from[i] on descriptor at[i] (at[] < 6) and 2 as it is */
static void
spawn(struct kid *k, const int *from, const int *at, int n)
{
	pid_t pid = fork();

	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		char *argv[] = {(char *)k->prog, 0};
		int tmp[6], i, fd;

		for (i = 0; i < n; i++)
			if ((tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 10)) ==
			    -1)
				child_die(k->prog, "move descriptors");
		for (i = 0; i < n; i++)
			if (dup2(tmp[i], at[i]) == -1)
				child_die(k->prog, "move descriptors");
		for (fd = 3; fd < 6; fd++) {
			for (i = 0; i < n && at[i] != fd; i++)
				;
			if (i == n)
				close(fd);
		}
		close_from(6);
		setpgid(0, 0); /* a terminal's ^C is for moat-start alone */
		become(k);
		execve(k->path.s, argv, child_env);
		child_die(k->prog, "run it");
	}
	k->pid = pid;
}

/* ---- the logger ---- */

static volatile sig_atomic_t log_hup;

static void
on_log_hup(int sig)
{
	(void)sig;
	log_hup = 1;
}

static int
log_open(void)
{
	return open(logfile.s,
	            O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY |
	                O_CLOEXEC,
	            0640);
}

static void
log_write(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* disk full: the line is lost, we go on */
		s += w;
		n -= (size_t)w;
	}
}

/* copy fd 0 to the log file, a time stamp before every line */
static _Noreturn void
logger(void)
{
	static char buf[65536];
	struct sigaction sa;
	int fd, bol = 1;

	prctl(PR_SET_NAME, "moat-log");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_log_hup; /* no SA_RESTART: it ends a read */
	sigaction(SIGHUP, &sa, 0);
	signal(SIGTERM, SIG_DFL);
	become(&kids[K_LOG]);
	fd = log_open();
	if (fd == -1)
		child_die("moat-log", logfile.s);
	for (;;) {
		ssize_t n = read(0, buf, sizeof buf);
		ssize_t i, start = 0;

		if (log_hup) {
			int nfd = log_open();

			log_hup = 0;
			if (nfd != -1) {
				close(fd);
				fd = nfd;
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(n == 0 ? 0 : 111);
		for (i = 0; i < n; i++) {
			if (bol) {
				char stamp[32];
				time_t t = time(0);
				struct tm tm;

				log_write(fd, buf + start, (size_t)(i - start));
				start = i;
				if (localtime_r(&t, &tm))
					log_write(fd, stamp,
					          strftime(stamp, sizeof stamp,
					                   "%Y-%m-%d %H:%M:%S ",
					                   &tm));
				bol = 0;
			}
			if (buf[i] == '\n')
				bol = 1;
		}
		log_write(fd, buf + start, (size_t)(n - start));
	}
}

static void
start_logger(void)
{
	struct kid *k = &kids[K_LOG];
	pid_t pid = fork();

	if (pid == -1)
		die_sys(111, "unable to fork");
	if (pid == 0) {
		/* 0: the pipe; 2: where moat-start's own stderr went */
		if (dup2(log_rd, 0) == -1 || dup2(orig_err, 2) == -1)
			_exit(111);
		close_from(3);
		setpgid(0, 0);
		logger();
	}
	k->pid = pid;
}

/* ---- the chain ---- */

static void
start_chain(void)
{
	int l[2], c[2], r[2] = {-1, -1};
	int at01[2] = {0, 1};

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c) == -1)
		die_sys(111, "unable to create sockets");
	if (have_rspawn &&
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, r) == -1)
		die_sys(111, "unable to create sockets");
	{
		int f[2] = {l[1], l[1]};
		spawn(&kids[K_LSPAWN], f, at01, 2);
	}
	{
		int f[2] = {c[1], c[1]};
		spawn(&kids[K_CLEAN], f, at01, 2);
	}
	if (have_rspawn) {
		int f[2] = {r[1], r[1]};
		spawn(&kids[K_RSPAWN], f, at01, 2);
	}
	if (have_rspawn) {
		int f[5] = {devnull, devnull, l[0], r[0], c[0]};
		int at[5] = {0, 1, 3, 4, 5};
		spawn(&kids[K_SEND], f, at, 5);
	} else {
		int f[4] = {devnull, devnull, l[0], c[0]};
		int at[4] = {0, 1, 3, 5};
		spawn(&kids[K_SEND], f, at, 4);
	}
	close(l[0]);
	close(l[1]);
	close(c[0]);
	close(c[1]);
	if (have_rspawn) {
		close(r[0]);
		close(r[1]);
	}
	log_msg("started moat-send (%s), moat-lspawn (root), moat-clean (%s)"
	        "%s%s%s",
	        names.acct[PA_MOATS], names.acct[PA_MOATQ],
	        have_rspawn ? ", moat-rspawn (" : "",
	        have_rspawn ? names.acct[PA_MOATR] : "",
	        have_rspawn ? ")" : "");
}

/* ------------------------------------------------------------ supervision */

static int
chain_alive(void)
{
	int i;

	for (i = K_LSPAWN; i < NKIDS; i++)
		if (kids[i].pid)
			return 1;
	return 0;
}

static void
signal_chain(int sig)
{
	int i;

	for (i = K_LSPAWN; i < NKIDS; i++)
		if (kids[i].pid)
			kill(kids[i].pid, sig);
}

static int
status_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* too many restarts lately? records this one */
static int
too_many(time_t *times, time_t now)
{
	memmove(times + 1, times, (RESTARTS - 1) * sizeof *times);
	times[0] = now;
	return times[RESTARTS - 1] &&
	       now - times[RESTARTS - 1] < RESTART_WINDOW;
}

enum { RUNNING, RESTARTING, STOPPING };

static int
supervise(void)
{
	time_t chain_starts[RESTARTS] = {0}, log_starts[RESTARTS] = {0};
	time_t deadline = 0;
	int state = RUNNING, phase = 0, failed = 0;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGALRM);
	for (;;) {
		struct timespec ts = {60, 0};
		time_t now;
		pid_t pid;
		int st, sig, i;

		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (i = 0; i < NKIDS && kids[i].pid != pid; i++)
				;
			if (i == NKIDS)
				continue;
			kids[i].pid = 0;
			if (i == K_LOG) {
				if (state == STOPPING && !chain_alive())
					continue;
				log_msg("moat-log ended (status %d)",
				        status_code(st));
				if (too_many(log_starts, time(0))) {
					log_msg("the logger keeps failing; "
					        "stopping");
					failed = 1;
					state = STOPPING;
					signal_chain(SIGTERM);
					deadline = time(0) + KILL_WAIT;
					phase = 2;
					continue;
				}
				sleep(1);
				start_logger();
				continue;
			}
			if (state == RUNNING) {
				log_msg("%s ended unexpectedly (status %d); "
				        "restarting the chain",
				        kids[i].prog, status_code(st));
				state = RESTARTING;
				signal_chain(SIGTERM);
				deadline = time(0) + RESTART_WAIT;
			} else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
				log_msg("%s ended with status %d", kids[i].prog,
				        status_code(st));
			}
		}
		now = time(0);
		if (state == RESTARTING && !chain_alive()) {
			if (too_many(chain_starts, now)) {
				log_msg("the delivery chain keeps failing; "
				        "giving up");
				failed = 1;
				break;
			}
			sleep(1);
			start_chain();
			state = RUNNING;
			deadline = 0;
		}
		if (state == STOPPING && !chain_alive())
			break;
		if (deadline && now >= deadline) {
			if (state == STOPPING && phase == 1) {
				log_msg("deliveries still running after %d "
				        "seconds; stopping them",
				        STOP_WAIT);
				signal_chain(SIGTERM);
				deadline = now + KILL_WAIT;
				phase = 2;
			} else {
				signal_chain(SIGKILL);
				deadline = now + KILL_WAIT;
			}
		}
		if (deadline)
			ts.tv_sec = deadline > now ? deadline - now : 1;
		sig = sigtimedwait(&set, 0, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			if (state == STOPPING)
				continue;
			log_msg("stopping: moat-send finishes its deliveries");
			if (kids[K_SEND].pid && state == RUNNING)
				kill(kids[K_SEND].pid, SIGTERM);
			else
				signal_chain(SIGTERM);
			if (state == RUNNING) {
				deadline = time(0) + STOP_WAIT;
				phase = 1;
			}
			state = STOPPING;
		} else if (sig == SIGHUP) {
			int fw[] = {K_SEND, K_LSPAWN, K_RSPAWN, K_LOG};

			for (i = 0; i < 4; i++)
				if (kids[fw[i]].pid)
					kill(kids[fw[i]].pid, SIGHUP);
			log_msg("SIGHUP passed on");
		} else if (sig == SIGALRM) {
			if (kids[K_SEND].pid)
				kill(kids[K_SEND].pid, SIGALRM);
		}
	}
	/* the chain is gone */
	if (failed)
		signal_chain(SIGKILL);
	log_msg(failed ? "stopped after a failure" : "stopped");
	return failed ? 111 : 0;
}

/* the logger has the last word: close our end, let it drain */
static void
stop_logger(void)
{
	time_t end = time(0) + LOGGER_WAIT;
	int st;

	if (!kids[K_LOG].pid)
		return;
	if (dup2(orig_err, 2) == -1)
		close(2);
	while (kids[K_LOG].pid) {
		pid_t pid = waitpid(kids[K_LOG].pid, &st, WNOHANG);

		if (pid == kids[K_LOG].pid || (pid == -1 && errno == ECHILD))
			break;
		if (time(0) >= end) {
			kill(kids[K_LOG].pid, SIGKILL);
			waitpid(kids[K_LOG].pid, &st, 0);
			break;
		}
		usleep(20000);
	}
	kids[K_LOG].pid = 0;
}

int
main(int argc, char **argv)
{
	const char *logname = 0;
	sigset_t set;
	int i, r;

	log_init("moat-start");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--log") && i + 1 < argc)
			logname = argv[++i];
		else if (!strncmp(argv[i], "--log=", 6))
			logname = argv[i] + 6;
		else
			die(100, "usage: moat-start [--log FILE]");
	}
	if (getuid() != 0 || geteuid() != 0)
		die(100, "must be run as root (it starts each program under "
		         "its own account)");
	if (logname) {
		if (!*logname || (*logname != '/' && strchr(logname, '/')) ||
		    !strcmp(logname, ".") || !strcmp(logname, ".."))
			die(100, "--log takes an absolute path or a file name "
			         "in PREFIX/log");
		if (*logname == '/') {
			if (str_copys(&logfile, logname) == -1)
				nomem();
		} else if (root_path(&logfile, root, "log") == -1 ||
		           str_catc(&logfile, '/') == -1 ||
		           str_cats(&logfile, logname) == -1) {
			nomem();
		}
		if (str_0(&logfile) == -1)
			nomem();
		use_log = 1;
	}
	umask(022);
	setup();
	clearenv();

	/* every signal is taken synchronously, by sigtimedwait() */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &set, 0) == -1)
		die_sys(111, "unable to block signals");
	signal(SIGPIPE, SIG_IGN);

	if (use_log) {
		int p[2];

		if (pipe2(p, O_CLOEXEC) == -1)
			die_sys(111, "unable to create the log pipe");
		orig_err = fcntl(2, F_DUPFD_CLOEXEC, 3);
		if (orig_err == -1)
			die_sys(111, "unable to keep stderr");
		log_rd = p[0]; /* kept, so a new logger can take over */
		start_logger();
		if (dup2(p[1], 2) == -1)
			die_sys(111, "unable to redirect stderr");
		close(p[1]);
	}
	log_msg("starting in %s", root);
	start_chain();
	r = supervise();
	if (use_log)
		stop_logger();
	return r;
}
