/*
 * forkserver.h: the protocol between moat-tcpd -F and a program that
 * serves as its fork server (moat-smtpd).
 *
 * A fork server is the program started once instead of once per
 * connection.  For each connection moat-tcpd sends it, over a SOCK_SEQPACKET
 * socket, one request: the connection as an SCM_RIGHTS descriptor and the
 * connection's variables (NAME=value, each NUL-terminated).  The server
 * forks; the child takes the connection on fds 0 and 1, sets the variables
 * and goes on as if it had just been started for that connection.  The
 * server never reads from a connection, so every connection still gets a
 * process of its own that no other connection has touched; only the exec,
 * the dynamic loader and libc's start-up are saved.
 *
 * Replies, each a struct fs_reply: FS_STARTED with the child's pid (or
 * FS_FAILED with an errno) once per request, in order; FS_ENDED with the
 * pid and wait status when a child ends, never before its FS_STARTED.
 */
#ifndef MOAT_FORKSERVER_H
#define MOAT_FORKSERVER_H

#include <sys/types.h>

#define FS_ENV "MOAT_FORKSERVER" /* the server's end, a descriptor number */
#define FS_VARS_MAX 1024         /* bytes of variables in one request */

enum { FS_STARTED = 1, FS_FAILED = 2, FS_ENDED = 3 };

struct fs_reply {
	int what;   /* FS_* */
	pid_t pid;  /* FS_STARTED, FS_ENDED */
	int status; /* FS_ENDED: wait status; FS_FAILED: errno */
};

/* when FS_ENV names a descriptor, serve requests on it: returns only in a
 * child, with its connection on fds 0 and 1 and its variables set (the
 * server exits when moat-tcpd closes its end).  Without FS_ENV, returns at
 * once. */
void forkserver(void);

/* the variables may be only these, so a request cannot set anything else */
int fs_var_ok(const char *var, size_t len);

#endif
