/*
 * moat-lspawn: the local-delivery spawner.
 *
 * Runs as: root in the installed system (started by moat-start), only so
 * that it can switch to each recipient's uid; under `moat run`, the run
 * account, which then delivers only to user-table entries with its own uid.
 * Takes no arguments.
 *
 * Reads delivery jobs (job.h) on fd 0 and writes one result per job on
 * fd 1, in whatever order the deliveries finish.  Each job must carry
 * exactly one recipient "local@domain" (the domain follows the last '@').
 * For each job it looks the local part up (users.h: the user table, then,
 * as root, the password database, then the alias user), refuses uid 0,
 * opens ROOT/queue/mess/N/ID read-only and starts, in a child switched to
 * the user's uid and gid (supplementary groups: the gid alone),
 *
 *   moat-local user homedir local dash ext domain sender defaultdelivery
 *
 * with the message on fd 0, a pipe on fds 1 and 2 (so moat-local's report
 * and any error it prints become the result text, at most 1000 bytes), the
 * environment PATH=/usr/bin:/bin and MOAT_ROOT, and every other descriptor
 * closed.  defaultdelivery is control/defaultdelivery (re-read on SIGHUP).
 * moat-local is found next to moat-lspawn.  Its exit status becomes the
 * result: 0 K (delivered), 100 D (failed for good), 111 Z (try again);
 * anything else, or death by a signal, Z.
 *
 * Results without moat-local: an unknown local part is D 5.1.1; an empty
 * local part is a trash address, reported K with nothing delivered (as
 * qmail does); a job with no or several recipients, or a recipient
 * without '@', is D; a failed lookup, uid 0, a uid other than our own in
 * single-user mode, a missing message file or a failed fork are Z.
 *
 * Any number of deliveries run at once (moat-send enforces
 * concurrencylocal); more than MAX_OUTSTANDING at once, or a malformed
 * job, is a protocol error: reading stops, the running deliveries are
 * finished and reported, and moat-lspawn exits 111.  At end of input, or
 * on SIGTERM or SIGINT, it likewise stops reading, waits for the running
 * deliveries, reports them and exits 0.  One poll() loop drives everything;
 * SIGCHLD arrives through a signalfd.
 *
 * Exit codes: 0 clean finish; 100 usage; 111 protocol or system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "control.h"
#include "job.h"
#include "spawner.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"
#include "users.h"

#define MAX_OUTSTANDING 10000
#define REPORT_MAX 1000
/* the largest well-formed job, with room to spare */

struct kid {
	pid_t pid;
	unsigned long n; /* job number */
	int fd;          /* report pipe; -1 after EOF */
	int exited;
	int status; /* wait status, once exited */
	str report; /* first REPORT_MAX bytes of moat-local's output */
};

static struct kid *kids;
static size_t nkids, akids;

static str local_bin; /* moat-local next to us */
static str defaultdelivery;
static int system_mode;

/* one result with one status for nres recipients */

/* at start a failure is fatal; after SIGHUP the old value stays */
static void
read_defaultdelivery(int fatal)
{
	str v = STR_INIT;

	if (ctl_line("defaultdelivery", &v) < 0) {
		if (fatal)
			die_sys(111, "unable to read control/defaultdelivery");
		log_sys("unable to read control/defaultdelivery; keeping "
		        "the old value");
		str_free(&v);
		return;
	}
	if (v.len == 0 && str_copys(&v, "./Maildir/") == -1)
		sp_nomem();
	if (str_0(&v) == -1)
		sp_nomem();
	str_free(&defaultdelivery);
	defaultdelivery = v;
}

/* ---- the child: become the user, run moat-local ---- */

static _Noreturn void
child_fail(const char *what, int e)
{
	char buf[300];
	int n = snprintf(buf, sizeof buf, "moat-lspawn: %s: %s (#4.3.0)\n",
	                 what, strerror(e));

	if (n > 0 &&
	    write(1, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) <
	        0)
		_exit(111);
	_exit(111);
}

static _Noreturn void
child(int mess, int w, const struct user *u, const char *local,
      const char *domain, const char *sender)
{
	char *argv[11], *envp[3];
	sigset_t none;
	str rootenv = STR_INIT;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(w, 1) == -1 || dup2(w, 2) == -1)
		_exit(111);
	if (dup2(mess, 0) == -1)
		child_fail("unable to set up the message descriptor", errno);
	sp_close_others();
	if (system_mode) {
		if (setgroups(1, &u->gid) == -1)
			child_fail("unable to set groups", errno);
		if (setgid(u->gid) == -1)
			child_fail("unable to set gid", errno);
		if (setuid(u->uid) == -1)
			child_fail("unable to set uid", errno);
		if (getuid() != u->uid || geteuid() != u->uid ||
		    getgid() != u->gid || getegid() != u->gid ||
		    setuid(0) != -1)
			child_fail("uid or gid did not switch", EPERM);
	}
	if (getuid() == 0 || geteuid() == 0)
		child_fail("refusing to run moat-local as root", EPERM);
	if (str_copys(&rootenv, "MOAT_ROOT=") == -1 ||
	    str_cats(&rootenv, sp.root.s) == -1 || str_0(&rootenv) == -1)
		child_fail("out of memory", ENOMEM);
	argv[0] = "moat-local";
	argv[1] = "--"; /* a user name like "-n" is no option */
	argv[2] = u->user.s;
	argv[3] = u->home.s;
	argv[4] = (char *)local;
	argv[5] = u->dash.s;
	argv[6] = u->ext.s;
	argv[7] = (char *)domain;
	argv[8] = (char *)sender;
	argv[9] = defaultdelivery.s;
	argv[10] = 0;
	envp[0] = "PATH=/usr/bin:/bin";
	envp[1] = rootenv.s;
	envp[2] = 0;
	execve(local_bin.s, argv, envp);
	child_fail("unable to run moat-local", errno);
}

/* ---- starting a job ---- */

static const char *
lookup_error(int e)
{
	if (e == EPROTO)
		return "users/cdb is damaged or not in moat's format (run "
		       "moat-newu)";
	if (e == EPERM)
		return "users/cdb must be owned by root and writable by root "
		       "alone";
	return strerror(e);
}

static void
start(struct job *j)
{
	struct user u = USER_INIT;
	str path = STR_INIT, rel = STR_INIT;
	char *rcpt = j->rcpts.s, *at;
	size_t llen;
	int mess, pi[2], r;
	pid_t pid;
	struct kid *k;

	if (j->nrcpt != 1) {
		sp_result(j->n, 'D', j->nrcpt,
		       "moat-lspawn: protocol error: a local delivery job "
		       "carries exactly one recipient (#5.3.5)");
		return;
	}
	at = strrchr(rcpt, '@');
	if (!at) {
		sp_result(j->n, 'D', 1,
		       "moat-lspawn: protocol error: recipient "
		       "without a domain (#5.1.3)");
		return;
	}
	llen = (size_t)(at - rcpt);
	if (llen == 0) {
		sp_result(j->n, 'K', 1,
		       "Trash address: empty local part, "
		       "nothing delivered. (#2.0.0)");
		return;
	}
	r = users_lookup(sp.root.s, rcpt, llen, system_mode ? USERS_SYSTEM : 0,
	                 &u);
	if (r == -1) {
		sp_result(j->n, 'Z', 1,
		       "Temporary failure looking up the "
		       "recipient: %s. (#4.3.0)",
		       lookup_error(errno));
		goto done;
	}
	if (r == 0) {
		sp_result(j->n, 'D', 1,
		       "Sorry, no mailbox here by that name. "
		       "(#5.1.1)");
		goto done;
	}
	if (u.uid == 0) {
		sp_result(j->n, 'Z', 1, "refusing to deliver as root (#4.3.0)");
		goto done;
	}
	if (!system_mode && u.uid != geteuid()) {
		sp_result(j->n, 'Z', 1,
		       "the user table gives uid %lu, but this "
		       "single-user moat runs as uid %lu and "
		       "cannot deliver as anyone else (#4.3.0)",
		       (unsigned long)u.uid, (unsigned long)geteuid());
		goto done;
	}
	if (queue_file(&rel, "queue/mess", j->id) == -1 ||
	    str_copyb(&path, sp.root.s, sp.root.len) == -1 ||
	    str_catc(&path, '/') == -1 ||
	    str_catb(&path, rel.s, rel.len) == -1 || str_0(&path) == -1)
		sp_nomem();
	mess = open(path.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (mess == -1) {
		if (errno == ENOENT)
			sp_result(j->n, 'Z', 1,
			       "moat-lspawn: the message file "
			       "queue/%s is missing (#4.3.0)",
			       rel.s + 6);
		else
			sp_result(j->n, 'Z', 1,
			       "moat-lspawn: unable to open the "
			       "message file: %s (#4.3.0)",
			       strerror(errno));
		goto done;
	}
	if (nkids == akids) {
		size_t na = akids ? akids * 2 : 16;
		struct kid *nk = realloc(kids, na * sizeof *kids);
		if (!nk)
			sp_nomem();
		kids = nk;
		akids = na;
	}
	if (pipe2(pi, O_CLOEXEC) == -1) {
		sp_result(j->n, 'Z', 1,
		       "moat-lspawn: unable to create a pipe: %s "
		       "(#4.3.0)",
		       strerror(errno));
		close(mess);
		goto done;
	}
	*at = 0; /* rcpt is now the local part, at + 1 the domain */
	pid = fork();
	if (pid == 0)
		child(mess, pi[1], &u, rcpt, at + 1, j->sender.s);
	*at = '@';
	close(pi[1]);
	close(mess);
	if (pid == -1) {
		sp_result(j->n, 'Z', 1, "moat-lspawn: unable to fork: %s (#4.3.0)",
		       strerror(errno));
		close(pi[0]);
		goto done;
	}
	if (fcntl(pi[0], F_SETFL, O_NONBLOCK) == -1)
		log_sys("unable to make a report pipe non-blocking");
	k = &kids[nkids++];
	k->pid = pid;
	k->n = j->n;
	k->fd = pi[0];
	k->exited = 0;
	k->status = 0;
	k->report = (str)STR_INIT;
done:
	users_free(&u);
	str_free(&path);
	str_free(&rel);
}

/* ---- finishing a delivery ---- */

/* read what the pipe has; 0 at EOF or error (fd closed), 1 otherwise */
static int
drain(struct kid *k)
{
	int cut = 0;

	return sp_drain(&k->fd, &k->report, REPORT_MAX, &cut);
}

static void
finish(struct kid *k)
{
	char status = 'Z';
	const char *def = 0;
	size_t i, len;
	char *s;

	if (k->fd != -1) {
		/* moat-local has exited: what it wrote is in the pipe; a
		 * background process that still holds the pipe is not
		 * waited for */
		drain(k);
		if (k->fd != -1) {
			close(k->fd);
			k->fd = -1;
		}
	}
	if (str_0(&k->report) == -1)
		sp_nomem();
	s = k->report.s;
	len = k->report.len;
	for (i = 0; i < len; i++)
		if (s[i] == 0)
			s[i] = ' ';
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\n' ||
	               s[len - 1] == '\r' || s[len - 1] == '\t'))
		s[--len] = 0;
	if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 0) {
		status = 'K';
		def = "delivered";
	} else if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 100) {
		status = 'D';
		def = "moat-local: permanent failure, no reason given (#5.3.0)";
	} else if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 111) {
		def = "moat-local: temporary failure, no reason given (#4.3.0)";
	} else {
		if (WIFSIGNALED(k->status))
			log_msg("moat-local (job %lu) killed by signal %d",
			        k->n, WTERMSIG(k->status));
		else
			log_msg("moat-local (job %lu) exited %d", k->n,
			        WEXITSTATUS(k->status));
		len = 0;
		def = "moat-local crashed or was killed (#4.3.0)";
	}
	sp_result(k->n, status, 1, "%s", len ? s : def);
	str_free(&k->report);
	*k = kids[--nkids];
}

static void
reap(void)
{
	int st;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (i = 0; i < nkids; i++)
			if (kids[i].pid == pid && !kids[i].exited) {
				kids[i].exited = 1;
				kids[i].status = st;
				break;
			}
	}
	for (i = 0; i < nkids;) {
		if (kids[i].exited)
			finish(&kids[i]); /* moves the last kid to i */
		else
			i++;
	}
}

/* ---- results out ---- */

/* ---- the loop ---- */

/* a job from moat-send: started, or -1 (too many at once) */
static int
take(struct job *j)
{
	if (nkids >= MAX_OUTSTANDING) {
		log_msg("protocol error: more than %d deliveries at once",
		        MAX_OUTSTANDING);
		sp_result(j->n, 'Z', j->nrcpt,
		          "moat-lspawn: too many deliveries at once (#4.3.0)");
		return -1;
	}
	start(j);
	return 0;
}

static void
setup(void)
{
	sp_setup();
	read_defaultdelivery(1);
	if (bin_path(&local_bin, "moat-local") == -1)
		die_sys(111, "unable to find my own directory");
}

int
main(int argc, char **argv)
{
	struct job j = {0, 0, STR_INIT, STR_INIT, 0};
	str in = STR_INIT;
	struct pollfd *pfd = 0;
	size_t apfd = 0;
	sigset_t set;
	int sfd, reading = 1;

	log_init(argc > 0 ? argv[0] : "moat-lspawn");
	if (argc > 1)
		die(100, "usage: moat-lspawn (jobs on fd 0, results on fd 1)");
	if (geteuid() == 0 && getuid() != 0)
		die(111, "refusing to run setuid root");
	system_mode = getuid() == 0;
	setup();

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, 0) == -1)
		die_sys(111, "unable to block signals");
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd == -1)
		die_sys(111, "unable to create a signalfd");

	for (;;) {
		size_t np = 0, i, ikid;
		int pin = -1, pout = -1;

		if (!reading && nkids == 0 && (sp.out.len == 0 || sp.dead))
			break;
		if (apfd < nkids + 3) {
			size_t na = nkids + 64;
			struct pollfd *p = realloc(pfd, na * sizeof *pfd);
			if (!p)
				sp_nomem();
			pfd = p;
			apfd = na;
		}
		pfd[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		if (reading) {
			pin = (int)np;
			pfd[np++] = (struct pollfd){.fd = 0, .events = POLLIN};
		}
		if (sp.out.len && !sp.dead) {
			pout = (int)np;
			pfd[np++] = (struct pollfd){.fd = 1, .events = POLLOUT};
		}
		ikid = np;
		for (i = 0; i < nkids; i++)
			pfd[np++] =
			    (struct pollfd){.fd = kids[i].fd, .events = POLLIN};
		/* fd -1 entries are ignored by poll */
		if (poll(pfd, (nfds_t)np, -1) == -1) {
			if (errno == EINTR)
				continue;
			die_sys(111, "poll");
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGTERM ||
				    si.ssi_signo == SIGINT)
					reading = 0;
				else if (si.ssi_signo == SIGHUP)
					read_defaultdelivery(0);
			}
		}
		/* kids' output first: indexes shift once reap() runs */
		for (i = 0; i < nkids; i++)
			if (kids[i].fd != -1 &&
			    pfd[ikid + i].fd == kids[i].fd &&
			    pfd[ikid + i].revents)
				drain(&kids[i]);
		reap();
		if (pin != -1 && reading && pfd[pin].revents)
			reading = sp_read_jobs(&in, &j, take);
		if (pout != -1 && pfd[pout].revents)
			sp_flush();
	}
	job_free(&j);
	str_free(&in);
	free(pfd);
	free(kids);
	return sp.failed || sp.dead ? 111 : 0;
}
