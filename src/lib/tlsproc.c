/*
 * tlsproc.c: start moat-tlsd and read its status lines (see tlsproc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io.h"
#include "paths.h"
#include "tlsproc.h"

extern char **environ;

#define FD_HIGH 10 /* sources moved up first, so no dup2 hits another */

int
tls_start(struct tlsproc *t, int net, char *const args[])
{
	str prog = STR_INIT;
	int sv[2] = {-1, -1}, st[2] = {-1, -1}, hi[3] = {-1, -1, -1};
	int r = 0, i, n;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t def;
	char *argv[8];

	for (n = 0; args[n]; n++)
		if (n + 2 > (int)(sizeof argv / sizeof argv[0])) {
			errno = E2BIG;
			return -1;
		}
	if (bin_path(&prog, "moat-tlsd") == -1)
		return -1;
	argv[0] = prog.s;
	for (i = 0; i <= n; i++)
		argv[i + 1] = args[i];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1 ||
	    pipe2(st, O_CLOEXEC) == -1 ||
	    (hi[0] = fcntl(net, F_DUPFD_CLOEXEC, FD_HIGH)) == -1 ||
	    (hi[1] = fcntl(sv[1], F_DUPFD_CLOEXEC, FD_HIGH)) == -1 ||
	    (hi[2] = fcntl(st[1], F_DUPFD_CLOEXEC, FD_HIGH)) == -1) {
		r = errno;
		goto out;
	}
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		goto out;
	if ((r = posix_spawnattr_init(&sa)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out;
	}
	if ((r = posix_spawn_file_actions_adddup2(&fa, hi[0], 0)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, hi[0], 1)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, hi[1], 3)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, hi[2], 4)) == 0 &&
	    (r = posix_spawnattr_setsigdefault(&sa, &def)) == 0 &&
	    (r = posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF)) == 0)
		r = posix_spawn(&t->pid, prog.s, &fa, &sa, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
out:
	for (i = 0; i < 3; i++)
		if (hi[i] != -1)
			close(hi[i]);
	if (sv[1] != -1)
		close(sv[1]);
	if (st[1] != -1)
		close(st[1]);
	str_free(&prog);
	if (r) {
		if (sv[0] != -1)
			close(sv[0]);
		if (st[0] != -1)
			close(st[0]);
		errno = r;
		return -1;
	}
	t->plain = sv[0];
	t->status = st[0];
	return 0;
}

int
tls_status(struct tlsproc *t, str *line, int timeout)
{
	char buf[1]; /* unbuffered: nothing past the line is taken */
	io in;
	int r;

	io_init(&in, t->status, buf, sizeof buf, timeout);
	line->len = 0;
	r = io_getline(&in, line, '\n', 512);
	if (r != IO_LINE)
		return 0;
	line->len--;
	return str_0(line) == -1 ? 0 : 1;
}

void
tls_done(struct tlsproc *t, int keep_plain)
{
	if (t->status != -1)
		close(t->status);
	t->status = -1;
	if (!keep_plain && t->plain != -1) {
		close(t->plain);
		t->plain = -1;
	}
}
