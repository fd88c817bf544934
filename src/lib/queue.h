/*
 * queue.h: the queue's layout, in one place.
 *
 * ROOT/queue/ holds lock/ (with the trigger fifo) and the split
 * directories pid/, mess/, intd/, todo/, info/, local/, remote/, bounce/
 * and error/ (each recipient's last error, see lasterr.h), each with
 * QUEUE_SPLIT subdirectories 0..QUEUE_SPLIT-1; a message with id N
 * lives in subdirectory N % QUEUE_SPLIT (moat-queue's pid file in pid/P
 * for its process id P, or pid/ itself in a queue made before pid/ was
 * split).  queue_dirs[] lists every directory
 * with its owner role and mode, used by `moat run`, the installer and
 * `moat check`.
 */
#ifndef MOAT_QUEUE_H
#define MOAT_QUEUE_H

#include <sys/types.h>

#include "str.h"

#define QUEUE_SPLIT 23

/*
 * The byte moat-queue writes to lock/trigger for a new message with id N:
 * (N % QUEUE_SPLIT) + 1, so the scheduler needs to look only in that
 * todo/ subdirectory.  Any other byte (0 from other writers) means "scan
 * all of todo/".  QUEUE_SPLIT must fit in a byte and in a 64-bit mask.
 */
#define QUEUE_HINT(id) ((unsigned char)((id) % QUEUE_SPLIT + 1))
#if QUEUE_SPLIT > 63
#error "QUEUE_SPLIT must be below 64 (trigger hints)"
#endif

enum queue_owner { QO_QUEUE, QO_SEND }; /* moatq or moats */

struct queue_dir {
	const char *name;
	int split;          /* has split subdirectories */
	enum queue_owner owner;
	mode_t mode;
};

extern const struct queue_dir queue_dirs[]; /* ends with a NULL name */

/* chattr +T: ext2/3/4 spread the directories made in this one (and the
 * files in those) over the disk's block groups; see queue.c */
void dir_spread(const char *dir);

/* fsync a directory, so that entries just made in it survive a crash */
int queue_fsync_dir(const char *dir);

/* "dir/N/id" for message id, NUL-terminated */
int queue_file(str *out, const char *dir, unsigned long long id);

/*
 * Create every queue directory under qdir (mode as in the table) and the
 * trigger fifo; existing ones are left alone.  When uid_q/uid_s are not
 * (uid_t)-1, ownership is set (the installer); gid likewise.  Returns 0, or
 * -1 with errno and the failing path in *what.
 */
int queue_create(const char *qdir, uid_t uid_q, uid_t uid_s, gid_t gid,
		 const char **what);

#endif
