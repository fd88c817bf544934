/*
 * users.h: who takes mail for a local part.
 *
 * Shared by moat-lspawn (which delivers) and moat-smtpd (which refuses
 * unknown recipients at RCPT).  The answer comes, in this order, from:
 *
 *   1. the user table ROOT/users/cdb, compiled from ROOT/users/assign by
 *      moat-newu (see moat-users(5)): an exact entry "=local" first, then
 *      the wildcard entry "+prefix" with the longest prefix of the local
 *      part; the local part is compared without regard to (ASCII) case;
 *   2. only with USERS_SYSTEM (the installed system, moat-lspawn running as
 *      root): the password database, as qmail-getpw does: the local part,
 *      or its longest prefix ending before a '-', that is an account with a
 *      non-zero uid owning its existing home directory;
 *   3. the alias user, with the whole local part as extension: the account
 *      "alias" with USERS_SYSTEM, else the directory ROOT/alias when it is
 *      owned by the current (effective) uid.
 *
 * Every function is bounded: a local part longer than USERS_LOCAL_MAX or
 * containing a NUL belongs to nobody.
 */
#ifndef MOAT_USERS_H
#define MOAT_USERS_H

#include <stddef.h>
#include <sys/types.h>

#include "str.h"

#define USERS_SYSTEM 1 /* flag: installed system, consult /etc/passwd */

#define USERS_LOCAL_MAX 1024 /* longest local part anyone can take */
#define USERS_LINE_MAX 4096  /* longest line of users/assign */
#define USERS_ASSIGN_MAX (64u * 1024 * 1024) /* largest users/assign */
#define USERS_NAME_MAX 32 /* longest account name looked up */

/* where an answer came from */
#define USERS_FROM_TABLE 1
#define USERS_FROM_ACCOUNT 2
#define USERS_FROM_ALIAS 3

/* users_compile's result on a syntax error in users/assign */
#define USERS_SYNTAX -2

struct user {
	str user; /* account name, given to moat-local */
	uid_t uid;
	gid_t gid;
	str home;   /* absolute */
	str dash;   /* "" or "-" (any string from the table) */
	str ext;    /* the extension: .qmail<dash><ext> rules delivery */
	int source; /* USERS_FROM_... */
};
/* every str is NUL-terminated after a successful lookup */

#define USER_INIT                                                              \
	{                                                                      \
		STR_INIT, 0, 0, STR_INIT, STR_INIT, STR_INIT, 0                \
	}

/*
 * Who takes local[0..len)?  1 found (*out filled in), 0 nobody, -1 a
 * temporary error (errno; EPROTO: users/cdb is damaged or not moat's, EPERM:
 * with USERS_SYSTEM, users/cdb is not owned by root or is writable by
 * others).  The extension keeps the case of local; the lookup ignores it.
 */
int users_lookup(const char *root, const char *local, size_t len, int flags,
                 struct user *out);

/*
 * Would anyone take local[0..len)?  1 when the table or (USERS_SYSTEM) an
 * account takes it, or when the alias user has a .qmail file for it:
 * .qmail-EXT, .qmail-PREFIX-default for a prefix of EXT ending before a
 * '-' (the longest first), or .qmail-default, where EXT is the local part
 * lowercased with '.' replaced by ':'.  0 when nobody would, -1 when it
 * cannot tell (errno; callers accept the address then).
 */
int users_rcpt_ok(const char *root, const char *local, size_t len, int flags);

/*
 * Compile ROOT/users/assign into ROOT/users/cdb, atomically: the new table
 * is written to users/cdb.tmp, fsynced, renamed over users/cdb, and the
 * directory fsynced.  0 done; USERS_SYNTAX when assign is malformed (*err
 * names the line and the problem; users/cdb is left alone); -1 on a system
 * error (errno, *err names what failed).  *err points to static storage.
 */
int users_compile(const char *root, const char **err);

/*
 * Check ROOT/users/assign as users_compile() would, writing nothing (for
 * `moat check`).  0 when it would compile; USERS_SYNTAX with *err naming
 * the line and the problem; -1 on a system error (errno, *err).
 */
int users_check(const char *root, const char **err);

void users_free(struct user *);

#endif
