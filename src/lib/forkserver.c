/*
 * forkserver.c: the server side of moat-tcpd -F (see forkserver.h): one
 * process, started once, that forks a fresh copy of itself per connection.
 *
 * The server trusts moat-tcpd (its parent, same user) for nothing but the
 * shape of a request: exactly one descriptor, variables from a fixed list,
 * printable values.  Anything else is refused with FS_FAILED.
 */
#include "forkserver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define FS_FDS_MAX 4 /* descriptors read from one request, to close extras */

static const char *const known[] = {
	"PROTO",         "TCPLOCALIP",    "TCPLOCALPORT", "TCPREMOTEIP",
	"TCPREMOTEPORT", "TCPREMOTEHOST", "RELAYCLIENT",  "MOAT_DOWN_HOSTS",
	0,
};

static int chld[2] = {-1, -1};

static void
on_chld(int sig)
{
	int e = errno;
	ssize_t r = write(chld[1], "", 1);

	(void)r; /* full pipe: a wake-up is pending anyway */
	(void)sig;
	errno = e;
}

int
fs_var_ok(const char *v, size_t len)
{
	const char *eq = memchr(v, '=', len);
	size_t i, n;

	if (!eq)
		return 0;
	n = (size_t)(eq - v);
	for (i = n + 1; i < len; i++)
		if ((unsigned char)v[i] < 0x21 || (unsigned char)v[i] > 0x7e)
			return 0;
	for (i = 0; known[i]; i++)
		if (strlen(known[i]) == n && !memcmp(known[i], v, n))
			return 1;
	return 0;
}

static void
reply(int s, int what, pid_t pid, int status)
{
	struct fs_reply r;

	memset(&r, 0, sizeof r);
	r.what = what;
	r.pid = pid;
	r.status = status;
	while (send(s, &r, sizeof r, MSG_NOSIGNAL) == -1 && errno == EINTR)
		;
	/* on failure moat-tcpd is gone: the next recv says so */
}

static void
reap(int s)
{
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
		reply(s, FS_ENDED, pid, st);
}

/* n bytes of NUL-terminated NAME=value, each one known, then perhaps an
 * empty string and at most FS_ARGS_MAX arguments */
static int
vars_ok(const char *v, size_t n)
{
	size_t off = 0, args = 0;
	int in_args = 0;

	if (n == 0 || v[n - 1] != 0)
		return 0;
	while (off < n) {
		size_t l = strlen(v + off);

		if (in_args) {
			if (++args > FS_ARGS_MAX)
				return 0;
		} else if (l == 0) {
			in_args = 1;
		} else if (!fs_var_ok(v + off, l)) {
			return 0;
		}
		off += l + 1;
	}
	return !in_args || args > 0;
}

/*
 * one request into vars (its length in *n) and *fd: 1 a request, 0
 * nothing to do (interrupted, or a bad request already answered), -1
 * moat-tcpd has gone
 */
static int
request(int s, char *vars, size_t *n, int *fd, int *nfd_out)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(FS_FDS_MAX * sizeof(int))];
	} cb;
	struct iovec iov = {vars, FS_REQ_MAX};
	struct msghdr m;
	struct cmsghdr *c;
	int fds[FS_FDS_MAX], nfd = 0, i;
	ssize_t r;

	memset(&m, 0, sizeof m);
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cb.b;
	m.msg_controllen = sizeof cb.b;
	r = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
	if (r == 0)
		return -1;
	if (r == -1)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		size_t k, j;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (j = 0; j < k && nfd < FS_FDS_MAX; j++)
			memcpy(&fds[nfd++], CMSG_DATA(c) + j * sizeof(int),
			       sizeof(int));
	}
	if (nfd < 1 || nfd > 2 || fds[0] <= 2 || fds[nfd - 1] <= 2 ||
	    (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    !vars_ok(vars, (size_t)r)) {
		for (i = 0; i < nfd; i++)
			close(fds[i]);
		log_msg("fork server: a malformed request, refused");
		reply(s, FS_FAILED, 0, EINVAL);
		return 0;
	}
	*n = (size_t)r;
	fd[0] = fds[0];
	fd[1] = fds[nfd - 1];
	*nfd_out = nfd;
	return 1;
}

/* in the child: become the process for this request */
static void
child(int s, const int *fd, int nfd, char *vars, size_t n, int *argc,
      char ***argv)
{
	static char *args[FS_ARGS_MAX + 1];
	struct sigaction sa;
	sigset_t none;
	size_t off = 0;
	int k = 0;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	close(s);
	close(chld[0]);
	close(chld[1]);
	if (dup2(fd[0], 0) == -1 || dup2(fd[1], 1) == -1)
		_exit(111);
	close(fd[0]);
	if (nfd > 1)
		close(fd[1]);
	unsetenv(FS_ENV);
	while (off < n) {
		char *v = vars + off, *eq;

		off += strlen(v) + 1;
		if (!*v) /* the arguments follow */
			break;
		eq = strchr(v, '=');
		*eq = 0;
		if (setenv(v, eq + 1, 1) == -1)
			_exit(111);
	}
	if (off >= n)
		return;
	while (off < n) {
		args[k++] = vars + off;
		off += strlen(vars + off) + 1;
	}
	args[k] = 0;
	*argc = k;
	*argv = args;
}

void
forkserver(int *argc, char ***argv)
{
	static char vars[FS_REQ_MAX];
	const char *e = getenv(FS_ENV);
	struct sigaction sa;
	char *end;
	long s;

	if (!e)
		return;
	errno = 0;
	s = strtol(e, &end, 10);
	if (errno || end == e || *end || s < 3 || s > 1 << 20 ||
	    fcntl((int)s, F_SETFD, FD_CLOEXEC) == -1)
		die(111, "fork server: %s is not a descriptor", FS_ENV);
	if (pipe2(chld, O_CLOEXEC | O_NONBLOCK) == -1)
		die_sys(111, "fork server: cannot make a pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, 0);
	reply((int)s, FS_READY, getpid(), 0);
	for (;;) {
		struct pollfd p[2] = {{(int)s, POLLIN, 0}, {chld[0], POLLIN, 0}};
		char drain[64];
		size_t n;
		pid_t pid;
		int fd[2], nfd, r;

		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			die_sys(111, "fork server: poll failed");
		}
		if (p[1].revents) {
			while (read(chld[0], drain, sizeof drain) > 0)
				;
			reap((int)s);
		}
		if (!p[0].revents)
			continue;
		r = request((int)s, vars, &n, fd, &nfd);
		if (r == -1) /* moat-tcpd has gone; the children go on alone */
			exit(0);
		if (r == 0)
			continue;
		pid = fork();
		if (pid == 0) {
			child((int)s, fd, nfd, vars, n, argc, argv);
			return;
		}
		close(fd[0]);
		if (nfd > 1)
			close(fd[1]);
		if (pid == -1)
			reply((int)s, FS_FAILED, 0, errno);
		else
			reply((int)s, FS_STARTED, pid, 0);
	}
}
