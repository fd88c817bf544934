/*
 * spawner.h: what moat-lspawn and moat-rspawn share: jobs read from fd 0
 * (job.h), results written to fd 1 without blocking, their start-up, and
 * the descriptors a child starts with.
 */
#ifndef MOAT_SPAWNER_H
#define MOAT_SPAWNER_H

#include <stddef.h>

#include "job.h"
#include "str.h"

struct spawner {
	str root;   /* absolute */
	str out;    /* results; empty once all are written */
	size_t outpos; /* bytes of out written */
	int sock;   /* fd 1 is a socket: send() without blocking */
	int dead;   /* fd 1 failed; results are discarded */
	int failed; /* exit 111 at the end */
};
extern struct spawner sp;

/* fds 0 and 1 open (else exit 111), 2 opened on /dev/null if closed;
 * sp.root made absolute and control/ under it; the open-file limit raised
 * (every running delivery holds a pipe) */
void sp_setup(void);

/* job n's result: one status and text for nres recipients (printf) */
void sp_result(unsigned long n, char status, size_t nres, const char *fmt,
               ...) __attribute__((format(printf, 4, 5)));
/* job n's result, a status and a text per recipient (result_put) */
void sp_put(unsigned long n, const char *st, const char *texts, size_t nres);
/* write what fd 1 takes now */
void sp_flush(void);

/* read what fd 0 has and give each whole job to take (which returns -1 on
 * a protocol error): 1 to keep reading, 0 at the end of input or on an
 * error (sp.failed set) */
int sp_read_jobs(str *in, struct job *j, int (*take)(struct job *));

/* read what a child wrote on *fd, keeping the first max bytes in out (*cut
 * set when more came): 1 more may come, 0 end of file (*fd closed, -1) */
int sp_drain(int *fd, str *out, size_t max, int *cut);

/* in a child: close every descriptor from 3 up */
void sp_close_others(void);

_Noreturn void sp_nomem(void);

#endif
