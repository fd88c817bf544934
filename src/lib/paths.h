/*
 * paths.h: where moat lives.
 *
 * The root is MOAT_ROOT when set (how the tools reach a `moat run`
 * directory), else the installed prefix (PREFIX at build time, default
 * /var/moat).  A setuid program must call root_dir(1), which ignores the
 * environment, so a caller cannot point it at another tree.  Programs find
 * each other in the directory of their own executable.
 */
#ifndef MOAT_PATHS_H
#define MOAT_PATHS_H

#include "str.h"

#ifndef MOAT_PREFIX
#define MOAT_PREFIX "/var/moat"
#endif

const char *root_dir(int trusted_only);
/* dir of the running executable + "/" + prog, NUL-terminated; -1 on error */
int bin_path(str *out, const char *prog);
/* root + "/" + rel, NUL-terminated */
int root_path(str *out, const char *root, const char *rel);
/* ctl_setdir(root/control); -1 on no memory */
int paths_setup_control(const char *root);

#endif
