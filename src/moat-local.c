/*
 * moat-local: deliver one message to one local recipient by following the
 * recipient's .qmail file (the job of qmail-local).
 *
 *   moat-local [-nN] user homedir local dash ext domain sender
 *              defaultdelivery
 *
 * Runs as: the recipient, started by moat-lspawn; it refuses to run with a
 * real or effective uid of 0.
 *
 * Reads: the message on fd 0, a seekable file (the queue's mess file, which
 * begins with moat's Received lines), rewound for each delivery; in homedir
 * the .qmail file chosen by dash and ext: .qmail<dash><ext>, then (when dash
 * is not empty) .qmail<dash><ext-prefix>-default from the longest prefix to
 * .qmail<dash>default, where ext is lowercased and its dots are colons; an
 * empty or (for an empty dash) missing file means defaultdelivery;
 * control/envnoathost for a forward address without '@'.
 *
 * Writes: Maildirs (tmp/ then new/, fsynced), mbox files (locked with
 * fcntl, appended, truncated back on failure), the standard input of
 * |programs (sh -c in homedir, addresses only in the environment), and
 * one copy of the message for all forward addresses through moat-queue
 * (or $QMAILQUEUE).  Delivery lines carry Return-Path and Delivered-To;
 * forwarded copies carry Delivered-To.  One line on stdout says what
 * happened, ending in a (#x.y.z) status on failure; moat-lspawn turns it
 * into the delivery report.  With -n nothing is read or delivered: the
 * instructions that would be followed are printed, one a line.
 *
 * Exit codes (qmail-local's): 0 every instruction succeeded; 100 permanent
 * failure (the message bounces, e.g. no such extension, a looping message,
 * a program exiting 100); 111 temporary failure (try again later).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dotqmail.h"
#include "envelope.h"
#include "io.h"
#include "log.h"
#include "paths.h"
#include "str.h"

#define QMAIL_MAX (1024 * 1024) /* bytes in a .qmail file */
#define LOCK_TIMEOUT 30         /* seconds to wait for an mbox lock */
#define WRITE_TIMEOUT 3600      /* seconds for a Maildir or mbox write */
#define PROG_TIMEOUT 3600       /* seconds a program may run */
#define QUEUE_TIMEOUT 3600      /* seconds moat-queue may take */
#define OUTPUT_MAX 400          /* program output kept for the report */
#define REPORT_MAX 900          /* bytes in the report line */
#define HOST_MAX 100            /* bytes of escaped host in Maildir names */

#define TEMP "(#4.3.0)"

/* the arguments */
static const char *user, *homedir, *local, *dash, *ext, *host, *sender,
    *defaultdelivery;
static int doit = 1;

static str dtline, rpline, ufline, safeext, newsender, qmailname;
static const char *defaultpart; /* $DEFAULT: the part of ext matched */
static char **envp;             /* environment for programs */

/* the delivery instructions, forward addresses qualified */
static struct dotqmail instrs = DOTQMAIL_INIT;

static str done; /* what was delivered, for the report */

/* what a timeout or a failure must undo; read by the alarm handler */
static volatile sig_atomic_t tmp_active, new_active, lock_wait, lock_expired;
static int tmp_dirfd = -1, new_dirfd = -1, mbox_fd = -1;
static char tmp_name[512];
static off_t mbox_len;
static volatile pid_t child;
static const char *alarm_text = "Timeout. " TEMP;
static int selfpipe[2] = {-1, -1}; /* SIGCHLD wakes the program wait */

/* ---- the report ---- */

/* undo a half-done delivery; async-signal-safe */
static void
undo(void)
{
	if (tmp_active)
		unlinkat(tmp_dirfd, tmp_name, 0);
	if (new_active)
		unlinkat(new_dirfd, tmp_name, 0);
	if (mbox_fd >= 0)
		(void)!ftruncate(mbox_fd, mbox_len);
	if (child > 0) {
		kill(-child, SIGKILL);
		kill(child, SIGKILL);
	}
}

/* s[0..n) made printable into out (size > 3), "..." if cut */
static size_t
printable(char *out, size_t size, const char *s, size_t n)
{
	size_t o = 0, i;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (o + 4 >= size) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '\n' || c == '\t' || c == '\r')
			c = ' ';
		else if (c < 32 || c > 126)
			c = '?';
		out[o++] = c;
	}
	out[o] = 0;
	return o;
}

static void
say(const char *s, size_t n)
{
	char line[REPORT_MAX + 8];
	size_t l = printable(line, REPORT_MAX, s, n);

	line[l++] = '\n';
	(void)!write(1, line, l);
}

/* print the report line and exit with code */
static _Noreturn void __attribute__((format(printf, 2, 3)))
finish(int code, const char *fmt, ...)
{
	char raw[REPORT_MAX + 1];
	va_list ap;
	int n;

	undo();
	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	say(raw, (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1);
	_exit(code);
}

static _Noreturn void
nomem(void)
{
	finish(111, "Out of memory. " TEMP);
}

static void
on_alarm(int sig)
{
	(void)sig;
	if (lock_wait) {
		lock_expired = 1;
		return;
	}
	undo();
	(void)!write(1, alarm_text, strlen(alarm_text));
	(void)!write(1, "\n", 1);
	_exit(111);
}

static void
on_chld(int sig)
{
	int e = errno;

	(void)sig;
	(void)!write(selfpipe[1], "", 1);
	errno = e;
}

static void
add_done(const char *s, size_t n)
{
	if (done.len > REPORT_MAX)
		return;
	if ((done.len && str_cats(&done, ", ") == -1) ||
	    str_catb(&done, s, n) == -1)
		nomem();
}

/* ---- small helpers ---- */

/* a buffered writer that remembers its first error */
struct out {
	int fd;
	int err;
	size_t len;
	char buf[65536];
};
static struct out ob;

static void
o_init(struct out *o, int fd)
{
	o->fd = fd;
	o->err = 0;
	o->len = 0;
}

static void
o_flush(struct out *o)
{
	if (!o->err && o->len && io_writeall(o->fd, o->buf, o->len, 0) == -1)
		o->err = errno ? errno : EIO;
	o->len = 0;
}

static void
o_put(struct out *o, const char *s, size_t n)
{
	while (n && !o->err) {
		size_t k = sizeof o->buf - o->len;

		if (k > n)
			k = n;
		memcpy(o->buf + o->len, s, k);
		o->len += k;
		s += k;
		n -= k;
		if (o->len == sizeof o->buf)
			o_flush(o);
	}
}

static void
rewind_message(void)
{
	if (lseek(0, 0, SEEK_SET) == -1)
		finish(111, "Unable to rewind message. " TEMP);
}

/* read from the message; >0 bytes, 0 end, -1 error */
static ssize_t
read_message(char *buf, size_t n)
{
	for (;;) {
		ssize_t r = read(0, buf, n);

		if (r >= 0 || errno != EINTR)
			return r;
	}
}

static _Noreturn void
read_failed(void)
{
	finish(111, "Unable to read message: %s. " TEMP, strerror(errno));
}

/* the whole message into o, as it is */
static void
copy_message(struct out *o)
{
	static char buf[65536];
	ssize_t r;

	while (!o->err && (r = read_message(buf, sizeof buf)) != 0) {
		if (r < 0)
			read_failed();
		o_put(o, buf, (size_t)r);
	}
}

static void
set_alarm(unsigned secs, const char *text)
{
	alarm_text = text;
	alarm(secs);
}

/* ---- header lines ---- */

/* control characters in s from offset `from` become c */
static void
clean(str *s, size_t from, char c)
{
	size_t i;

	for (i = from; i < s->len; i++)
		if ((unsigned char)s->s[i] < 32 || s->s[i] == 127)
			s->s[i] = c;
}

static int
is_atext(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* a local part that is not a dot-atom must be quoted */
static int
needs_quotes(const char *s, size_t n)
{
	size_t i;

	if (!n || s[0] == '.' || s[n - 1] == '.')
		return 1;
	for (i = 0; i < n; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return 1;
		if (s[i] != '.' && !is_atext(s[i]))
			return 1;
	}
	return 0;
}

/* addr in RFC 5322 form: the local part quoted when it must be */
static int
cat_quoted(str *out, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr), i;

	if (!*addr)
		return 0;
	if (!needs_quotes(addr, n))
		return str_cats(out, addr);
	if (str_catc(out, '"') == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (((addr[i] == '"' || addr[i] == '\\') &&
		     str_catc(out, '\\') == -1) ||
		    str_catc(out, addr[i]) == -1)
			return -1;
	if (str_catc(out, '"') == -1)
		return -1;
	return at ? str_cats(out, at) : 0;
}

/* "Thu Nov 24 18:22:48 1986\n", in UTC, as qmail-local writes it */
static void
cat_ctime(str *out, time_t t)
{
	static const char *day[] = {"Sun", "Mon", "Tue", "Wed",
	                            "Thu", "Fri", "Sat"};
	static const char *mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	char buf[64];
	int n;

	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof tm);
	n = snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %d\n",
	             day[tm.tm_wday % 7], mon[tm.tm_mon % 12], tm.tm_mday,
	             tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
	if (n < 0 || str_catb(out, buf, (size_t)n) == -1)
		nomem();
}

static void
make_lines(void)
{
	size_t i;

	if (str_copys(&dtline, "Delivered-To: ") == -1 ||
	    str_cats(&dtline, local) == -1 || str_catc(&dtline, '@') == -1 ||
	    str_cats(&dtline, host) == -1)
		nomem();
	clean(&dtline, 0, '_');
	if (str_cats(&dtline, "\n") == -1 || str_0(&dtline) == -1)
		nomem();

	if (str_copys(&rpline, "Return-Path: <") == -1 ||
	    cat_quoted(&rpline, sender) == -1)
		nomem();
	clean(&rpline, 0, '_');
	if (str_cats(&rpline, ">\n") == -1 || str_0(&rpline) == -1)
		nomem();

	if (str_copys(&ufline, "From ") == -1 ||
	    str_cats(&ufline, *sender ? sender : "MAILER-DAEMON") == -1)
		nomem();
	for (i = 5; i < ufline.len; i++)
		if (ufline.s[i] == ' ')
			ufline.s[i] = '-';
	clean(&ufline, 5, '-');
	if (str_catc(&ufline, ' ') == -1)
		nomem();
	cat_ctime(&ufline, time(0));
	if (str_0(&ufline) == -1)
		nomem();
}

/* ---- the environment of programs ---- */

static void
env_put(size_t *n, const char *name, const char *val, size_t len)
{
	str e = STR_INIT;

	if (str_cats(&e, name) == -1 || str_catc(&e, '=') == -1 ||
	    str_catb(&e, val, len) == -1 || str_0(&e) == -1)
		nomem();
	envp[(*n)++] = e.s;
}

static void
env_puts(size_t *n, const char *name, const char *val)
{
	env_put(n, name, val, strlen(val));
}

/* the part of s after the k-th '-' (k >= 1), or "" */
static const char *
after_dash(const char *s, int k)
{
	while (k-- > 0) {
		const char *d = strchr(s, '-');

		if (!d)
			return s + strlen(s);
		s = d + 1;
	}
	return s;
}

/* index of the last '.' in s[0..n), or n */
static size_t
last_dot(const char *s, size_t n)
{
	size_t i = n;

	while (i > 0)
		if (s[--i] == '.')
			return i;
	return n;
}

static void
make_env(void)
{
	static const char *pass[] = {"MOAT_ROOT", "QMAILQUEUE", 0};
	size_t n = 0, h = strlen(host), i;
	str rcpt = STR_INIT;

	envp = calloc(32, sizeof *envp);
	if (!envp)
		nomem();
	env_puts(&n, "PATH", "/usr/local/bin:/usr/bin:/bin");
	for (i = 0; pass[i]; i++)
		if (getenv(pass[i]))
			env_puts(&n, pass[i], getenv(pass[i]));
	env_puts(&n, "SENDER", sender);
	env_puts(&n, "NEWSENDER", newsender.s);
	if (str_copys(&rcpt, local) == -1 || str_catc(&rcpt, '@') == -1 ||
	    str_cats(&rcpt, host) == -1)
		nomem();
	env_put(&n, "RECIPIENT", rcpt.s, rcpt.len);
	str_free(&rcpt);
	env_puts(&n, "USER", user);
	env_puts(&n, "HOME", homedir);
	env_puts(&n, "LOCAL", local);
	env_puts(&n, "HOST", host);
	h = last_dot(host, h);
	env_put(&n, "HOST2", host, h);
	h = last_dot(host, h);
	env_put(&n, "HOST3", host, h);
	h = last_dot(host, h);
	env_put(&n, "HOST4", host, h);
	env_puts(&n, "EXT", ext);
	env_puts(&n, "EXT2", after_dash(ext, 1));
	env_puts(&n, "EXT3", after_dash(ext, 2));
	env_puts(&n, "EXT4", after_dash(ext, 3));
	if (defaultpart)
		env_puts(&n, "DEFAULT", defaultpart);
	env_puts(&n, "DTLINE", dtline.s);
	env_puts(&n, "RPLINE", rpline.s);
	env_puts(&n, "UFLINE", ufline.s);
	envp[n] = 0;
}

/* ---- checks before anything is delivered ---- */

static void
check_home(void)
{
	struct stat st;

	if (stat(".", &st) == -1)
		finish(111, "Unable to stat home directory: %s. " TEMP,
		       strerror(errno));
	if (st.st_mode & S_IWOTH)
		finish(111, "Uh-oh: home directory is writable. (#4.7.0)");
	if (st.st_mode & S_ISVTX) {
		if (doit)
			finish(111, "Home directory is sticky: user is "
			            "editing his .qmail file. (#4.2.1)");
		say("warning: home directory is sticky", 33);
	}
}

/* a Delivered-To line in the header identical to ours means a loop */
static void
check_loop(void)
{
	str line = STR_INIT;
	char buf[8192];
	io in;

	rewind_message();
	io_init(&in, 0, buf, sizeof buf, 0);
	for (;;) {
		int r;

		line.len = 0;
		r = io_getline(&in, &line, '\n', dtline.len);
		if (r == IO_ERR)
			read_failed();
		if (r == IO_EOF || (r == IO_LINE && line.len <= 1))
			break;
		if (r == IO_LINE && line.len == dtline.len &&
		    !strncasecmp(line.s, dtline.s, dtline.len))
			finish(100, "This message is looping: it already has "
			            "my Delivered-To line. (#5.4.6)");
	}
	str_free(&line);
}

/* ---- finding the .qmail file ---- */

/* qmailname = ".qmail" dash safeext[0..n) suffix */
static void
qname(size_t n, const char *suffix)
{
	if (str_copys(&qmailname, ".qmail") == -1 ||
	    str_cats(&qmailname, dash) == -1 ||
	    str_catb(&qmailname, safeext.s, n) == -1 ||
	    str_cats(&qmailname, suffix) == -1 || str_0(&qmailname) == -1)
		nomem();
}

static int
absent(int e)
{
	return e == ENOENT || e == ENOTDIR || e == ENAMETOOLONG;
}

/* open qmailname: 1 a regular file (*fd, *xbit set), 0 none */
static int
qmail_open(int *fd, int *xbit)
{
	struct stat st;

	*fd = open(qmailname.s, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (*fd == -1) {
		if (absent(errno))
			return 0;
		finish(111, "Unable to open %s: %s. " TEMP, qmailname.s,
		       strerror(errno));
	}
	if (fstat(*fd, &st) == -1)
		finish(111, "Unable to stat %s: %s. " TEMP, qmailname.s,
		       strerror(errno));
	if (!S_ISREG(st.st_mode)) {
		close(*fd);
		*fd = -1;
		return 0;
	}
	if (st.st_mode & S_IWOTH)
		finish(111, "Uh-oh: .qmail file is writable. (#4.7.0)");
	*xbit = !!(st.st_mode & S_IXUSR);
	return 1;
}

static int
is_default_at(size_t i)
{
	return i == 0 || safeext.s[i - 1] == '-';
}

/* the most specific .qmail file: 1 found (*fd), 0 none */
static int
qmail_search(int *fd, int *xbit)
{
	size_t n = safeext.len, i;

	qname(n, "");
	if (qmail_open(fd, xbit)) {
		if (n >= 7 && !memcmp(safeext.s + n - 7, "default", 7) &&
		    is_default_at(n - 7))
			defaultpart = ext + n - 7;
		return 1;
	}
	if (!*dash)
		return 0;
	for (i = n + 1; i-- > 0;) {
		if (!is_default_at(i))
			continue;
		qname(i, "default");
		if (qmail_open(fd, xbit)) {
			defaultpart = ext + i;
			return 1;
		}
	}
	return 0;
}

/* does .qmail<dash><ext><suffix> exist? */
static int
qmail_exists(const char *suffix)
{
	struct stat st;

	qname(safeext.len, suffix);
	if (stat(qmailname.s, &st) == 0)
		return 1;
	if (absent(errno))
		return 0;
	finish(111, "Unable to stat %s: %s. " TEMP, qmailname.s,
	       strerror(errno));
}

/* the envelope sender of forwarded copies, as dot-qmail(5) says */
static void
make_newsender(void)
{
	int owner = *sender && strcmp(sender, "#@[]") && qmail_exists("-owner");

	if (!owner) {
		if (str_copys(&newsender, sender) == -1)
			nomem();
	} else if (str_copys(&newsender, local) == -1 ||
	           str_cats(&newsender, "-owner") == -1) {
		nomem();
	} else if (qmail_exists("-owner-default")) {
		if (str_cats(&newsender, "-@") == -1 ||
		    str_cats(&newsender, host) == -1 ||
		    str_cats(&newsender, "-@[]") == -1)
			nomem();
	} else if (str_catc(&newsender, '@') == -1 ||
	           str_cats(&newsender, host) == -1) {
		nomem();
	}
	if (str_0(&newsender) == -1)
		nomem();
}

static void
make_safeext(void)
{
	size_t i;

	if (strchr(ext, '/'))
		finish(100, "Sorry, no mailbox here by that name. (#5.1.1)");
	if (str_copys(&safeext, ext) == -1 || str_0(&safeext) == -1)
		nomem();
	for (i = 0; i < safeext.len; i++) {
		char c = safeext.s[i];

		if (c >= 'A' && c <= 'Z')
			safeext.s[i] = (char)(c - 'A' + 'a');
		else if (c == '.')
			safeext.s[i] = ':';
	}
}

/* the whole of fd into out, at most QMAIL_MAX bytes */
static void
read_qmail(int fd, str *out)
{
	for (;;) {
		ssize_t r;

		if (out->len > QMAIL_MAX)
			finish(111,
			       "Uh-oh: %s is larger than %d bytes. (#4.7.0)",
			       qmailname.s, QMAIL_MAX);
		if (str_readyplus(out, 8192) == -1)
			nomem();
		r = read(fd, out->s + out->len, out->a - out->len);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			finish(111, "Unable to read %s: %s. " TEMP, qmailname.s,
			       strerror(errno));
		}
		out->len += (size_t)r;
	}
	close(fd);
}

/* ---- the instructions ---- */

static const char *
envnoathost(void)
{
	static str h = STR_INIT;

	if (!h.len) {
		if (paths_setup_control(root_dir(0)) == -1)
			nomem();
		if (ctl_line("envnoathost", &h) < 0)
			finish(111,
			       "Unable to read control/envnoathost: %s. " TEMP,
			       strerror(errno));
	}
	return h.s;
}

/* a forward address without '@', qualified with envnoathost */
static const char *
qualify(const char *a)
{
	str full = STR_INIT;

	if (str_copys(&full, a) == -1 || str_catc(&full, '@') == -1 ||
	    str_cats(&full, envnoathost()) == -1 || str_0(&full) == -1)
		nomem();
	return full.s; /* kept: it is never freed */
}

/* every line of cmds into instrs; nothing is delivered yet */
static void
parse(const str *cmds, int forwardonly)
{
	int r = dotqmail_parse(&instrs, cmds->s, cmds->len, forwardonly);
	size_t i;

	/* forwards without '@' get envnoathost in the order of the file,
	 * before a mistake further down is reported: when one comes above
	 * the mistake, an unreadable control/envnoathost is what is
	 * reported, as when each line was acted on as soon as it was read */
	for (i = 0; i < instrs.n; i++)
		if (instrs.v[i].type == DOTQMAIL_FORWARD &&
		    !strchr(instrs.v[i].arg, '@'))
			instrs.v[i].arg = qualify(instrs.v[i].arg);
	if (r == DOTQMAIL_ENOMEM)
		nomem();
	if (r != DOTQMAIL_OK)
		finish(111, "Uh-oh: %s. %s", dotqmail_strerror(r),
		       r == DOTQMAIL_EBLANK ? "(#4.2.1)" : "(#4.7.0)");
}

/* ---- Maildir ---- */

/* gethostname() with '/' and ':' (and anything odd) as \ooo */
static void
maildir_host(char *out, size_t size)
{
	char h[256];
	size_t o = 0, i;

	if (gethostname(h, sizeof h - 1) == -1 || !h[0])
		strcpy(h, "localhost");
	h[sizeof h - 1] = 0;
	for (i = 0; h[i] && o + 5 < size; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c == '/' || c == ':' || c == '\\' || c <= 32 || c >= 127)
			o += (size_t)snprintf(out + o, size - o, "\\%03o", c);
		else
			out[o++] = (char)c;
	}
	out[o] = 0;
}

/* create tmp/UNIQUE exclusively; its name is left in tmp_name */
static int
maildir_create(int tfd)
{
	static unsigned seq;
	char h[HOST_MAX + 1];
	int tries, fd;

	maildir_host(h, sizeof h);
	for (tries = 0; tries < 5; tries++) {
		struct timeval tv;

		gettimeofday(&tv, 0);
		snprintf(tmp_name, sizeof tmp_name, "%lld.M%06ldP%ldQ%u.%s",
		         (long long)tv.tv_sec, (long)tv.tv_usec, (long)getpid(),
		         ++seq, h);
		tmp_dirfd = tfd;
		fd = openat(tfd, tmp_name,
		            O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		                O_NOCTTY | O_CLOEXEC,
		            0600);
		if (fd != -1) {
			tmp_active = 1;
			return fd;
		}
		if (errno != EEXIST)
			break;
	}
	return -1;
}

static int
open_subdir(int dfd, const char *dir, const char *sub)
{
	int fd =
	    openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd == -1)
		finish(111, "Unable to open %s%s: %s. (#4.2.1)", dir, sub,
		       strerror(errno));
	return fd;
}

static _Noreturn void
maildir_failed(const char *what)
{
	finish(111, "Unable to %s maildir file: %s. " TEMP, what,
	       strerror(errno));
}

static void
maildir(const char *dir)
{
	int dfd, tfd, nfd, fd;

	rewind_message();
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1)
		finish(111, "Unable to open maildir %s: %s. (#4.2.1)", dir,
		       strerror(errno));
	tfd = open_subdir(dfd, dir, "tmp");
	nfd = open_subdir(dfd, dir, "new");
	set_alarm(WRITE_TIMEOUT, "Timeout on maildir delivery. " TEMP);
	fd = maildir_create(tfd);
	if (fd == -1)
		maildir_failed("create");
	o_init(&ob, fd);
	o_put(&ob, rpline.s, rpline.len);
	o_put(&ob, dtline.s, dtline.len);
	copy_message(&ob);
	o_flush(&ob);
	if ((errno = ob.err) != 0)
		maildir_failed("write");
	if (fsync(fd) == -1 || close(fd) == -1)
		maildir_failed("sync");
	new_dirfd = nfd;
	if (linkat(tfd, tmp_name, nfd, tmp_name, 0) == -1)
		maildir_failed("link");
	new_active = 1;
	if (fsync(nfd) == -1)
		maildir_failed("sync");
	unlinkat(tfd, tmp_name, 0);
	tmp_active = new_active = 0;
	alarm(0);
	close(tfd);
	close(nfd);
	close(dfd);
	add_done(dir, strlen(dir));
}

/* ---- mbox ---- */

/* lines matching ^>*From  get one more '>' */
struct fromq {
	int bol;   /* at the start of a line, prefix undecided */
	size_t gt; /* '>' seen in the prefix */
	size_t fi; /* bytes of "From " matched */
	char last; /* last byte written */
};

static void
q_prefix(struct out *o, struct fromq *q, int quote)
{
	size_t k = q->gt + (size_t)quote;

	while (k--)
		o_put(o, ">", 1);
	o_put(o, "From ", q->fi);
	if (q->gt || quote)
		q->last = '>';
	if (q->fi)
		q->last = "From "[q->fi - 1];
	q->gt = q->fi = 0;
	q->bol = 0;
}

static void
q_feed(struct out *o, struct fromq *q, const char *b, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (!q->bol) {
			const char *nl = memchr(b + i, '\n', n - i);
			size_t k = nl ? (size_t)(nl - (b + i)) + 1 : n - i;

			o_put(o, b + i, k);
			i += k;
			q->last = b[i - 1];
			q->bol = nl != 0;
		} else if (!q->fi && b[i] == '>') {
			q->gt++;
			i++;
		} else if (b[i] == "From "[q->fi]) {
			i++;
			if (++q->fi == 5)
				q_prefix(o, q, 1);
		} else {
			q_prefix(o, q, 0);
		}
	}
}

static void
mbox_lock(int fd, const char *fn)
{
	struct flock fl;
	int r, e;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	lock_expired = 0;
	lock_wait = 1;
	alarm(LOCK_TIMEOUT);
	do
		r = fcntl(fd, F_SETLKW, &fl);
	while (r == -1 && errno == EINTR && !lock_expired);
	e = errno;
	alarm(0);
	lock_wait = 0;
	if (r == -1 && lock_expired)
		finish(111,
		       "File has been locked for %d seconds straight. " TEMP,
		       LOCK_TIMEOUT);
	if (r == -1)
		finish(111, "Unable to lock %s: %s. " TEMP, fn, strerror(e));
}

static int
mbox_open(const char *fn)
{
	struct stat st;
	int fd = open(fn,
	              O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
	                  O_NOCTTY | O_CLOEXEC,
	              0600);

	if (fd == -1)
		finish(111, "Unable to open %s: %s. (#4.2.1)", fn,
		       strerror(errno));
	if (fstat(fd, &st) == -1)
		finish(111, "Unable to stat %s: %s. " TEMP, fn,
		       strerror(errno));
	if (!S_ISREG(st.st_mode))
		finish(111,
		       "Unable to deliver to %s: not a regular file. "
		       "(#4.2.1)",
		       fn);
	if (fcntl(fd, F_SETFL, O_WRONLY | O_APPEND) == -1)
		finish(111, "Unable to set up %s: %s. " TEMP, fn,
		       strerror(errno));
	return fd;
}

static void
mbox(const char *fn)
{
	static char buf[65536];
	struct fromq q = {1, 0, 0, '\n'};
	struct stat st;
	ssize_t r;
	int fd;

	rewind_message();
	fd = mbox_open(fn);
	mbox_lock(fd, fn);
	if (fstat(fd, &st) == -1)
		finish(111, "Unable to stat %s: %s. " TEMP, fn,
		       strerror(errno));
	mbox_len = st.st_size;
	mbox_fd = fd; /* from here on a failure truncates it back */
	set_alarm(WRITE_TIMEOUT, "Timeout on mbox delivery. " TEMP);
	o_init(&ob, fd);
	o_put(&ob, ufline.s, ufline.len);
	o_put(&ob, rpline.s, rpline.len);
	o_put(&ob, dtline.s, dtline.len);
	while (!ob.err && (r = read_message(buf, sizeof buf)) != 0) {
		if (r < 0)
			read_failed();
		q_feed(&ob, &q, buf, (size_t)r);
	}
	if (q.bol && (q.gt || q.fi))
		q_prefix(&ob, &q, 0);
	if (q.last != '\n')
		o_put(&ob, "\n", 1);
	o_put(&ob, "\n", 1);
	o_flush(&ob);
	if (ob.err || fsync(fd) == -1)
		finish(111, "Unable to write %s: %s. " TEMP, fn,
		       strerror(ob.err ? ob.err : errno));
	alarm(0);
	mbox_fd = -1;
	close(fd);
	add_done(fn, strlen(fn));
}

/* ---- programs ---- */

static _Noreturn void
program_child(const char *cmd, int wfd)
{
	char *argv[4];
	sigset_t none;

	argv[0] = "sh";
	argv[1] = "-c";
	argv[2] = (char *)cmd;
	argv[3] = 0;
	setpgid(0, 0);
	if (dup2(wfd, 1) == -1 || dup2(wfd, 2) == -1)
		_exit(111);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGXFSZ, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	execve("/bin/sh", argv, envp);
	dprintf(2, "Unable to run /bin/sh: %s. " TEMP "\n", strerror(errno));
	_exit(111);
}

/* read what is there; keep at most OUTPUT_MAX bytes; 0 at EOF */
static int
drain(int fd, str *out)
{
	char buf[4096];

	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);

		if (r == 0)
			return 0;
		if (r < 0)
			return errno == EINTR ? 1 : errno == EAGAIN ? 1 : 0;
		if (out->len < OUTPUT_MAX) {
			size_t k = (size_t)r;

			if (k > OUTPUT_MAX - out->len)
				k = OUTPUT_MAX - out->len;
			if (str_catb(out, buf, k) == -1)
				nomem();
		}
	}
}

/* wait for the program, reading its output meanwhile; its status */
static int
program_wait(pid_t pid, int rfd, str *out)
{
	int status, reading = 1;
	char junk[64];

	fcntl(rfd, F_SETFL, O_NONBLOCK);
	for (;;) {
		struct pollfd p[2];
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (w == -1 && errno != EINTR)
			finish(111, "Unable to wait for program: %s. " TEMP,
			       strerror(errno));
		p[0].fd = reading ? rfd : -1;
		p[0].events = POLLIN;
		p[1].fd = selfpipe[0];
		p[1].events = POLLIN;
		if (poll(p, 2, -1) == -1 && errno != EINTR)
			finish(111, "Unable to poll: %s. " TEMP,
			       strerror(errno));
		if (reading && p[0].revents)
			reading = drain(rfd, out);
		if (p[1].revents)
			while (read(selfpipe[0], junk, sizeof junk) > 0)
				;
	}
	if (reading)
		drain(rfd, out);
	close(rfd);
	return status;
}

static int
hard_error(int code)
{
	switch (code) {
	case 64:
	case 65:
	case 70:
	case 76:
	case 77:
	case 78:
	case 100:
	case 112:
		return 1;
	}
	return 0;
}

/* the program's output, printable, without trailing blanks */
static size_t
program_said(char *text, size_t size, const str *out)
{
	size_t n = printable(text, size, out->s ? out->s : "", out->len);

	while (n && text[n - 1] == ' ')
		text[--n] = 0;
	return n;
}

/* the program's words, or ours; a (#x.y.z) status at the end */
static _Noreturn void
program_failed(int code, const str *out, const char *why, const char *st)
{
	char text[OUTPUT_MAX + 8];
	size_t n = program_said(text, sizeof text, out);

	if (!n)
		finish(code, "%s %s", why, st);
	if (strstr(text, "(#"))
		finish(code, "%s", text);
	finish(code, "%s %s", text, st);
}

static void
program_done(const str *out)
{
	char text[OUTPUT_MAX + 8];
	size_t n = program_said(text, sizeof text, out);

	add_done("program", 7);
	if (n && (str_cats(&done, " (") == -1 ||
	          str_catb(&done, text, n) == -1 || str_catc(&done, ')') == -1))
		nomem();
}

/* run |cmd; 1 if it asked to skip the remaining lines (exit 99) */
static int
program(const char *cmd)
{
	str out = STR_INIT;
	char why[64];
	int p[2], status, code;
	pid_t pid;

	rewind_message();
	if (pipe2(p, O_CLOEXEC) == -1)
		finish(111, "Unable to create a pipe: %s. " TEMP,
		       strerror(errno));
	pid = fork();
	if (pid == -1)
		finish(111, "Unable to fork: %s. " TEMP, strerror(errno));
	if (pid == 0)
		program_child(cmd, p[1]);
	close(p[1]);
	child = pid;
	set_alarm(PROG_TIMEOUT, "Timeout: the program ran too long. " TEMP);
	status = program_wait(pid, p[0], &out);
	alarm(0);
	child = 0;
	if (!WIFEXITED(status)) {
		snprintf(why, sizeof why, "Program crashed (signal %d).",
		         WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		program_failed(111, &out, why, TEMP);
	}
	code = WEXITSTATUS(status);
	snprintf(why, sizeof why, "Program exited %d.", code);
	if (hard_error(code))
		program_failed(100, &out, why, "(#5.3.0)");
	if (code != 0 && code != 99)
		program_failed(111, &out, why, TEMP);
	program_done(&out);
	str_free(&out);
	return code == 99;
}

/* ---- forwarding ---- */

static const char *
qq_text(int code)
{
	switch (code) {
	case 11:
		return "address too long";
	case 31:
		return "message refused";
	case 51:
		return "out of memory";
	case 52:
		return "timeout";
	case 53:
		return "write error or disk full";
	case 54:
		return "unable to read the message or envelope";
	case 55:
		return "unable to read a control file";
	case 81:
		return "internal bug";
	case 91:
		return "envelope format error";
	}
	return code >= 61 && code <= 66 ? "trouble in the queue"
	                                : "unknown error";
}

static _Noreturn void
forward_child(const char *prog, int m, int e, int id)
{
	char *argv[2];

	argv[0] = (char *)prog;
	argv[1] = 0;
	if (id == 3)
		fcntl(id, F_SETFD, 0);
	if (dup2(m, 0) == -1 || dup2(e, 1) == -1 ||
	    (id != 3 && dup2(id, 3) == -1))
		_exit(QQ_BUG);
	setenv("MOAT_IDFD", "3", 1);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	signal(SIGXFSZ, SIG_DFL);
	execv(prog, argv);
	_exit(120); /* cannot run it: a temporary failure */
}

/* the message (after our Delivered-To) and the envelope into the pipes */
static void
forward_feed(int m, int e, size_t last)
{
	str env = STR_INIT;
	size_t i;

	o_init(&ob, m);
	o_put(&ob, dtline.s, dtline.len);
	copy_message(&ob);
	o_flush(&ob);
	close(m);
	if (env_add(&env, 'F', newsender.s, newsender.len) == -1)
		nomem();
	for (i = 0; i < last; i++)
		if (instrs.v[i].type == DOTQMAIL_FORWARD &&
		    env_add(&env, 'T', instrs.v[i].arg,
		            strlen(instrs.v[i].arg)) == -1)
			nomem();
	if (str_catc(&env, 0) == -1)
		nomem();
	if (!ob.err && io_writeall(e, env.s, env.len, 0) == -1)
		ob.err = errno;
	close(e);
	str_free(&env);
}

/* what moat-queue said the message id is, or "" */
static void
forward_id(int fd, char *id, size_t size)
{
	ssize_t n;

	do
		n = read(fd, id, size - 1);
	while (n < 0 && errno == EINTR);
	id[n > 0 ? n : 0] = 0;
	id[strcspn(id, "\n")] = 0;
	close(fd);
}

static void
forward_report(size_t last, const char *id)
{
	size_t i;

	add_done("forward", 7);
	for (i = 0; i < last && done.len <= REPORT_MAX; i++)
		if (instrs.v[i].type == DOTQMAIL_FORWARD &&
		    (str_catc(&done, ' ') == -1 ||
		     str_cats(&done, instrs.v[i].arg) == -1))
			nomem();
	if (*id && (str_cats(&done, " (queued as ") == -1 ||
	            str_cats(&done, id) == -1 || str_catc(&done, ')') == -1))
		nomem();
}

/* every forward address among the first `last` instructions, at once */
static void
forward(size_t last)
{
	const char *prog = getenv("QMAILQUEUE");
	str path = STR_INIT;
	int m[2], e[2], id[2], status, code;
	char qid[32];
	pid_t pid;

	if (!prog || !*prog) {
		if (bin_path(&path, "moat-queue") == -1)
			finish(111, "Unable to find moat-queue. " TEMP);
		prog = path.s;
	}
	rewind_message();
	if (pipe2(m, O_CLOEXEC) == -1 || pipe2(e, O_CLOEXEC) == -1 ||
	    pipe2(id, O_CLOEXEC) == -1)
		finish(111, "Unable to create a pipe: %s. " TEMP,
		       strerror(errno));
	pid = fork();
	if (pid == -1)
		finish(111, "Unable to fork: %s. " TEMP, strerror(errno));
	if (pid == 0)
		forward_child(prog, m[0], e[0], id[1]);
	close(m[0]);
	close(e[0]);
	close(id[1]);
	child = pid;
	set_alarm(QUEUE_TIMEOUT, "Timeout on forwarding. " TEMP);
	forward_feed(m[1], e[1], last);
	forward_id(id[0], qid, sizeof qid);
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			finish(111, "Unable to wait for moat-queue: %s. " TEMP,
			       strerror(errno));
	alarm(0);
	child = 0;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : QQ_BUG;
	if (code == 11 || code == 31 || code == 91)
		finish(100, "Unable to forward message: %s. (#5.3.0)",
		       qq_text(code));
	if (code)
		finish(111, "Unable to forward message: %s. " TEMP,
		       qq_text(code));
	if (ob.err)
		finish(111, "Unable to forward message: %s. " TEMP,
		       strerror(ob.err));
	str_free(&path);
	forward_report(last, qid);
}

/* ---- the run ---- */

static void
show(void)
{
	static const char *word[] = {"maildir ", "mbox ", "program ",
	                             "forward "};
	size_t i;

	for (i = 0; i < instrs.n; i++) {
		str l = STR_INIT;

		if (str_copys(&l, word[instrs.v[i].type]) == -1 ||
		    str_cats(&l, instrs.v[i].arg) == -1)
			nomem();
		say(l.s, l.len);
		str_free(&l);
	}
	_exit(0);
}

static void
deliver(void)
{
	size_t i, nf = 0;

	for (i = 0; i < instrs.n; i++) {
		const struct dotqmail_instr *in = &instrs.v[i];
		int stop = 0;

		if (in->type == DOTQMAIL_MAILDIR)
			maildir(in->arg);
		else if (in->type == DOTQMAIL_MBOX)
			mbox(in->arg);
		else if (in->type == DOTQMAIL_PROGRAM)
			stop = program(in->arg);
		else
			nf++;
		if (stop) {
			i++;
			break;
		}
	}
	if (nf)
		forward(i);
	if (!done.len)
		finish(0, "delivered nowhere: no delivery instructions");
	finish(0, "delivered to %.*s", (int)done.len, done.s);
}

static _Noreturn void
usage(void)
{
	finish(100, "usage: moat-local [-nN] user homedir local dash ext "
	            "domain sender defaultdelivery");
}

/* options as qmail-local takes them; returns the first argument */
static int
options(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			return i + 1;
		if (a[0] != '-' || !a[1] || a[strspn(a + 1, "nN") + 1])
			return i;
		for (a++; *a; a++)
			doit = *a == 'N';
	}
	return i;
}

static void
signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_alarm; /* no SA_RESTART: it ends a lock wait */
	sigaction(SIGALRM, &sa, 0);
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, 0);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN); /* a too large file is a write error */
	if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) == -1)
		finish(111, "Unable to create a pipe: %s. " TEMP,
		       strerror(errno));
}

int
main(int argc, char **argv)
{
	str cmds = STR_INIT;
	int fd = -1, xbit = 0, i;

	log_init("moat-local");
	umask(077);
	if (getuid() == 0 || geteuid() == 0)
		finish(111, "Refusing to deliver as root. " TEMP);
	i = options(argc, argv);
	if (argc - i != 8)
		usage();
	user = argv[i];
	homedir = argv[i + 1];
	local = argv[i + 2];
	dash = argv[i + 3];
	ext = argv[i + 4];
	host = argv[i + 5];
	sender = argv[i + 6];
	defaultdelivery = argv[i + 7];
	if (homedir[0] != '/' || strchr(dash, '/'))
		usage();
	signals();
	if (chdir(homedir) == -1)
		finish(111, "Unable to switch to %s: %s. " TEMP, homedir,
		       strerror(errno));
	check_home();
	make_lines();
	if (doit)
		check_loop();
	make_safeext();
	if (!qmail_search(&fd, &xbit) && *dash)
		finish(100, "Sorry, no mailbox here by that name. (#5.1.1)");
	if (fd != -1)
		read_qmail(fd, &cmds);
	make_newsender();
	if (!cmds.len) {
		if (str_copys(&cmds, defaultdelivery) == -1)
			nomem();
		xbit = 0;
	}
	parse(&cmds, xbit);
	if (!doit)
		show();
	make_env();
	deliver();
	return 0;
}
