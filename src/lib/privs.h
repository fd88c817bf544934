/*
 * privs.h: who runs as whom, and who owns what, in one place.
 *
 * The installed system's privilege design, as DESIGN.md states it, is read
 * from these tables: moat-setup creates the accounts and the tree from
 * them, moat-start switches each program it starts to the account given
 * here, and `moat-setup --list` prints them.
 *
 *   program      runs as      how it gets there
 *   moat-tcpd    root, moatd  started as root, binds, drops (-u moatd)
 *   moat-smtpd   moatd        inherited from moat-tcpd (or systemd User=)
 *   moat-queue   moatq        setuid moatq (mode 4711), any caller
 *   moat-start   root         systemd or the administrator
 *   moat-send    moats        moat-start switches before exec
 *   moat-clean   moatq        moat-start switches before exec
 *   moat-lspawn  root         moat-start leaves it root: it switches uids
 *   moat-local   recipient    moat-lspawn switches before exec
 *   moat-rspawn  moatr        moat-start switches before exec
 *   moat-remote  moatr        inherited from moat-rspawn
 *   moat-log     moatl        moat-start's logger (--log), switched
 *   moat-setup   root         the administrator
 *   moat-newu    root         the administrator
 *   moat-inject  the caller   (root: the queue's owner, moatq)
 *   moat-sendmail the caller  sendmail, mailq, newaliases
 *   moat         the caller
 *
 * Accounts: moatd, moatq, moats, moatr, moatl, alias; group moat, the
 * primary group of moatq, moats and moatr only (they share the queue).
 * moatd, moatl and alias each have a group of their own, so that nothing
 * that parses network input can read the queue.  The names can be changed
 * as a whole (moat-setup --user-prefix P makes Pmoatd, ..., group Pmoat);
 * moat-setup records them in control/accounts as "default:actual" lines,
 * and moat-start reads them from there.  (The alias lookup of users.h
 * always uses the account "alias".)
 *
 * The tree under PREFIX: priv_tree below, then queue/ as queue.h's
 * queue_dirs says, with one rule added: every directory moat-queue writes
 * (owner moatq) is also set-group-ID, so that the files moat-queue creates
 * for any caller belong to group moat, which moat-send and moat-rspawn read
 * them through (files 0640).  Files are never touched, only directories,
 * the trigger fifo and the programs in bin/.
 */
#ifndef MOAT_PRIVS_H
#define MOAT_PRIVS_H

#include <sys/types.h>

#include "str.h"

enum priv_acct {
	PA_MOATD, /* SMTP server */
	PA_MOATQ, /* the queue: moat-queue, moat-clean */
	PA_MOATS, /* the scheduler */
	PA_MOATR, /* remote delivery */
	PA_MOATL, /* the logger */
	PA_ALIAS, /* local names with no account */
	PA_NACCT,
	/* not accounts moat creates */
	PA_ROOT = -1,
	PA_RECIPIENT = -2,
	PA_CALLER = -3,
	PA_GROUP = -4, /* the group moat (priv_dir.group) */
	PA_OWN = -5    /* the owner's primary group (priv_dir.group) */
};

#define PRIV_GROUP "moat"
#define PRIV_NAME_MAX 31 /* longest account or group name */

struct priv_account {
	const char *name;  /* default name */
	int in_group;      /* primary group moat (else its own) */
	const char *home;  /* relative to PREFIX; "" is PREFIX itself */
	const char *gecos; /* what it is for */
};

extern const struct priv_account priv_accounts[PA_NACCT];

struct priv_prog {
	const char *name;
	int acct;        /* PA_... it runs as */
	mode_t mode;     /* installed mode; S_ISUID: owned by acct */
	const char *how; /* how it comes to run as acct */
};

extern const struct priv_prog priv_progs[]; /* ends with a NULL name */
const struct priv_prog *priv_prog_find(const char *name);

/* the programs moat-start runs, in the order it starts them */
#define PRIV_CHAIN "moat-lspawn", "moat-clean", "moat-rspawn", "moat-send"

/* the account names in force */
struct priv_names {
	char acct[PA_NACCT][PRIV_NAME_MAX + 1];
	char group[PRIV_NAME_MAX + 1];
};

/* the defaults with prefix p (may be ""); -1 (errno EINVAL) if p makes a
 * name too long or is not [a-z0-9_-] starting with a letter or '_' */
int priv_names_default(struct priv_names *n, const char *p);
/* from control/accounts (ctl_setdir must be set): 1 read, 0 no such file
 * (defaults filled in), -1 error (errno; EINVAL: malformed line) */
int priv_names_load(struct priv_names *n);
/* control/accounts' contents for n */
int priv_names_format(const struct priv_names *n, str *out);
/* "root", the account's name, "(recipient)" or "(caller)" */
const char *priv_acct_name(const struct priv_names *n, int acct);

/* one directory or fifo of the installed tree */
struct priv_entry {
	char path[64]; /* relative to PREFIX; "" is PREFIX itself */
	int owner;     /* PA_ROOT or an account */
	int group;     /* PA_ROOT, PA_GROUP or PA_OWN */
	mode_t mode;   /* with S_ISGID where it applies */
	char type;     /* 'd' directory, 'p' fifo */
};

/*
 * Call fn for every entry of the tree, parents before children; stops at
 * the first non-zero return of fn and returns it.
 */
int priv_walk(int (*fn)(const struct priv_entry *, void *), void *arg);

#endif
