/*
 * moat-clean: removes queue files on behalf of moat-send.
 *
 * Runs as: moatq (the owner of queue/pid, mess, intd and todo, which
 * moat-send, running as moats, may read but not change); the run user
 * under `moat run`.
 * Reads: requests on fd 0, one NUL-terminated field each:
 *   "T<id>"  the message was preprocessed: remove todo/N/id, then intd/N/id
 *   "M<id>"  the message is finished or orphaned: remove intd/N/id (if any)
 *            and mess/N/id
 *   "P"      reap files in pid/ and pid/N/ older than 36 hours
 * Writes: one reply per request on fd 1, in order: "K" done (including
 * "there was nothing to remove") or "Z" failed, each NUL-terminated.
 * Works in ROOT/queue (MOAT_ROOT or the prefix).
 *
 * A request it cannot parse ends it with exit 111: its only client is
 * moat-send, and a garbled request means something is badly wrong.
 * Exit codes: 0 at end of input, 111 on errors.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"

#define PID_MAX_AGE (36 * 3600)

static int
remove_file(const char *dir, unsigned long long id)
{
	char fn[64];

	snprintf(fn, sizeof fn, "%s/%llu/%llu", dir, id % QUEUE_SPLIT, id);
	if (unlink(fn) == -1 && errno != ENOENT) {
		log_sys("unable to remove %s", fn);
		return -1;
	}
	return 0;
}

/* files in dir older than 36 hours; with sub, its split directories too */
static void
reap_pid(const char *dir, int sub)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	time_t now = time(0);

	if (!d) {
		log_sys("unable to read %s/", dir);
		return;
	}
	while ((e = readdir(d))) {
		char fn[300];
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(fn, sizeof fn, "%s/%s", dir, e->d_name);
		if (lstat(fn, &st) == -1)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (sub)
				reap_pid(fn, 0);
			continue;
		}
		if (st.st_mtime + PID_MAX_AGE < now && unlink(fn) == 0)
			log_msg("removed stale %s", fn);
	}
	closedir(d);
}

static int
number(const char *s, size_t n, unsigned long long *v)
{
	size_t i;

	if (n == 0 || n > 20)
		return -1;
	*v = 0;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9' ||
		    __builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (unsigned)(s[i] - '0'), v))
			return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	const char *root = root_dir(0);
	char inbuf[4096], outbuf[1024];
	str req = STR_INIT;
	io in, out;

	(void)argc;
	log_init(argv[0] ? argv[0] : "moat-clean");
	if (chdir(root) == -1 || chdir("queue") == -1)
		die_sys(111, "unable to enter %s/queue", root);
	io_init(&in, 0, inbuf, sizeof inbuf, 0);
	io_init(&out, 1, outbuf, sizeof outbuf, 0);
	in.flush_first = &out;
	for (;;) {
		unsigned long long id = 0;
		int r, ok = -1;

		req.len = 0;
		r = io_getline(&in, &req, 0, 64);
		if (r == IO_EOF && req.len == 0)
			break;
		if (r != IO_LINE)
			die(111, "bad or truncated request");
		req.len--;
		if (req.len == 1 && req.s[0] == 'P') {
			reap_pid("pid", 1);
			ok = 0;
		} else if (req.len > 1 && number(req.s + 1, req.len - 1, &id) == 0) {
			if (req.s[0] == 'T') {
				ok = remove_file("todo", id);
				if (ok == 0)
					ok = remove_file("intd", id);
			} else if (req.s[0] == 'M') {
				ok = remove_file("intd", id);
				if (ok == 0)
					ok = remove_file("mess", id);
			} else {
				die(111, "bad request");
			}
		} else {
			die(111, "bad request");
		}
		if (io_put(&out, ok == 0 ? "K" : "Z", 2) == -1)
			die_sys(111, "unable to reply");
	}
	if (io_flush(&out) == -1)
		die_sys(111, "unable to reply");
	return 0;
}
