/*
 * fsclient.h: the client side of the fork server protocol (forkserver.h),
 * for moat-tcpd -F (moat-smtpd per connection) and moat-rspawn
 * (moat-remote per delivery): start the server, hand it work, learn when
 * its children end, replace it now and then.
 *
 * The client must be the children's subreaper (PR_SET_CHILD_SUBREAPER):
 * when a server dies, its children become the client's, and the client's
 * own waitpid() sees them end.
 */
#ifndef MOAT_FSCLIENT_H
#define MOAT_FSCLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "str.h"

struct fsc {
	/* set by the caller */
	char **prog;                          /* the program, with arguments */
	void (*child_setup)(void);            /* in the child, before exec */
	void (*ended)(pid_t pid, int status); /* a child of the server ended */
	unsigned long max_use;                /* requests, then a new server */
	int stopping;                         /* quiet about losing it */
	/* the state */
	int sock, old; /* to the server, to the one before (-1: none) */
	pid_t pid;     /* the server; 0: none */
	pid_t old_pid; /* the one before, until it is reaped */
	unsigned long used;
	long long next_start; /* ms, CLOCK_MONOTONIC */
	int disabled;         /* the program is not a fork server */
};

void fsc_init(struct fsc *f);
long long fsc_now_ms(void);

/*
 * hand a request (forkserver.h: variables, then optionally an empty string
 * and the arguments) with descriptors fds[0..nfd-1] to the server, which
 * is started first if need be (at most once a second): the child's pid;
 * -1 when no child has it (do it without the server); -2 when one may
 * have it, the server having gone before it answered (give it up)
 */
pid_t fsc_spawn(struct fsc *f, const int *fds, int nfd, const str *req);

/* the server's socket or the old one is readable: FS_ENDED replies */
void fsc_drain(struct fsc *f);

/* replace the server: the next request starts a new one at once; with
 * wait, read the old one to its end here and now */
void fsc_close(struct fsc *f, int wait);

/* waitpid() reported pid: 1 if it was the server (logged), else 0 */
int fsc_reaped(struct fsc *f, pid_t pid, int status);

/* NAME=value, or an argument, NUL-terminated, onto a request */
int fsc_add(str *req, const char *name, const char *value);

#endif
