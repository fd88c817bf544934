/*
 * queue.c: the queue layout table and its creation; see queue.h.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* clang-format off */
const struct queue_dir queue_dirs[] = {
	{"pid", 0, QO_QUEUE, 0700},
	{"mess", 1, QO_QUEUE, 0750},
	{"intd", 1, QO_QUEUE, 0700},
	{"todo", 1, QO_QUEUE, 0750},
	{"info", 1, QO_SEND, 0700},
	{"local", 1, QO_SEND, 0700},
	{"remote", 1, QO_SEND, 0700},
	{"bounce", 1, QO_SEND, 0700},
	{"error", 1, QO_SEND, 0700},
	{"lock", 0, QO_QUEUE, 0750},
	{0, 0, 0, 0},
};
/* clang-format on */

int
queue_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
queue_file(str *out, const char *dir, unsigned long long id)
{
	out->len = 0;
	if (str_cats(out, dir) == -1 || str_catc(out, '/') == -1 ||
	    str_catu(out, id % QUEUE_SPLIT) == -1 ||
	    str_catc(out, '/') == -1 || str_catu(out, id) == -1 ||
	    str_0(out) == -1)
		return -1;
	return 0;
}

static int
mkdir_own(const char *p, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(p, mode) == -1 && errno != EEXIST)
		return -1;
	if (uid != (uid_t)-1 && chown(p, uid, gid) == -1)
		return -1;
	if (uid != (uid_t)-1 && chmod(p, mode) == -1)
		return -1;
	return 0;
}

int
queue_create(const char *qdir, uid_t uid_q, uid_t uid_s, gid_t gid,
	     const char **what)
{
	static char p[4096];
	const struct queue_dir *d;
	int i;

	*what = qdir;
	if (mkdir_own(qdir, 0750, uid_q, gid) == -1)
		return -1;
	for (d = queue_dirs; d->name; d++) {
		uid_t u = d->owner == QO_QUEUE ? uid_q : uid_s;

		snprintf(p, sizeof p, "%s/%s", qdir, d->name);
		*what = p;
		if (mkdir_own(p, d->mode, u, gid) == -1)
			return -1;
		for (i = 0; d->split && i < QUEUE_SPLIT; i++) {
			snprintf(p, sizeof p, "%s/%s/%d", qdir, d->name, i);
			if (mkdir_own(p, d->mode, u, gid) == -1)
				return -1;
		}
	}
	snprintf(p, sizeof p, "%s/lock/trigger", qdir);
	*what = p;
	if (mkfifo(p, 0622) == -1 && errno != EEXIST)
		return -1;
	if (uid_s != (uid_t)-1 && chown(p, uid_s, gid) == -1)
		return -1;
	if (uid_s != (uid_t)-1 && chmod(p, 0622) == -1)
		return -1;
	return 0;
}
