/*
 * paths.c: root directory and program locations; see paths.h.
 */
#include "paths.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

const char *
root_dir(int trusted_only)
{
	const char *r;

	if (trusted_only)
		return MOAT_PREFIX;
	r = getenv("MOAT_ROOT");
	return r && *r ? r : MOAT_PREFIX;
}

int
bin_path(str *out, const char *prog)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	char *slash;

	if (n <= 0)
		return -1;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return -1;
	out->len = 0;
	if (str_catb(out, self, (size_t)(slash - self) + 1) == -1 ||
	    str_cats(out, prog) == -1 || str_0(out) == -1)
		return -1;
	return 0;
}

int
root_path(str *out, const char *root, const char *rel)
{
	out->len = 0;
	if (str_cats(out, root) == -1 || str_catc(out, '/') == -1 ||
	    str_cats(out, rel) == -1 || str_0(out) == -1)
		return -1;
	return 0;
}

int
paths_setup_control(const char *root)
{
	static str dir = STR_INIT;

	if (root_path(&dir, root, "control") == -1)
		return -1;
	ctl_setdir(dir.s);
	return 0;
}
