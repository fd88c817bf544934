/* unit tests for src/lib/paths.c */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "paths.h"
#include "tap.h"

int
main(void)
{
	str s = STR_INIT;
	char self[PATH_MAX];
	ssize_t n;

	unsetenv("MOAT_ROOT");
	is_str(root_dir(0), MOAT_PREFIX, "root_dir without MOAT_ROOT: prefix");
	is_str(root_dir(1), MOAT_PREFIX, "root_dir(1): prefix");
	setenv("MOAT_ROOT", "/tmp/moat-root", 1);
	is_str(root_dir(0), "/tmp/moat-root", "root_dir follows MOAT_ROOT");
	is_str(root_dir(1), MOAT_PREFIX, "root_dir(1) ignores MOAT_ROOT");
	setenv("MOAT_ROOT", "", 1);
	is_str(root_dir(0), MOAT_PREFIX, "empty MOAT_ROOT: prefix");
	unsetenv("MOAT_ROOT");

	is_int(root_path(&s, "/r", "queue"), 0, "root_path");
	is_str(s.s, "/r/queue", "... /r/queue");
	is_int(s.len, 8, "... len without NUL");
	str_copys(&s, "something much longer than that");
	root_path(&s, "/a", "b");
	is_str(s.s, "/a/b", "root_path replaces what out held");

	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = 0;
		*strrchr(self, '/') = 0;
		strcat(self, "/moat-queue");
	}
	is_int(bin_path(&s, "moat-queue"), 0, "bin_path");
	ok(n > 0 && !strcmp(s.s, self), "... next to this executable (%s)",
	   s.s ? s.s : "-");

	is_int(paths_setup_control("/srv/moat"), 0, "paths_setup_control");
	is_str(ctl_dir(), "/srv/moat/control", "... sets the control dir");
	str_free(&s);
	return done_testing();
}
