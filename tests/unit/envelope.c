/* unit tests for src/lib/envelope.c */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "tap.h"

static int
read_mem(const char *data, size_t len, const struct env_limits *lim,
	 str *sender, str *rcpts, size_t *n)
{
	io in;

	io_init_mem(&in, data, len);
	return env_read(&in, lim ? lim : &env_default_limits, sender, rcpts, n);
}

#define RD(lit, lim) read_mem(lit, sizeof lit - 1, lim, &sender, &rcpts, &n)

static void
test_add(void)
{
	str e = STR_INIT;

	is_int(env_add(&e, 'F', "a@b.c", 5), 0, "env_add sender");
	is_int(env_add(&e, 'T', "x@y.z", 5), 0, "env_add recipient");
	is_int(env_add(&e, 'T', "", 0), 0, "env_add empty address");
	is_mem(e.s, e.len, "Fa@b.c\0Tx@y.z\0T\0", 16, "records tag+addr+NUL");
	errno = 0;
	is_int(env_add(&e, 'T', "a\0b", 3), -1, "env_add refuses a NUL");
	is_int(errno, EINVAL, "... EINVAL");
	is_int(e.len, 16, "... nothing appended");
	errno = 0;
	is_int(env_add(&e, 'T', "\0", 1), -1, "env_add refuses a lone NUL");
	is_int(env_add(&e, 'T', "a@b\0", 3), 0, "env_add takes only n bytes");
	is_int(e.len, 21, "... 5 bytes appended");
	str_free(&e);
}

static void
test_valid(void)
{
	str sender = STR_INIT, rcpts = STR_INIT, e = STR_INIT;
	size_t n = 99, i, off;
	char addr[64];
	int good;

	is_int(RD("F\0\0", 0), QQ_OK, "null sender, no recipients");
	is_int(sender.len, 0, "... empty sender");
	ok(sender.s && sender.s[0] == 0, "... NUL-terminated");
	is_int(n, 0, "... 0 recipients");
	is_int(rcpts.len, 0, "... no recipient bytes");

	is_int(RD("Fa@b.c\0Tx@y.z\0\0", 0), QQ_OK, "one recipient");
	is_str(sender.s, "a@b.c", "... sender");
	is_int(sender.len, 5, "... sender len without NUL");
	is_int(n, 1, "... 1 recipient");
	is_mem(rcpts.s, rcpts.len, "x@y.z\0", 6, "... recipient NUL-ended");

	is_int(RD("Fs\0Ta\0Tbb\0T\0Tccc\0\0", 0), QQ_OK,
	       "several recipients, one empty");
	is_int(n, 4, "... 4 recipients");
	is_mem(rcpts.s, rcpts.len, "a\0bb\0\0ccc\0", 10, "... consecutive");

	/* trailing bytes after the final NUL are not read */
	is_int(RD("Fs\0Ta\0\0garbage", 0), QQ_OK, "bytes after the end ignored");

	/* many */
	env_add(&e, 'F', "sender@example.org", 18);
	for (i = 0; i < 5000; i++) {
		size_t l = (size_t)snprintf(addr, sizeof addr, "user%zu@example.com", i);
		env_add(&e, 'T', addr, l);
	}
	str_catc(&e, 0);
	is_int(read_mem(e.s, e.len, 0, &sender, &rcpts, &n), QQ_OK,
	       "5000 recipients");
	is_int(n, 5000, "... all counted");
	good = 1;
	for (i = 0, off = 0; i < n && good; i++) {
		snprintf(addr, sizeof addr, "user%zu@example.com", i);
		if (off >= rcpts.len || strcmp(rcpts.s + off, addr))
			good = 0;
		off += strlen(addr) + 1;
	}
	ok(good && off == rcpts.len, "... each in order");

	/* results are reset by a new call */
	is_int(RD("Fz\0\0", 0), QQ_OK, "second read");
	ok(n == 0 && rcpts.len == 0 && sender.len == 1, "... outputs reset");

	str_free(&sender);
	str_free(&rcpts);
	str_free(&e);
}

static void
test_pipe(void)
{
	str sender = STR_INIT, rcpts = STR_INIT;
	size_t n;
	int p[2], r;
	char buf[8];
	io in;

	if (pipe(p) == -1) {
		ok(0, "pipe: %s", strerror(errno));
		return;
	}
	io_writeall(p[1], "Fsender@a.b\0Tone@c.d\0Ttwo@e.f\0\0", 31, 5);
	close(p[1]);
	io_init(&in, p[0], buf, sizeof buf, 5);
	is_int(env_read(&in, &env_default_limits, &sender, &rcpts, &n), QQ_OK,
	       "from a pipe through an 8-byte buffer");
	is_str(sender.s, "sender@a.b", "... sender");
	is_mem(rcpts.s, rcpts.len, "one@c.d\0two@e.f\0", 16, "... recipients");
	close(p[0]);

	/* a writer that never finishes: timeout */
	if (pipe(p) == 0) {
		io_writeall(p[1], "Fsender\0Tr", 10, 5);
		io_init(&in, p[0], buf, sizeof buf, 1);
		r = env_read(&in, &env_default_limits, &sender, &rcpts, &n);
		is_int(r, QQ_TIMEOUT, "silent writer mid-envelope: QQ_TIMEOUT");
		close(p[0]);
		close(p[1]);
	}

	/* a read error */
	{
		int fd = open("/", O_RDONLY | O_DIRECTORY);

		io_init(&in, fd, buf, sizeof buf, 1);
		is_int(env_read(&in, &env_default_limits, &sender, &rcpts, &n),
		       QQ_READ, "read error (a directory): QQ_READ");
		close(fd);
	}
	str_free(&sender);
	str_free(&rcpts);
}

static void
test_bad(void)
{
	str sender = STR_INIT, rcpts = STR_INIT;
	size_t n;
	struct env_limits lim;
	char big[1100];

	is_int(RD("", 0), QQ_READ, "empty input: QQ_READ");
	is_int(RD("F", 0), QQ_READ, "EOF in the sender: QQ_READ");
	is_int(RD("Fa@b", 0), QQ_READ, "EOF before the sender's NUL: QQ_READ");
	is_int(RD("Fa@b\0", 0), QQ_READ, "EOF after the sender: QQ_READ");
	is_int(RD("Fa@b\0Tc@d\0", 0), QQ_READ,
	       "EOF before the final NUL: QQ_READ");
	is_int(RD("Fa@b\0Tc@d", 0), QQ_READ, "EOF inside a recipient: QQ_READ");

	is_int(RD("Xa@b\0\0", 0), QQ_FORMAT, "bad sender tag: QQ_FORMAT");
	is_int(RD("Ta@b\0\0", 0), QQ_FORMAT, "T first: QQ_FORMAT");
	is_int(RD("\0", 0), QQ_FORMAT, "empty first record: QQ_FORMAT");
	is_int(RD("fa@b\0\0", 0), QQ_FORMAT, "lower-case tag: QQ_FORMAT");
	is_int(RD("Fa@b\0Xc@d\0\0", 0), QQ_FORMAT, "bad recipient tag: QQ_FORMAT");
	is_int(RD("Fa@b\0Fc@d\0\0", 0), QQ_FORMAT, "second F: QQ_FORMAT");

	/* address length, default limit 1000 */
	big[0] = 'F';
	memset(big + 1, 'a', 1000);
	big[1001] = 0;
	big[1002] = 0;
	is_int(read_mem(big, 1003, 0, &sender, &rcpts, &n), QQ_OK,
	       "1000-byte sender: ok");
	big[0] = 'F';
	memset(big + 1, 'a', 1001);
	big[1002] = 0;
	big[1003] = 0;
	is_int(read_mem(big, 1004, 0, &sender, &rcpts, &n), QQ_ADDRLONG,
	       "1001-byte sender: QQ_ADDRLONG");
	memcpy(big, "Fs\0T", 4);
	memset(big + 4, 'r', 1001);
	big[1005] = 0;
	big[1006] = 0;
	is_int(read_mem(big, 1007, 0, &sender, &rcpts, &n), QQ_ADDRLONG,
	       "1001-byte recipient: QQ_ADDRLONG");

	/* small custom limits */
	lim.addr_max = 5;
	lim.rcpt_max = 3;
	lim.total_max = 1000;
	is_int(RD("F12345\0T12345\0\0", &lim), QQ_OK, "addr_max 5: 5 bytes ok");
	is_int(RD("F123456\0\0", &lim), QQ_ADDRLONG, "addr_max 5: 6-byte sender");
	is_int(RD("Fs\0T123456\0\0", &lim), QQ_ADDRLONG,
	       "addr_max 5: 6-byte recipient");
	is_int(RD("Fs\0T1234567890123456789\0\0", &lim), QQ_ADDRLONG,
	       "addr_max 5: much longer recipient");
	is_int(RD("Fs\0Ta\0Tb\0Tc\0\0", &lim), QQ_OK, "rcpt_max 3: 3 ok");
	is_int(n, 3, "... 3 recipients");
	is_int(RD("Fs\0Ta\0Tb\0Tc\0Td\0\0", &lim), QQ_FORMAT,
	       "rcpt_max 3: 4 recipients: QQ_FORMAT");
	lim.rcpt_max = 0;
	is_int(RD("Fs\0\0", &lim), QQ_OK, "rcpt_max 0: no recipients ok");
	is_int(RD("Fs\0Ta\0\0", &lim), QQ_FORMAT, "rcpt_max 0: one: QQ_FORMAT");

	/* total: records count their bytes and NUL; "Fab\0Tcd\0\0" is 9 */
	lim.rcpt_max = 10;
	lim.total_max = 9;
	is_int(RD("Fab\0Tcd\0\0", &lim), QQ_OK, "total_max 9: 9 bytes ok");
	lim.total_max = 8;
	is_int(RD("Fab\0Tcd\0\0", &lim), QQ_FORMAT, "total_max 8: QQ_FORMAT");
	lim.total_max = 20;
	is_int(RD("Fs\0Ta\0Tb\0Tc\0Td\0Te\0Tf\0Tg\0\0", &lim), QQ_FORMAT,
	       "total_max 20: too large: QQ_FORMAT");

	lim.addr_max = 0;
	lim.total_max = 100;
	is_int(RD("F\0T\0\0", &lim), QQ_OK, "addr_max 0: empty addresses ok");
	is_int(RD("Fa\0\0", &lim), QQ_ADDRLONG, "addr_max 0: 1 byte too long");
	str_free(&sender);
	str_free(&rcpts);
}

int
main(void)
{
	test_add();
	test_valid();
	test_pipe();
	test_bad();
	return done_testing();
}
