/*
 * moat-newu: compile the user table.
 *
 *   moat-newu [--root DIR]
 *
 * Reads ROOT/users/assign (moat-users(5)) and writes ROOT/users/cdb, the
 * form moat-lspawn and moat-smtpd read, atomically: the new table goes to
 * users/cdb.tmp, is fsynced and renamed over users/cdb, so a reader sees
 * the old table or the new one, never a mixture.  A malformed assign
 * leaves users/cdb alone.  Two moat-newu running at once are not guarded
 * against (as with qmail-newu).  ROOT is --root, else $MOAT_ROOT, else the
 * installed prefix.
 *
 * Runs as: root (installed system) or the `moat run` account.
 * Exit codes: 0 compiled; 100 usage error or a syntax error in
 * users/assign (the message names the line); 111 system error.
 */
#include <string.h>

#include "log.h"
#include "paths.h"
#include "users.h"

static void
usage(void)
{
	die(100, "usage: moat-newu [--root DIR]");
}

int
main(int argc, char **argv)
{
	const char *root = 0, *err;
	int i, r;

	log_init(argc > 0 ? argv[0] : "moat-newu");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strncmp(argv[i], "--root=", 7))
			root = argv[i] + 7;
		else
			usage();
	}
	if (root && !*root)
		usage();
	if (!root)
		root = root_dir(0);
	r = users_compile(root, &err);
	if (r == USERS_SYNTAX)
		die(100, "%s: users/cdb left unchanged", err);
	if (r != 0)
		die_sys(111, "%s", err);
	return 0;
}
