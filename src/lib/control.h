/*
 * control.h: the control files, declared once.
 *
 * ctl_table lists every control file moat reads, with its kind, its default
 * and a line of documentation; every program reads its settings through
 * these functions and `moat ctl` prints the table.  A default of "=NAME"
 * means "the value of control file NAME"; "me" itself defaults to the
 * host's name.  Files live in ROOT/control/ (see paths.h).
 */
#ifndef MOAT_CONTROL_H
#define MOAT_CONTROL_H

#include <stddef.h>

#include "str.h"

enum ctl_kind {
	CTL_LINE, /* the first line, trailing white space removed */
	CTL_NUM,  /* a decimal number on the first line */
	CTL_LIST, /* lines; empty lines and '#' comments skipped */
	CTL_CDB,  /* NAME.cdb, a constant database of keys */
	CTL_PRESENT, /* NAME whole; `moat ctl` shows only whether it is there
		      * (a certificate, password hashes) */
};

struct ctl_def {
	const char *name;
	enum ctl_kind kind;
	const char *def; /* NULL: no value (empty list, no line) */
	const char *doc;
};

extern const struct ctl_def ctl_table[]; /* ends with a NULL name */

#define CTL_DEFAULT 0 /* value came from the default */
#define CTL_FILE 1    /* value came from the control file */

void ctl_setdir(const char *dir); /* the control directory */
const char *ctl_dir(void);
const struct ctl_def *ctl_find(const char *name);

/*
 * Each returns CTL_FILE or CTL_DEFAULT, or -1 with errno set when the file
 * exists but cannot be read or does not parse (EINVAL).
 */
int ctl_line(const char *name, str *out); /* NUL-terminated */
int ctl_num(const char *name, unsigned long long *out);
int ctl_list(const char *name, str *out, size_t *n); /* n NUL-ended items */
/* 1 if key is in NAME.cdb, 0 if not or no such file, -1 on error
 * (in ctlcdb.c, so programs without cdb need not link tinycdb) */
int ctl_cdb_has(const char *name, const char *key, size_t len);
/* control/NAME SUFFIX into p, NUL-terminated: 0, or -1 out of memory */
int ctl_path(str *p, const char *name, const char *suffix);

/* domain lists: 1 if dom (any case) is listed exactly, or a listed
 * ".suffix" ends it; items is what ctl_list() returned */
int ctl_domain_match(const str *items, size_t n, const char *dom, size_t len);

#endif
