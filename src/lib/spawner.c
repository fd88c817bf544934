/*
 * spawner.c: the job and result plumbing of moat-lspawn and moat-rspawn;
 * see spawner.h.
 */
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "paths.h"

/* the longest job kept while it is incomplete */
#define INBUF_MAX ((size_t)(JOB_RCPT_MAX + 4) * (JOB_FIELD_MAX + 3))

struct spawner sp;

void
sp_nomem(void)
{
	die(111, "out of memory");
}

void
sp_setup(void)
{
	const char *r = root_dir(0);
	struct rlimit rl;
	struct stat st;
	int fd;

	/* fds 0 and 1 are the protocol; 2 must be open too, so that no
	 * pipe or message file lands on a standard descriptor */
	if (fcntl(0, F_GETFD) == -1 || fcntl(1, F_GETFD) == -1)
		_exit(111);
	if (fcntl(2, F_GETFD) == -1) {
		fd = open("/dev/null", O_WRONLY);
		if (fd != 2)
			_exit(111);
	}
	if (r[0] != '/') {
		char *cwd = getcwd(0, 0);

		if (!cwd)
			die_sys(111, "unable to find the working directory");
		if (str_copys(&sp.root, cwd) == -1 ||
		    str_catc(&sp.root, '/') == -1)
			sp_nomem();
		free(cwd);
	}
	if (str_cats(&sp.root, r) == -1 || str_0(&sp.root) == -1)
		sp_nomem();
	if (paths_setup_control(sp.root.s) == -1)
		sp_nomem();
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sp.sock = fstat(1, &st) == 0 && S_ISSOCK(st.st_mode);
}

void
sp_put(unsigned long n, const char *st, const char *texts, size_t nres)
{
	if (!sp.dead && result_put(&sp.out, n, st, texts, nres) == -1)
		sp_nomem();
}

void
sp_result(unsigned long n, char status, size_t nres, const char *fmt, ...)
{
	char text[JOB_TEXT_MAX + 1], st[JOB_RCPT_MAX];
	str texts = STR_INIT;
	va_list ap;
	size_t i, tl;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	tl = strlen(text);
	if (nres == 0 || nres > JOB_RCPT_MAX)
		nres = 1;
	for (i = 0; i < nres; i++) {
		st[i] = status;
		if (str_catb(&texts, text, tl + 1) == -1)
			sp_nomem();
	}
	sp_put(n, st, texts.s, nres);
	str_free(&texts);
}

void
sp_flush(void)
{
	ssize_t w;
	size_t n = sp.out.len - sp.outpos;
	const char *s = sp.out.s + sp.outpos;

	if (!sp.out.len)
		return;
	if (sp.sock) {
		w = send(1, s, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	} else {
		/* after POLLOUT a pipe takes PIPE_BUF bytes without blocking */
		if (n > PIPE_BUF)
			n = PIPE_BUF;
		w = write(1, s, n);
	}
	if (w < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		log_sys("unable to write results");
		sp.dead = 1;
		sp.failed = 1;
		sp.out.len = sp.outpos = 0;
		return;
	}
	str_done(&sp.out, &sp.outpos, (size_t)w);
}

int
sp_read_jobs(str *in, struct job *j, int (*take)(struct job *))
{
	char buf[65536];
	ssize_t n = read(0, buf, sizeof buf);
	size_t pos = 0;
	int r;

	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 1;
		log_sys("unable to read jobs");
		sp.failed = 1;
		return 0;
	}
	if (n == 0) {
		if (in->len) {
			log_msg("protocol error: end of input inside a job");
			sp.failed = 1;
		}
		return 0;
	}
	if (str_catb(in, buf, (size_t)n) == -1)
		sp_nomem();
	while ((r = job_get(in, &pos, j)) == 1)
		if (take(j) == -1) {
			sp.failed = 1;
			return 0;
		}
	str_drop(in, pos);
	if (r == -1) {
		if (errno == ENOMEM)
			sp_nomem();
		log_msg("protocol error: malformed job");
		sp.failed = 1;
		return 0;
	}
	if (in->len > INBUF_MAX) {
		log_msg("protocol error: a job longer than %zu bytes",
		        (size_t)INBUF_MAX);
		sp.failed = 1;
		return 0;
	}
	return 1;
}

int
sp_drain(int *fd, str *out, size_t max, int *cut)
{
	char buf[65536];

	for (;;) {
		ssize_t n = read(*fd, buf, sizeof buf);

		if (n > 0) {
			size_t room = max - out->len;
			size_t take = (size_t)n < room ? (size_t)n : room;

			if (take && str_catb(out, buf, take) == -1)
				sp_nomem();
			if (take < (size_t)n)
				*cut = 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		close(*fd);
		*fd = -1;
		return 0;
	}
}

void
sp_close_others(void)
{
	long max, fd;

	if (close_range(3, ~0U, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (fd = 3; fd < max; fd++)
		close((int)fd);
}
