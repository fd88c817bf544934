/*
 * fsclient.c: the client side of the fork server protocol; see fsclient.h
 * and forkserver.h.
 */
#include "fsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "forkserver.h"
#include "log.h"

#define FS_WAIT_MS 2000    /* longest wait for the server's answer */
#define FS_FIRST_MS 10000  /* for FS_READY after its start */
#define FS_RESTART_MS 1000 /* least time between two starts */
#define FS_FDS_MAX 4

long long
fsc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
fsc_init(struct fsc *f)
{
	memset(f, 0, sizeof *f);
	f->sock = f->old = -1;
}

int
fsc_add(str *req, const char *name, const char *value)
{
	if (str_cats(req, name) == -1)
		return -1;
	if (value && (str_catc(req, '=') == -1 || str_cats(req, value) == -1))
		return -1;
	return str_catc(req, 0);
}

/* the new server's first word: 1 FS_READY; 0 anything else, or end of
 * file (not a fork server); -1 nothing in FS_FIRST_MS (a slow start, under
 * load or a sanitizer: try again later) */
static int
ready(struct fsc *f)
{
	long long deadline = fsc_now_ms() + FS_FIRST_MS;
	struct pollfd p = {f->sock, POLLIN, 0};
	struct fs_reply r;

	for (;;) {
		long long t = fsc_now_ms();
		int k;

		if (t >= deadline)
			return -1;
		k = poll(&p, 1, (int)(deadline - t));
		if (k == -1 && errno != EINTR)
			return -1;
		if (k > 0)
			break;
	}
	return recv(f->sock, &r, sizeof r, MSG_DONTWAIT) == sizeof r &&
	       r.what == FS_READY;
}

static void
start(struct fsc *f)
{
	sigset_t all, old;
	int sv[2];
	pid_t pid;

	f->next_start = fsc_now_ms() + FS_RESTART_MS;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_sys("cannot make the fork server's socket");
		return;
	}
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0) {
		char n[16];

		sigprocmask(SIG_SETMASK, &old, 0);
		if (f->child_setup)
			f->child_setup();
		snprintf(n, sizeof n, "%d", sv[1]);
		if (fcntl(sv[1], F_SETFD, 0) == -1 ||
		    setenv(FS_ENV, n, 1) == -1)
			_exit(111);
		execvp(f->prog[0], f->prog);
		die_sys(111, "cannot run %s", f->prog[0]);
	}
	sigprocmask(SIG_SETMASK, &old, 0);
	close(sv[1]);
	if (pid == -1) {
		log_sys("cannot fork the fork server");
		close(sv[0]);
		return;
	}
	f->sock = sv[0];
	f->pid = pid;
	f->used = 0;
	switch (ready(f)) {
	case 1:
		break;
	case 0:
		log_msg("%s is not a fork server (it did not say it is "
		        "ready); running it for each request", f->prog[0]);
		f->disabled = 1;
		/* fall through */
	default:
		if (!f->disabled)
			log_msg("fork server pid %ld: not ready in time; "
			        "killed", (long)pid);
		kill(pid, SIGKILL);
		close(f->sock);
		f->sock = -1;
		f->old_pid = pid; /* reaped by the caller */
		f->pid = 0;
		return;
	}
	log_msg("fork server pid %ld", (long)pid);
}

/* FS_ENDED replies on s: 0 more may come, -1 end of file (or something
 * not to trust) */
static int
ended_from(struct fsc *f, int s)
{
	for (;;) {
		struct fs_reply r;
		ssize_t n = recv(s, &r, sizeof r, MSG_DONTWAIT);

		if (n == sizeof r && r.what == FS_ENDED)
			f->ended(r.pid, r.status);
		else if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		else
			return -1;
	}
}

/* read s, a server's socket, to its end (bounded in time); close it */
static void
finish(struct fsc *f, int s)
{
	long long deadline = fsc_now_ms() + FS_WAIT_MS;

	for (;;) {
		struct pollfd p = {s, POLLIN, 0};
		long long t = fsc_now_ms();

		if (t >= deadline || ended_from(f, s) == -1)
			break;
		if (poll(&p, 1, (int)(deadline - t)) == -1 && errno != EINTR)
			break;
	}
	close(s);
}

/*
 * The server sees end of file and exits (or has been killed).  Its socket
 * is read to the end, so no child's FS_ENDED is lost; the children it
 * leaves become ours.  Without wait, the old socket is read from the
 * caller's main loop (fsc_drain).
 */
void
fsc_close(struct fsc *f, int wait)
{
	if (f->sock == -1)
		return;
	if (f->pid) { /* its end is still to be reaped, and logged */
		f->old_pid = f->pid;
		f->pid = 0;
	}
	shutdown(f->sock, SHUT_WR);
	if (f->old != -1)
		finish(f, f->old);
	f->old = -1;
	if (wait)
		finish(f, f->sock);
	else
		f->old = f->sock;
	f->sock = -1;
	f->next_start = 0;
}

/* the server failed us: stop using it */
static void
lost(struct fsc *f, const char *why)
{
	long long next = f->next_start; /* at most one start a second */

	if (!f->stopping)
		log_msg("fork server: %s; forking and running the program "
		        "meanwhile", why);
	if (f->pid)
		kill(f->pid, SIGKILL);
	fsc_close(f, 1);
	f->next_start = next;
}

/* one reply: 1 read, 0 none yet, -1 the server has gone (lost done) */
static int
reply(struct fsc *f, struct fs_reply *r)
{
	ssize_t n = recv(f->sock, r, sizeof *r, MSG_DONTWAIT);

	if (n == sizeof *r)
		return 1;
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	                errno == EINTR))
		return 0;
	lost(f, n == 0 ? "it has gone" : n == -1 ? strerror(errno)
	                                         : "a malformed reply");
	return -1;
}

void
fsc_drain(struct fsc *f)
{
	struct fs_reply r;

	while (f->sock != -1 && reply(f, &r) == 1) {
		if (r.what == FS_ENDED)
			f->ended(r.pid, r.status);
		else
			lost(f, "an answer nobody asked for");
	}
	if (f->old != -1 && ended_from(f, f->old) == -1) {
		close(f->old);
		f->old = -1;
	}
}

int
fsc_reaped(struct fsc *f, pid_t pid, int status)
{
	if (pid <= 0 || (pid != f->pid && pid != f->old_pid))
		return 0;
	log_msg("fork server pid %ld ended, status %d", (long)pid, status);
	if (pid == f->pid)
		f->pid = 0;
	else
		f->old_pid = 0;
	return 1;
}

pid_t
fsc_spawn(struct fsc *f, const int *fds, int nfd, const str *req)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(FS_FDS_MAX * sizeof(int))];
	} cb;
	struct iovec iov;
	struct msghdr m;
	struct cmsghdr *cm;
	long long deadline;

	if (f->disabled || nfd < 1 || nfd > FS_FDS_MAX ||
	    req->len > FS_REQ_MAX)
		return -1;
	if (f->sock == -1 && fsc_now_ms() >= f->next_start)
		start(f);
	if (f->sock == -1)
		return -1;
	memset(&m, 0, sizeof m);
	memset(&cb, 0, sizeof cb);
	iov.iov_base = req->s;
	iov.iov_len = req->len;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.b;
	m.msg_controllen = CMSG_SPACE((size_t)nfd * sizeof(int));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)nfd * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)nfd * sizeof(int));
	if (sendmsg(f->sock, &m, MSG_NOSIGNAL) != (ssize_t)req->len) {
		lost(f, strerror(errno));
		return -1;
	}
	deadline = fsc_now_ms() + FS_WAIT_MS;
	for (;;) {
		struct pollfd p = {f->sock, POLLIN, 0};
		struct fs_reply r;
		long long t = fsc_now_ms();
		int k;

		if (t >= deadline) {
			lost(f, "no answer in time");
			return -2;
		}
		if (poll(&p, 1, (int)(deadline - t)) == -1 && errno != EINTR) {
			lost(f, strerror(errno));
			return -2;
		}
		k = reply(f, &r);
		if (k == -1)
			return -2;
		if (k == 0)
			continue;
		if (r.what == FS_ENDED) {
			f->ended(r.pid, r.status);
			continue;
		}
		if (r.what == FS_STARTED && r.pid > 0) {
			/* a fresh server now and then: its children share its
			 * address space layout and stack canary, and a new
			 * program (an upgrade) should be taken up */
			if (++f->used >= f->max_use)
				fsc_close(f, 0);
			return r.pid;
		}
		if (r.what == FS_FAILED) {
			errno = r.status;
			log_sys("fork server: cannot fork");
			return -1;
		}
		lost(f, "a malformed reply");
		return -2;
	}
}
