/* unit tests for src/lib/log.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

/* run f in a child with stderr on a pipe; its stderr into out, exit code */
static int
capture(void (*f)(void), char *out, size_t size)
{
	int p[2], st;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	out[0] = 0;
	if (pipe(p) == -1)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], 2);
		f();
		_exit(0);
	}
	close(p[1]);
	while (got + 1 < size && (r = read(p[0], out + got, size - 1 - got)) > 0)
		got += (size_t)r;
	out[got] = 0;
	close(p[0]);
	if (waitpid(pid, &st, 0) == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static void
say(void)
{
	log_init("/usr/bin/moat-test");
	errno = ENOENT;
	log_msg("hello %s %d", "world", 42);
	log_sys("open %s", "x\ny");
}

static void
fatal(void)
{
	log_init("moat-x");
	errno = EACCES;
	die_sys(111, "cannot %s", "\x1b[31m");
}

int
main(void)
{
	char out[256];

	log_escape(out, sizeof out, "plain text", 10);
	is_str(out, "plain text", "log_escape keeps printable ASCII");
	log_escape(out, sizeof out, "a\r\nb\0c\x1b\x7f\xc3\xa9", 10);
	is_str(out, "a\\x0d\\x0ab\\x00c\\x1b\\x7f\\xc3\\xa9",
	       "control, NUL, DEL and 8-bit bytes as \\xHH");
	log_escape(out, 5, "abcdefgh", 8);
	is_str(out, "abcd", "truncated to the buffer, terminated");
	log_escape(out, 6, "ab\x01" "cd", 5);
	is_str(out, "ab", "an escape that does not fit is left out");
	memset(out, 'x', 4);
	log_escape(out, 1, "abc", 3);
	is_int(out[0], 0, "1-byte buffer: empty string");
	log_escape(out, 0, "abc", 3);
	ok(1, "0-byte buffer: no write");

	log_init("/a/b/prog");
	is_str(log_prog(), "prog", "log_init keeps the base name");
	log_init("prog2");
	is_str(log_prog(), "prog2", "log_init without a slash");

	is_int(capture(say, out, sizeof out), 0, "log_msg/log_sys in a child");
	is_str(out,
	       "moat-test: hello world 42\n"
	       "moat-test: open x\\x0ay: No such file or directory\n",
	       "lines start with the program, newlines escaped, errno text");
	is_int(capture(fatal, out, sizeof out), 111, "die_sys exits with its code");
	is_str(out, "moat-x: fatal: cannot \\x1b[31m: Permission denied\n",
	       "... and says why, escaped");
	return done_testing();
}
