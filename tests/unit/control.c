/* unit tests for src/lib/control.c */
#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "tap.h"

static char dir[4096];

static void
put(const char *name, const char *data, size_t len)
{
	char p[4200];
	FILE *f;

	snprintf(p, sizeof p, "%s/%s", dir, name);
	f = fopen(p, "w");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		diag("cannot write %s", p);
		exit(2);
	}
}

#define PUT(name, lit) put(name, lit, sizeof lit - 1)

static void
rm(const char *name)
{
	char p[4200];

	snprintf(p, sizeof p, "%s/%s", dir, name);
	unlink(p);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	return remove(p);
}

static void
test_table(void)
{
	const struct ctl_def *d;
	int good = 1, refs = 1, n = 0;

	for (d = ctl_table; d->name; d++, n++) {
		if (!d->doc || !*d->doc || d->kind > CTL_PRESENT)
			good = 0;
		if (ctl_find(d->name) != d)
			good = 0; /* duplicate name */
		if (d->def && d->def[0] == '=' && !ctl_find(d->def + 1))
			refs = 0;
	}
	ok(n > 20, "ctl_table has %d entries", n);
	ok(good, "every entry documented, kinds valid, names unique");
	ok(refs, "every \"=NAME\" default names a control file");
	ok(ctl_find("me") != NULL, "ctl_find me");
	ok(ctl_find("rcpthosts") && ctl_find("rcpthosts")->kind == CTL_LIST,
	   "rcpthosts is a list");
	ok(ctl_find("nosuchcontrol") == NULL, "ctl_find unknown: NULL");
	ok(ctl_find("") == NULL, "ctl_find empty: NULL");
}

static void
test_defaults(void)
{
	char host[256];
	str s = STR_INIT;
	size_t n;
	unsigned long long v;

	if (gethostname(host, sizeof host - 1) == -1)
		strcpy(host, "localhost");
	host[sizeof host - 1] = 0;

	is_int(ctl_line("me", &s), CTL_DEFAULT, "me: default");
	is_str(s.s, host, "me defaults to the host name");
	is_int(ctl_line("defaultdomain", &s), CTL_DEFAULT, "defaultdomain: default");
	is_str(s.s, host, "defaultdomain =me");
	is_int(ctl_line("bouncefrom", &s), CTL_DEFAULT, "bouncefrom: default");
	is_str(s.s, "MAILER-DAEMON", "bouncefrom MAILER-DAEMON");
	is_int(ctl_line("doublebounceto", &s), CTL_DEFAULT, "doublebounceto");
	is_str(s.s, "postmaster", "doublebounceto postmaster");
	is_int(ctl_line("outgoingip", &s), CTL_DEFAULT, "outgoingip: no default");
	ok(s.s && s.len == 0 && s.s[0] == 0, "... empty string");
	is_int(ctl_list("locals", &s, &n), CTL_DEFAULT, "locals: default");
	is_int(n, 1, "locals: one item");
	is_mem(s.s, s.len, host, strlen(host) + 1, "locals =me (NUL-ended)");
	is_int(ctl_list("rcpthosts", &s, &n), CTL_DEFAULT, "rcpthosts: default");
	is_int(n, 1, "rcpthosts: one item");
	is_str(s.s, host, "rcpthosts =locals =me");
	is_int(ctl_list("badmailfrom", &s, &n), CTL_DEFAULT, "badmailfrom: default");
	is_int(n, 0, "badmailfrom: empty");
	is_int(s.len, 0, "... no bytes");

	is_int(ctl_num("databytes", &v), CTL_DEFAULT, "databytes: default");
	is_int(v, 10485760, "databytes 10485760");
	is_int(ctl_num("concurrencyremote", &v), CTL_DEFAULT, "concurrencyremote");
	is_int(v, 20, "concurrencyremote 20");
	is_int(ctl_num("queuelifetime", &v), CTL_DEFAULT, "queuelifetime");
	is_int(v, 604800, "queuelifetime 7 days");

	errno = 0;
	is_int(ctl_line("nosuchcontrol", &s), -1, "ctl_line unknown name fails");
	is_int(errno, ENOENT, "... ENOENT");
	errno = 0;
	is_int(ctl_list("nosuchcontrol", &s, &n), -1, "ctl_list unknown name");
	is_int(errno, ENOENT, "... ENOENT");
	errno = 0;
	is_int(ctl_num("nosuchcontrol", &v), -1, "ctl_num unknown name");
	str_free(&s);
}

static void
test_files(void)
{
	str s = STR_INIT;
	size_t n;
	unsigned long long v;

	PUT("me", "mail.example.org\n");
	is_int(ctl_line("me", &s), CTL_FILE, "me from its file");
	is_str(s.s, "mail.example.org", "me: newline removed");
	is_int(s.len, 16, "... len");
	is_int(ctl_line("defaultdomain", &s), CTL_DEFAULT,
	       "defaultdomain still a default");
	is_str(s.s, "mail.example.org", "... follows me");
	is_int(ctl_line("helohost", &s), CTL_DEFAULT, "helohost default");
	is_str(s.s, "mail.example.org", "... follows me");
	is_int(ctl_list("locals", &s, &n), CTL_DEFAULT, "locals default");
	ok(n == 1 && !strcmp(s.s, "mail.example.org"), "locals =me follows me");
	is_int(ctl_list("rcpthosts", &s, &n), CTL_DEFAULT, "rcpthosts default");
	ok(n == 1 && !strcmp(s.s, "mail.example.org"), "rcpthosts follows me");

	PUT("defaultdomain", "example.org");
	is_int(ctl_line("defaultdomain", &s), CTL_FILE,
	       "defaultdomain file without newline");
	is_str(s.s, "example.org", "... content");

	PUT("me", "  host.example \t\r\nsecond line\n");
	is_int(ctl_line("me", &s), CTL_FILE, "me with trailing white space");
	is_str(s.s, "  host.example", "only the first line, trailing space trimmed");

	PUT("bouncefrom", "\n");
	is_int(ctl_line("bouncefrom", &s), CTL_DEFAULT, "empty line: default");
	is_str(s.s, "MAILER-DAEMON", "... default value");
	PUT("bouncefrom", " \t \r\n");
	is_int(ctl_line("bouncefrom", &s), CTL_DEFAULT, "blank line: default");
	PUT("bouncefrom", "");
	is_int(ctl_line("bouncefrom", &s), CTL_DEFAULT, "empty file: default");
	PUT("bouncefrom", "bounces\n");
	is_int(ctl_line("bouncefrom", &s), CTL_FILE, "bouncefrom file");
	is_str(s.s, "bounces", "... content");

	PUT("locals", "a.example\nB.Example\n");
	is_int(ctl_list("locals", &s, &n), CTL_FILE, "locals file");
	is_int(n, 2, "... 2 items");
	is_mem(s.s, s.len, "a.example\0B.Example\0", 20, "... items");
	is_int(ctl_list("rcpthosts", &s, &n), CTL_DEFAULT,
	       "rcpthosts defaults to locals");
	is_mem(s.s, s.len, "a.example\0B.Example\0", 20, "... same items");
	PUT("rcpthosts", "relay.example\n");
	is_int(ctl_list("rcpthosts", &s, &n), CTL_FILE, "rcpthosts file overrides");
	ok(n == 1 && !strcmp(s.s, "relay.example"), "... item");
	rm("rcpthosts");

	PUT("badmailfrom",
	    "# comment\n"
	    "\n"
	    "  spam@example.com  \r\n"
	    "\t# indented comment\n"
	    "   \t \n"
	    "@bad.example\n"
	    "a\0b\n"
	    "x # not a comment\n"
	    "last-no-newline");
	is_int(ctl_list("badmailfrom", &s, &n), CTL_FILE, "list with comments");
	is_int(n, 4, "... 4 items");
	is_mem(s.s, s.len,
	       "spam@example.com\0@bad.example\0x # not a comment\0last-no-newline\0",
	       64, "comments, blanks and a NUL line skipped, space trimmed");

	PUT("badmailfrom", "# only comments\n\n");
	is_int(ctl_list("badmailfrom", &s, &n), CTL_FILE, "list of only comments");
	is_int(n, 0, "... 0 items");
	PUT("badmailfrom", "");
	is_int(ctl_list("badmailfrom", &s, &n), CTL_FILE, "empty list file");
	is_int(n, 0, "... 0 items");

	PUT("concurrencyremote", "5\n");
	is_int(ctl_num("concurrencyremote", &v), CTL_FILE, "ctl_num from file");
	is_int(v, 5, "... 5");
	PUT("concurrencyremote", "  42 \t\r\n");
	is_int(ctl_num("concurrencyremote", &v), CTL_FILE,
	       "ctl_num with surrounding white space");
	is_int(v, 42, "... 42");
	PUT("concurrencyremote", "0\n");
	is_int(ctl_num("concurrencyremote", &v), CTL_FILE, "ctl_num 0");
	is_int(v, 0, "... 0");
	PUT("databytes", "18446744073709551615\n");
	ok(ctl_num("databytes", &v) == CTL_FILE && v == 18446744073709551615ULL,
	   "ctl_num ULLONG_MAX");
	PUT("databytes", "7\nignored\n");
	ok(ctl_num("databytes", &v) == CTL_FILE && v == 7,
	   "ctl_num reads only the first line");

	static const char *garbage[] = {
		"12abc\n", "abc\n", "-1\n", "+1\n", "1 2\n", "0x10\n", "1.5\n",
		"18446744073709551616\n", "99999999999999999999999\n", "\n",
		"", " \t\n", "1e3\n",
	};
	for (size_t i = 0; i < sizeof garbage / sizeof garbage[0]; i++) {
		put("databytes", garbage[i], strlen(garbage[i]));
		errno = 0;
		v = 12345;
		ok(ctl_num("databytes", &v) == -1 && errno == EINVAL,
		   "ctl_num rejects %zu (\"%.*s\") with EINVAL", i,
		   (int)strcspn(garbage[i], "\n"), garbage[i]);
	}
	rm("databytes");
	ok(ctl_num("databytes", &v) == CTL_DEFAULT && v == 10485760,
	   "removed: default again");

	/* a control that exists but cannot be read */
	{
		char p[4200];

		snprintf(p, sizeof p, "%s/smtproutes", dir);
		mkdir(p, 0755);
		ok(ctl_list("smtproutes", &s, &n) == -1,
		   "unreadable list (a directory) fails");
		snprintf(p, sizeof p, "%s/helohost", dir);
		mkdir(p, 0755);
		ok(ctl_line("helohost", &s) == -1,
		   "unreadable line (a directory) fails");
		snprintf(p, sizeof p, "%s/maxrcpt", dir);
		mkdir(p, 0755);
		ok(ctl_num("maxrcpt", &v) == -1, "unreadable number fails");
	}

	rm("me");
	rm("locals");
	rm("defaultdomain");
	str_free(&s);
}

static int
match(const char *items, size_t len, size_t n, const char *dom)
{
	str s = {(char *)items, len, len};

	return ctl_domain_match(&s, n, dom, strlen(dom));
}

static void
test_domain_match(void)
{
	static const char l[] = "example.com\0.example.org\0Mixed.NET\0.\0";
	size_t ll = sizeof l - 1, ln = 4;
	str empty = STR_INIT;

	is_int(match(l, ll, ln, "example.com"), 1, "exact match");
	is_int(match(l, ll, ln, "EXAMPLE.Com"), 1, "exact, any case");
	is_int(match(l, ll, ln, "mixed.net"), 1, "listed in mixed case");
	is_int(match(l, ll, ln, "sub.example.com"), 0,
	       "no suffix match without a leading dot");
	is_int(match(l, ll, ln, "xexample.com"), 0, "longer name: no");
	is_int(match(l, ll, ln, "example.co"), 0, "prefix: no");
	is_int(match(l, ll, ln, "example.com.evil"), 0, "extended: no");
	is_int(match(l, ll, ln, "a.example.org"), 1, ".suffix matches a subdomain");
	is_int(match(l, ll, ln, "a.b.EXAMPLE.org"), 1, "... deeper, any case");
	is_int(match(l, ll, ln, "example.org"), 0, ".suffix does not match itself");
	is_int(match(l, ll, ln, "badexample.org"), 0, ".suffix needs the dot");
	is_int(match(l, ll, ln, ".example.org"), 1, "the item itself matches");
	is_int(match(l, ll, ln, "anything.at.all"), 0,
	       "a lone \".\" item is not a wildcard");
	is_int(match(l, ll, ln, "."), 1, "... but matches \".\" exactly");
	is_int(match(l, ll, ln, ""), 0, "empty domain: no");
	is_int(match(l, ll, 1, "a.example.org"), 0, "only n items are searched");
	is_int(ctl_domain_match(&empty, 0, "example.com", 11), 0, "empty list");
	is_int(ctl_domain_match(&(str){(char *)l, ll, ll}, ln, "example.comX", 11),
	       1, "len bounds the domain");
}

static void
test_cdb(void)
{
	struct cdb_make cm;
	char p[4200];
	int fd;

	snprintf(p, sizeof p, "%s/morercpthosts.cdb", dir);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0, "create morercpthosts.cdb");
	if (fd < 0)
		return;
	cdb_make_start(&cm, fd);
	cdb_make_add(&cm, "example.net", 11, "", 0);
	cdb_make_add(&cm, "other.org", 9, "x", 1);
	cdb_make_add(&cm, "bin\0key", 7, "", 0);
	ok(cdb_make_finish(&cm) == 0, "cdb built");
	close(fd);

	is_int(ctl_cdb_has("morercpthosts", "example.net", 11), 1, "key found");
	is_int(ctl_cdb_has("morercpthosts", "other.org", 9), 1, "second key found");
	is_int(ctl_cdb_has("morercpthosts", "bin\0key", 7), 1,
	       "key with a NUL found");
	is_int(ctl_cdb_has("morercpthosts", "bin", 3), 0, "prefix of a key: 0");
	is_int(ctl_cdb_has("morercpthosts", "example", 7), 0, "prefix: 0");
	is_int(ctl_cdb_has("morercpthosts", "EXAMPLE.NET", 11), 0,
	       "keys are exact bytes");
	is_int(ctl_cdb_has("morercpthosts", "", 0), 0, "empty key: 0");
	is_int(ctl_cdb_has("morercpthosts", "example.net", 10), 0,
	       "len bounds the key");
	is_int(ctl_cdb_has("nosuchfile", "example.net", 11), 0, "no such cdb: 0");

	/* a broken cdb */
	PUT("broken.cdb", "not a cdb");
	is_int(ctl_cdb_has("broken", "example.net", 11), -1, "truncated cdb: -1");
	snprintf(p, sizeof p, "%s/dir.cdb", dir);
	mkdir(p, 0755);
	is_int(ctl_cdb_has("dir", "example.net", 11), -1, "unreadable cdb: -1");
}

int
main(void)
{
	const char *t = getenv("TMPDIR");
	int r;

	snprintf(dir, sizeof dir, "%s/moat-unit-control.XXXXXX",
		 t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP cannot make a temporary directory\n");
		return 0;
	}
	ctl_setdir(dir);
	is_str(ctl_dir(), dir, "ctl_setdir/ctl_dir");
	test_table();
	test_defaults();
	test_files();
	test_domain_match();
	test_cdb();
	r = done_testing();
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}
