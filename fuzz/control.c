/*
 * control.c: fuzz target for the control file readers.
 *
 * One temporary control directory per process, in which me, databytes and
 * badmailfrom are symbolic links to one file; each input is written to it
 * once and read as a line, a number and a list.  locals and rcpthosts are
 * absent, so their defaults follow me.  Each parsed list item must then
 * match itself through ctl_domain_match().
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256], file[300];
static const char *links[] = {"me", "databytes", "badmailfrom"};

static void
cleanup(void)
{
	char p[320];
	size_t i;

	for (i = 0; i < sizeof links / sizeof links[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, links[i]);
		unlink(p);
	}
	unlink(file);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *t = getenv("TMPDIR");
	char p[320];
	size_t i;

	snprintf(dir, sizeof dir, "%s/moat-fuzz-control.XXXXXX",
		 t && *t && strlen(t) < 200 ? t : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(file, sizeof file, "%s/data", dir);
	for (i = 0; i < sizeof links / sizeof links[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, links[i]);
		if (symlink("data", p))
			abort();
	}
	atexit(cleanup);
	ctl_setdir(dir);
	return 0;
}

static int
space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* the number on the first line, as ctl_num should see it: 1 ok, 0 not */
static int
number(const uint8_t *d, size_t size, unsigned long long *v)
{
	size_t e = 0, i = 0;

	while (e < size && d[e] != '\n')
		e++;
	while (e > 0 && space((char)d[e - 1]))
		e--;
	while (i < e && space((char)d[i]))
		i++;
	if (i == e)
		return 0;
	for (*v = 0; i < e; i++)
		if (d[i] < '0' || d[i] > '9' ||
		    __builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (unsigned)(d[i] - '0'), v))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static str line, list, locals, dom;
	unsigned long long v = 0, want;
	size_t n, nl, i, off, l;
	int fd, r;

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) ||
	    close(fd))
		abort();

	r = ctl_line("me", &line);
	if (r != CTL_FILE && r != CTL_DEFAULT)
		abort();
	if (!line.s || line.s[line.len] || memchr(line.s, '\n', line.len) ||
	    (line.len && space(line.s[line.len - 1])))
		abort();
	if (r == CTL_FILE && (!line.len || memcmp(line.s, data, line.len)))
		abort();

	r = ctl_num("databytes", &v);
	if (number(data, size, &want)) {
		if (r != CTL_FILE || v != want)
			abort();
	} else if (r != -1) {
		abort();
	}

	r = ctl_list("badmailfrom", &list, &n);
	if (r != CTL_FILE)
		abort();
	for (i = 0, off = 0; i < n; i++) {
		if (off >= list.len)
			abort();
		l = strlen(list.s + off);
		/* leading blanks (space, tab) and trailing white space go */
		if (!l || list.s[off] == '#' || list.s[off] == ' ' ||
		    list.s[off] == '\t' ||
		    space(list.s[off + l - 1]) || memchr(list.s + off, '\n', l))
			abort();
		if (ctl_domain_match(&list, n, list.s + off, l) != 1)
			abort();
		if (l > 1 && list.s[off] == '.') {
			dom.len = 0;
			if (str_catc(&dom, 'x') || str_catb(&dom, list.s + off, l))
				abort();
			if (ctl_domain_match(&list, n, dom.s, dom.len) != 1)
				abort();
		}
		off += l + 1;
	}
	if (off != list.len)
		abort();
	ctl_domain_match(&list, n, (const char *)data, size);

	/* locals (absent) defaults to me: one item, me's value */
	if (ctl_list("rcpthosts", &locals, &nl) != CTL_DEFAULT || nl != 1 ||
	    locals.len != line.len + 1 || memcmp(locals.s, line.s, line.len + 1))
		abort();
	return 0;
}
