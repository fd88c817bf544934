/*
 * queue.c: the queue layout table and its creation; see queue.h.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* from linux/fs.h, which musl's headers do not have */
#ifndef FS_IOC_GETFLAGS
#define FS_IOC_GETFLAGS _IOR('f', 1, long)
#define FS_IOC_SETFLAGS _IOW('f', 2, long)
#endif
#ifndef FS_TOPDIR_FL
#define FS_TOPDIR_FL 0x00020000
#endif

/* clang-format off */
const struct queue_dir queue_dirs[] = {
	{"pid", 1, QO_QUEUE, 0700},
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

/*
 * Mark a directory the top of a hierarchy (chattr +T), so that ext2/3/4
 * spread the directories made in it over the disk's block groups, and with
 * them the files made in those.  A new inode is looked for in its parent
 * directory's group, and on ext4 without a journal that search steps, one
 * at a time, over every inode of the group freed in the last minutes.
 * Queue files come and go by the thousand: in one group, each create
 * became slow (bench/README.md).  Elsewhere the ioctl fails; no matter.
 */
void
dir_spread(const char *p)
{
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), f;

	if (fd == -1)
		return;
	if (ioctl(fd, FS_IOC_GETFLAGS, &f) == 0 && !(f & FS_TOPDIR_FL)) {
		f |= FS_TOPDIR_FL;
		if (ioctl(fd, FS_IOC_SETFLAGS, &f) == -1)
			errno = 0;
	}
	close(fd);
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
	dir_spread(qdir);
	for (d = queue_dirs; d->name; d++) {
		uid_t u = d->owner == QO_QUEUE ? uid_q : uid_s;

		snprintf(p, sizeof p, "%s/%s", qdir, d->name);
		*what = p;
		if (mkdir_own(p, d->mode, u, gid) == -1)
			return -1;
		if (d->split)
			dir_spread(p);
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
