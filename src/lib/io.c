/*
 * io.c: buffered descriptor I/O with timeouts; see io.h.
 *
 * Reads and writes wait with poll() first so that a silent peer costs a
 * timeout, never a hung process.  EINTR is retried; EAGAIN waits again.
 */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
io_init(io *x, int fd, char *buf, size_t size, int timeout)
{
	x->fd = fd;
	x->buf = buf;
	x->size = size;
	x->pos = 0;
	x->len = 0;
	x->timeout = timeout < 0 ? 0 : timeout;
	x->flush_first = 0;
}

void
io_init_mem(io *x, const char *data, size_t len)
{
	io_init(x, -1, (char *)data, len, 0);
	x->len = len;
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait until fd is ready for events or the deadline (ms, 0: none) passes */
static int
wait_ready(int fd, short events, long long deadline)
{
	struct pollfd p;
	int ms, r;

	for (;;) {
		ms = -1;
		if (deadline) {
			long long left = deadline - now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		p.fd = fd;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, ms);
		if (r > 0)
			return 0;
		if (r == 0)
			continue; /* deadline check above decides */
		if (errno != EINTR)
			return -1;
	}
}

static long long
deadline_of(int timeout)
{
	return timeout ? now_ms() + (long long)timeout * 1000 : 0;
}

ssize_t
io_fill(io *x)
{
	long long deadline;
	ssize_t r;

	if (x->fd < 0)
		return 0;
	if (x->pos == x->len) {
		x->pos = 0;
		x->len = 0;
	} else if (x->pos > 0) {
		memmove(x->buf, x->buf + x->pos, x->len - x->pos);
		x->len -= x->pos;
		x->pos = 0;
	}
	if (x->len == x->size) {
		errno = ENOBUFS;
		return -1;
	}
	/* flush pending output only if the read would block: pipelined
	 * commands already on their way are answered together */
	if (x->flush_first && x->flush_first->len) {
		struct pollfd p = {.fd = x->fd, .events = POLLIN};

		if (poll(&p, 1, 0) != 1 && io_flush(x->flush_first) == -1)
			return -1;
	}
	deadline = deadline_of(x->timeout);
	for (;;) {
		if (wait_ready(x->fd, POLLIN, deadline) == -1)
			return -1;
		r = read(x->fd, x->buf + x->len, x->size - x->len);
		if (r >= 0)
			break;
		if (errno != EINTR && errno != EAGAIN)
			return -1;
	}
	x->len += (size_t)r;
	return r;
}

size_t
io_buffered(const io *x)
{
	return x->len - x->pos;
}

int
io_getc(io *x, char *c)
{
	if (x->pos == x->len) {
		ssize_t r = io_fill(x);
		if (r <= 0)
			return (int)r;
	}
	*c = x->buf[x->pos++];
	return 1;
}

int
io_getline(io *x, str *sa, char delim, size_t max)
{
	int toolong = 0;

	for (;;) {
		char *b = x->buf + x->pos;
		size_t n = x->len - x->pos;
		char *e = n ? memchr(b, delim, n) : 0;
		size_t take = e ? (size_t)(e - b) + 1 : n;

		if (!toolong) {
			if (sa->len > max || take > max - sa->len)
				toolong = 1;
			else if (str_catb(sa, b, take) == -1)
				return IO_ERR;
		}
		x->pos += take;
		if (e)
			return toolong ? IO_LONG : IO_LINE;
		{
			ssize_t r = io_fill(x);
			if (r < 0)
				return IO_ERR;
			if (r == 0)
				return toolong ? IO_LONG : IO_EOF;
		}
	}
}

int
io_writeall(int fd, const char *b, size_t n, int timeout)
{
	long long deadline = deadline_of(timeout);

	while (n) {
		ssize_t w;

		if (wait_ready(fd, POLLOUT, deadline) == -1)
			return -1;
		w = write(fd, b, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -1;
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

int
io_flush(io *x)
{
	size_t n = x->len;

	if (!n)
		return 0;
	x->len = 0;
	return io_writeall(x->fd, x->buf, n, x->timeout);
}

int
io_put(io *x, const char *b, size_t n)
{
	if (n > x->size - x->len) {
		if (io_flush(x) == -1)
			return -1;
		if (n >= x->size)
			return io_writeall(x->fd, b, n, x->timeout);
	}
	memcpy(x->buf + x->len, b, n);
	x->len += n;
	return 0;
}

int
io_puts(io *x, const char *s)
{
	return io_put(x, s, strlen(s));
}

int
io_readfile(const char *path, str *out, size_t max, int flags)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | flags), e;

	out->len = 0;
	if (fd == -1)
		return -1;
	for (;;) {
		ssize_t n;

		if (str_readyplus(out, 65536) == -1)
			break;
		n = read(fd, out->s + out->len, out->a - out->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n == 0) {
			close(fd);
			return 0;
		}
		out->len += (size_t)n;
		if (out->len > max) {
			errno = EFBIG;
			break;
		}
	}
	e = errno;
	close(fd);
	errno = e;
	return -1;
}
