/* unit tests for src/lib/io.c */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "tap.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* what is in the pipe right now (non-blocking), into buf; bytes read */
static size_t
drain(int fd, char *buf, size_t size)
{
	int fl = fcntl(fd, F_GETFL);
	size_t got = 0;
	ssize_t r;

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (got < size && (r = read(fd, buf + got, size - got)) > 0)
		got += (size_t)r;
	fcntl(fd, F_SETFL, fl);
	return got;
}

static void
test_mem(void)
{
	static const char data[] = "a\nbb\n\nccc";
	io in;
	str sa = STR_INIT;
	char c;

	io_init_mem(&in, data, sizeof data - 1);
	is_int(io_buffered(&in), 9, "memory io: all bytes buffered");
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE, "line 1");
	is_mem(sa.s, sa.len, "a\n", 2, "line 1 with its delimiter");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE, "line 2");
	is_mem(sa.s, sa.len, "bb\n", 3, "line 2");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE, "empty line");
	is_mem(sa.s, sa.len, "\n", 1, "empty line is just the delimiter");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF, "partial last line: EOF");
	is_mem(sa.s, sa.len, "ccc", 3, "partial line kept in sa");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF, "EOF again");
	is_int(sa.len, 0, "nothing more");
	is_int(io_getc(&in, &c), 0, "io_getc at EOF");

	/* getline appends */
	io_init_mem(&in, "xy\n", 3);
	str_copys(&sa, "pre:");
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE, "getline appends");
	is_mem(sa.s, sa.len, "pre:xy\n", 7, "... to what sa held");

	/* empty input */
	io_init_mem(&in, "", 0);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF, "empty input: EOF");
	is_int(sa.len, 0, "... nothing read");

	/* io_getc */
	io_init_mem(&in, "pq", 2);
	ok(io_getc(&in, &c) == 1 && c == 'p', "io_getc p");
	is_int(io_buffered(&in), 1, "one byte left");
	ok(io_getc(&in, &c) == 1 && c == 'q', "io_getc q");
	is_int(io_getc(&in, &c), 0, "io_getc EOF");

	/* NUL as the delimiter */
	io_init_mem(&in, "Fa\0Tb\0\0", 7);
	sa.len = 0;
	is_int(io_getline(&in, &sa, 0, 10), IO_LINE, "NUL-delimited record");
	is_mem(sa.s, sa.len, "Fa\0", 3, "... with its NUL");
	sa.len = 0;
	io_getline(&in, &sa, 0, 10);
	sa.len = 0;
	is_int(io_getline(&in, &sa, 0, 10), IO_LINE, "empty NUL record");
	is_int(sa.len, 1, "... one byte");

	/* limits */
	io_init_mem(&in, "0123456789\nok\n", 14);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_LONG, "too-long line: IO_LONG");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_LINE, "next line still read");
	is_mem(sa.s, sa.len, "ok\n", 3, "... and whole");

	io_init_mem(&in, "1234\n12345\n", 11);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_LINE,
	       "line of exactly max bytes (delimiter included) fits");
	is_mem(sa.s, sa.len, "1234\n", 5, "... content");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_LONG, "max+1 bytes: IO_LONG");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_EOF, "then EOF");

	io_init_mem(&in, "0123456789", 10);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_LONG,
	       "too long, no delimiter: IO_LONG");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 5), IO_EOF, "... discarded to EOF");
	is_int(sa.len, 0, "... nothing left");

	io_init_mem(&in, "\n", 1);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 0), IO_LONG, "max 0: even a bare delimiter is too long");
	str_free(&sa);
}

static void
test_pipe_lines(void)
{
	int p[2];
	io in;
	char buf[4];
	str sa = STR_INIT;
	static const char text[] = "hello world\nab\n0123456789abcdefghij\nx\ntail";

	if (pipe(p) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	io_writeall(p[1], text, sizeof text - 1, 5);
	close(p[1]);
	io_init(&in, p[0], buf, sizeof buf, 5);
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "pipe, 4-byte buffer: line spanning fills");
	is_mem(sa.s, sa.len, "hello world\n", 12, "... whole line");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE, "short line");
	is_mem(sa.s, sa.len, "ab\n", 3, "... content");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 8), IO_LONG,
	       "line longer than max across fills: IO_LONG");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 8), IO_LINE, "next line after it");
	is_mem(sa.s, sa.len, "x\n", 2, "... content");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF,
	       "writer closed mid-line: IO_EOF");
	is_mem(sa.s, sa.len, "tail", 4, "... partial line in sa");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF, "EOF again");
	close(p[0]);

	/* buffer full, nothing consumed: io_fill refuses */
	if (pipe(p) == 0) {
		io_writeall(p[1], "abcdefgh", 8, 5);
		io_init(&in, p[0], buf, sizeof buf, 5);
		is_int(io_fill(&in), 4, "io_fill reads up to the buffer size");
		errno = 0;
		is_int(io_fill(&in), -1, "io_fill with a full buffer fails");
		is_int(errno, ENOBUFS, "... ENOBUFS");
		in.pos = 2;
		is_int(io_fill(&in), 2, "io_fill after consuming 2 reads 2 more");
		is_mem(in.buf + in.pos, io_buffered(&in), "cdef", 4,
		       "... consumed bytes moved out");
		close(p[0]);
		close(p[1]);
	}
	str_free(&sa);
}

static void
test_timeout(void)
{
	int p[2];
	io in;
	char buf[64];
	str sa = STR_INIT;
	double t0, dt;
	int r;

	if (pipe(p) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	io_init(&in, p[0], buf, sizeof buf, 1);
	t0 = now();
	errno = 0;
	r = io_getline(&in, &sa, '\n', 100);
	dt = now() - t0;
	is_int(r, IO_ERR, "silent writer: IO_ERR");
	is_int(errno, ETIMEDOUT, "... ETIMEDOUT");
	ok(dt >= 0.9 && dt < 3, "... after about 1 s (%.2f s)", dt);

	/* data arriving in time is read */
	io_writeall(p[1], "late\n", 5, 1);
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "io usable after a timeout");
	is_mem(sa.s, sa.len, "late\n", 5, "... content");
	close(p[0]);
	close(p[1]);

	/* a full non-blocking pipe: io_writeall times out */
	if (pipe(p) == 0) {
		char junk[4096];

		memset(junk, 'j', sizeof junk);
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		while (write(p[1], junk, sizeof junk) > 0)
			;
		fcntl(p[1], F_SETFL, O_NONBLOCK);
		t0 = now();
		errno = 0;
		r = io_writeall(p[1], "x", 1, 1);
		dt = now() - t0;
		is_int(r, -1, "io_writeall to a full pipe fails");
		is_int(errno, ETIMEDOUT, "... ETIMEDOUT");
		ok(dt >= 0.9 && dt < 3, "... after about 1 s (%.2f s)", dt);
		close(p[0]);
		close(p[1]);
	}
	str_free(&sa);
}

static void
test_output(void)
{
	int p[2];
	io out;
	char buf[16], got[256], big[40];

	if (pipe(p) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	io_init(&out, p[1], buf, sizeof buf, 5);
	is_int(io_puts(&out, "hello"), 0, "io_puts");
	is_int(drain(p[0], got, sizeof got), 0, "output is buffered");
	is_int(io_put(&out, " world", 6), 0, "io_put");
	is_int(drain(p[0], got, sizeof got), 0, "still buffered");
	is_int(io_flush(&out), 0, "io_flush");
	is_int(drain(p[0], got, sizeof got), 11, "flush writes everything");
	is_mem(got, 11, "hello world", 11, "... in order");
	is_int(io_flush(&out), 0, "io_flush with nothing pending");
	is_int(drain(p[0], got, sizeof got), 0, "... writes nothing");

	/* filling the buffer exactly keeps it; one more byte flushes */
	io_put(&out, "0123456789abcdef", 15);
	is_int(drain(p[0], got, sizeof got), 0, "15 of 16 bytes stay buffered");
	io_put(&out, "X", 1);
	is_int(drain(p[0], got, sizeof got), 0, "16 of 16 bytes stay buffered");
	io_put(&out, "Y", 1);
	is_int(drain(p[0], got, sizeof got), 16, "the 17th byte flushes the 16");
	is_mem(got, 16, "0123456789abcdeX", 16, "... in order");
	io_flush(&out);
	is_int(drain(p[0], got, sizeof got), 1, "Y after the flush");

	/* a write bigger than the buffer goes straight out, after pending */
	memset(big, 'B', sizeof big);
	io_put(&out, "ab", 2);
	is_int(io_put(&out, big, sizeof big), 0, "io_put bigger than the buffer");
	is_int(drain(p[0], got, sizeof got), 42, "... written at once");
	ok(!memcmp(got, "ab", 2) && !memcmp(got + 2, big, sizeof big),
	   "... after what was pending");

	/* io_writeall */
	is_int(io_writeall(p[1], "direct", 6, 1), 0, "io_writeall");
	is_int(drain(p[0], got, sizeof got), 6, "... bytes arrive");
	close(p[0]);
	close(p[1]);
}

/* read exactly n bytes (blocking); 0 or -1 */
static int
readn(int fd, char *buf, size_t n)
{
	while (n) {
		ssize_t r = read(fd, buf, n);

		if (r <= 0)
			return -1;
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* an SMTP client: waits for each reply before sending the next commands,
 * and logs the replies it got */
static void
client(int rep, int cmd, int logfd)
{
	char buf[64];

	alarm(10);
	if (readn(rep, buf, 8) || write(logfd, buf, 8) != 8)
		_exit(1);
	if (write(cmd, "MAIL\nRCPT\n", 10) != 10)
		_exit(1);
	if (readn(rep, buf, 18) || write(logfd, buf, 18) != 18)
		_exit(1);
	if (write(cmd, "DATA\n", 5) != 5)
		_exit(1);
	if (readn(rep, buf, 9) || write(logfd, buf, 9) != 9)
		_exit(1);
	_exit(0);
}

static void
test_flush_first(void)
{
	int cmd[2], rep[2], lg[2], st;
	io in, out;
	char ibuf[256], obuf[256], got[256];
	str sa = STR_INIT;
	pid_t pid;

	/* input already waiting: no flush, replies go out together later */
	if (pipe(cmd) == -1 || pipe(rep) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	io_init(&in, cmd[0], ibuf, sizeof ibuf, 2);
	io_init(&out, rep[1], obuf, sizeof obuf, 2);
	in.flush_first = &out;
	io_puts(&out, "250 ok\r\n");
	io_writeall(cmd[1], "NOOP\n", 5, 1);
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "read a command that was already waiting");
	is_int(out.len, 8, "... pending output not flushed (read did not block)");
	is_int(drain(rep[0], got, sizeof got), 0, "... nothing written");
	close(cmd[0]);
	close(cmd[1]);
	close(rep[0]);
	close(rep[1]);

	/* a client that waits for each reply */
	if (pipe(cmd) == -1 || pipe(rep) == -1 || pipe(lg) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(cmd[0]);
		close(rep[1]);
		close(lg[0]);
		client(rep[0], cmd[1], lg[1]);
	}
	close(cmd[1]);
	close(rep[0]);
	close(lg[1]);
	io_init(&in, cmd[0], ibuf, sizeof ibuf, 2);
	io_init(&out, rep[1], obuf, sizeof obuf, 2);
	in.flush_first = &out;

	io_puts(&out, "220 hi\r\n");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "read would block: greeting flushed first, client answers");
	is_mem(sa.s, sa.len, "MAIL\n", 5, "... command 1");
	is_int(out.len, 0, "... nothing pending");

	io_puts(&out, "250 one\r\n");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "pipelined command 2 from the buffer");
	is_mem(sa.s, sa.len, "RCPT\n", 5, "... content");
	is_int(out.len, 9, "... reply 1 still pending (pipelining)");

	io_puts(&out, "250 two\r\n");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_LINE,
	       "read would block: both replies flushed, client answers");
	is_mem(sa.s, sa.len, "DATA\n", 5, "... command 3");

	io_puts(&out, "221 bye\r\n");
	sa.len = 0;
	is_int(io_getline(&in, &sa, '\n', 100), IO_EOF,
	       "last reply flushed, client hangs up: EOF");
	is_int(waitpid(pid, &st, 0), pid, "client finished");
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "client saw every reply");
	is_mem(got, (size_t)(readn(lg[0], got, 35) ? 0 : 35),
	       "220 hi\r\n250 one\r\n250 two\r\n221 bye\r\n", 35,
	       "client got the replies in order");
	close(cmd[0]);
	close(rep[1]);
	close(lg[0]);
	str_free(&sa);
}

static void
test_readfile(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4096], f[4200], l[4200], big[100000];
	str sa = STR_INIT;
	int fd;

	snprintf(dir, sizeof dir, "%s/moat-io-test.XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(f, sizeof f, "%s/f", dir);
	snprintf(l, sizeof l, "%s/l", dir);
	memset(big, 'x', sizeof big);
	big[sizeof big - 1] = 'y';
	fd = open(f, O_WRONLY | O_CREAT | O_EXCL, 0600);
	ok(fd != -1 && write(fd, big, sizeof big) == (ssize_t)sizeof big &&
	       close(fd) == 0 && symlink("f", l) == 0,
	   "readfile: a 100000-byte file and a symlink to it");
	sa.len = 5;
	ok(io_readfile(f, &sa, sizeof big, 0) == 0 && sa.len == sizeof big &&
	       !memcmp(sa.s, big, sizeof big),
	   "readfile: the whole file, byte for byte, replacing what was there");
	errno = 0;
	ok(io_readfile(f, &sa, sizeof big - 1, 0) == -1 && errno == EFBIG,
	   "readfile: one byte over max is EFBIG");
	ok(io_readfile(l, &sa, sizeof big, 0) == 0 && sa.len == sizeof big,
	   "readfile: a symlink is followed without O_NOFOLLOW");
	errno = 0;
	ok(io_readfile(l, &sa, sizeof big, O_NOFOLLOW) == -1 && errno == ELOOP,
	   "readfile: ... and refused with it (ELOOP)");
	errno = 0;
	ok(io_readfile("/nonexistent/moat", &sa, 10, 0) == -1 &&
	       errno == ENOENT,
	   "readfile: a missing file is ENOENT");
	unlink(l);
	unlink(f);
	rmdir(dir);
	str_free(&sa);
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_readfile();
	test_mem();
	test_pipe_lines();
	test_output();
	test_flush_first();
	test_timeout();
	return done_testing();
}
