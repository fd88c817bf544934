/*
 * forkserver.h: the protocol between moat-tcpd -F and a program that
 * serves as its fork server (moat-smtpd).
 *
 * A fork server is a program started once instead of once per connection
 * (moat-smtpd under moat-tcpd -F) or per delivery (moat-remote under
 * moat-rspawn).  For each, the client (fsclient.h) sends it, over a
 * SOCK_SEQPACKET socket, one request: one or two SCM_RIGHTS descriptors
 * and NUL-terminated strings: variables (NAME=value), then optionally an
 * empty string and the arguments (argv[0] first).  The server forks; the
 * child puts the descriptors on fds 0 and 1 (one descriptor: on both),
 * sets the variables, takes the arguments and goes on as if it had just
 * been started.  The server never reads from a connection or a message,
 * so each still gets a process of its own that nothing else has touched;
 * only the exec, the dynamic loader and libc's start-up are saved.
 *
 * Replies, each a struct fs_reply: FS_READY first, once the server is
 * up (a program that never says it is not a fork server); FS_STARTED with
 * the child's pid (or
 * FS_FAILED with an errno) once per request, in order; FS_ENDED with the
 * pid and wait status when a child ends, never before its FS_STARTED.
 */
#ifndef MOAT_FORKSERVER_H
#define MOAT_FORKSERVER_H

#include <sys/types.h>

#define FS_ENV "MOAT_FORKSERVER" /* the server's end, a descriptor number */
#define FS_REQ_MAX 65536         /* bytes of one request */
#define FS_ARGS_MAX 2048         /* arguments in one request */

enum { FS_STARTED = 1, FS_FAILED = 2, FS_ENDED = 3, FS_READY = 4 };

struct fs_reply {
	int what;   /* FS_* */
	pid_t pid;  /* FS_STARTED, FS_ENDED */
	int status; /* FS_ENDED: wait status; FS_FAILED: errno */
};

/* when FS_ENV names a descriptor, serve requests on it: returns only in a
 * child, with its descriptors on fds 0 and 1, its variables set and, when
 * the request had arguments, *argc and *argv replaced (the server exits
 * when the client closes its end).  Without FS_ENV, returns at once. */
void forkserver(int *argc, char ***argv);

/* the variables may be only these, so a request cannot set anything else */
int fs_var_ok(const char *var, size_t len);

#endif
