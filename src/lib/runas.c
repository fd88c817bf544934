/*
 * runas.c: become the owner of ROOT/queue when running as root; see
 * runas.h.
 */
#include "runas.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"
#include "str.h"

int
runas_queue_owner(const char *root, uid_t *uid)
{
	str q = STR_INIT;
	struct stat st;
	struct passwd *pw;
	gid_t gid;
	int r;

	if (geteuid() != 0)
		return 0;
	if (root_path(&q, root, "queue") == -1)
		return -1;
	r = stat(q.s, &st);
	str_free(&q);
	if (r == -1)
		return errno == ENOENT ? 0 : -1;
	if (st.st_uid == 0)
		return 0;
	pw = getpwuid(st.st_uid);
	gid = pw ? pw->pw_gid : st.st_gid;
	if (pw ? initgroups(pw->pw_name, gid) == -1
	       : setgroups(0, 0) == -1)
		return -1;
	if (setgid(gid) == -1 || setuid(st.st_uid) == -1)
		return -1;
	if (setuid(0) != -1) { /* must not be able to get root back */
		errno = EPERM;
		return -1;
	}
	*uid = st.st_uid;
	return 1;
}
