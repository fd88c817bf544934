/*
 * tlsproc.h: run moat-tlsd on a connection, for STARTTLS in moat-smtpd
 * (server) and moat-remote (client).
 *
 * moat-tlsd takes the network socket and hands back a socketpair end that
 * carries the plaintext, and reports on a status pipe: "ready" once it is
 * set up, then "ok PROTOCOL CIPHER" after the handshake, or "error TEXT"
 * (see moat-tlsd.c).  The caller's programs need not link OpenSSL.
 */
#ifndef MOAT_TLSPROC_H
#define MOAT_TLSPROC_H

#include <sys/types.h>

#include "str.h"

struct tlsproc {
	pid_t pid;
	int plain;  /* our end of the plaintext socketpair (close-on-exec) */
	int status; /* moat-tlsd's status lines */
};

/* start bin/moat-tlsd with args (after argv[0]; NULL-terminated) and the
 * network on descriptor net: 0, or -1 with errno */
int tls_start(struct tlsproc *, int net, char *const args[]);
/* the next status line, without its newline, NUL-terminated, within
 * timeout seconds: 1, or 0 on end of file, an error or the timeout */
int tls_status(struct tlsproc *, str *line, int timeout);
/* close the status pipe, and the plaintext end unless it is still used */
void tls_done(struct tlsproc *, int keep_plain);

#endif
