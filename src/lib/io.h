/*
 * io.h: buffered input and output on file descriptors, with timeouts.
 *
 * An io reads from or writes to one descriptor through a caller-supplied
 * buffer.  Every blocking read or write waits at most `timeout` seconds
 * (0: no limit) and then fails with errno = ETIMEDOUT.  An input io may name
 * an output io to flush before it blocks, which is how SMTP pipelining keeps
 * replies in order while sending them only when the client waits for them.
 * An input io made by io_init_mem() reads from memory (used by the fuzz
 * targets and unit tests to drive the same parsers).
 */
#ifndef MOAT_IO_H
#define MOAT_IO_H

#include <stddef.h>
#include <sys/types.h>

#include "str.h"

typedef struct io {
	int fd;         /* -1: memory input */
	char *buf;
	size_t size;    /* capacity of buf */
	size_t pos;     /* input: next unread byte */
	size_t len;     /* input: end of data; output: bytes pending */
	int timeout;    /* seconds, 0 = none */
	struct io *flush_first; /* input: output to flush before blocking */
} io;

void io_init(io *, int fd, char *buf, size_t size, int timeout);
void io_init_mem(io *, const char *data, size_t len);

/* input */
ssize_t io_fill(io *); /* >0 bytes added, 0 EOF, -1 error */
int io_getc(io *, char *); /* 1 byte, 0 EOF, -1 error */
size_t io_buffered(const io *);
/* read through delim into sa (appended); at most max bytes are kept */
#define IO_LINE 1  /* a whole line, delim included */
#define IO_EOF 0   /* end of input; sa holds any partial line */
#define IO_ERR -1  /* read error or timeout (errno) */
#define IO_LONG -2 /* longer than max: discarded through delim or EOF */
int io_getline(io *, str *sa, char delim, size_t max);

/* output */
int io_put(io *, const char *, size_t);
int io_puts(io *, const char *);
int io_flush(io *);
/* write all of buf to fd, waiting at most timeout seconds each time */
int io_writeall(int fd, const char *, size_t, int timeout);

/* the whole file at path into out (what out held is replaced), opened with
 * O_RDONLY | O_CLOEXEC | flags (O_NOFOLLOW, say): 0, or -1 with errno
 * (EFBIG once it passes max bytes) */
int io_readfile(const char *path, str *out, size_t max, int flags);

#endif
