/*
 * moat-tcpd: accept TCP connections and run one program per connection.
 *
 *   moat-tcpd [-u user] [-h] [-F] [-c maxconn] [-i maxperip] ADDR:PORT... \
 *       -- program [arg...]
 *
 * Listens on every ADDR:PORT given (127.0.0.1:25, [::1]:25; IPv6 sockets
 * are IPv6-only) and on any listening sockets handed over by systemd's
 * socket activation protocol (LISTEN_FDS, LISTEN_PID; fds from 3), which is
 * also how `moat run` passes sockets it bound before giving up root.  For
 * each connection it forks a child that puts the socket on fds 0 and 1,
 * sets PROTO (TCP or TCP6), TCPLOCALIP, TCPLOCALPORT, TCPREMOTEIP,
 * TCPREMOTEPORT, TCPREMOTEHOST (with -h, only when the reverse name
 * resolves back to the client's address) and RELAYCLIENT="" (only for a
 * client that control/relayclients lists), and runs the program.
 *
 * -F: the program is a fork server (forkserver.h; moat-smtpd is one): it is
 * started once, and each connection is handed to it to fork a fresh copy
 * of itself, which saves an exec, the dynamic loader and libc's start-up
 * per connection.  The children become moat-tcpd's when the server dies
 * (moat-tcpd is their subreaper); the server is started again at most once
 * a second, and meanwhile connections fork and exec as without -F.  A
 * server serves FS_MAX_USE connections, or until SIGHUP, and is then
 * replaced: its children share its address space layout and stack canary,
 * and a new program (an upgrade) should be taken up.  With -h the name
 * lookup needs a child of moat-tcpd, so -F is not used.
 *
 * Limits: at most maxconn children in all and maxperip from one address
 * (relay clients are exempt from the latter); an excess connection gets a
 * 421 reply and is closed without a fork.  The defaults come from
 * control/concurrencyincoming and control/concurrencyperip.
 *
 * Runs as: root only to bind, then the user of -u (supplementary groups,
 * group and user are all switched, and checked) before any control file is
 * read or any connection accepted; run as root without -u it warns.  Never
 * parses network input itself; the reverse lookup of -h is done in the
 * child, after the switch.
 *
 * Reads: ROOT/control/ (see paths.h): me, relayclients,
 * concurrencyincoming, concurrencyperip; again on SIGHUP.
 * Writes: one log line per connection start and end on stderr.
 * Signals: SIGHUP reloads the control files; SIGTERM or SIGINT stops
 * accepting, sends SIGTERM to the children, waits up to SHUTDOWN_WAIT
 * seconds for them and exits 0.
 * Exit codes: 0 after SIGTERM/SIGINT, 100 usage error (or an unknown -u
 * user), 111 system error (cannot bind, cannot switch user, control file
 * unreadable at start).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "fsclient.h"
#include "ipmatch.h"
#include "log.h"
#include "paths.h"
#include "str.h"

#define USAGE                                                                  \
	"usage: moat-tcpd [-u user] [-h] [-F] [-c maxconn] [-i maxperip] "     \
	"ADDR:PORT... -- program [arg...]"
#define LIMIT_MAX 65536      /* largest -c or -i */
#define LISTEN_FDS_MAX 1024  /* most sockets taken from systemd */
#define ACCEPT_BURST 32      /* accepts per listener per wake-up */
#define ACCEPT_PAUSE_MS 1000 /* rest after EMFILE and the like */
#define SHUTDOWN_WAIT 5      /* seconds children get after SIGTERM */
#define HOSTNAME_MAX 253
#define FS_MAX_USE 100       /* connections, then a fresh fork server */

struct listener {
	int fd;
	char name[IP_FMT + 8]; /* [addr]:port */
};

struct child {
	pid_t pid;
	unsigned char ip[IP_LEN];
};

struct config {
	unsigned long long maxconn, maxperip;
	struct ipnet *relay;
	size_t nrelay;
	str busy; /* the 421 reply */
};

static struct listener *lis;
static size_t nlis;
static struct child *kids;
static size_t nkids, akids;
static struct config cfg;
static unsigned long long opt_c, opt_i; /* 0: from control */
static int opt_h, opt_F;
static struct fsc fs; /* -F: the fork server */
static char **prog;

static int sigpipe[2];
static sigset_t handled, oldmask;
static volatile sig_atomic_t got_chld, got_hup, got_term;

_Noreturn static void
usage(const char *why)
{
	char esc[512];

	log_escape(esc, sizeof esc, why, strlen(why));
	fprintf(stderr, "%s: fatal: %s\n%s\n", log_prog(), esc, USAGE);
	exit(100);
}

/* addresses: "a.b.c.d:port" or "[v6]:port" */
static void
fmt_ipport(char *buf, const unsigned char ip[IP_LEN], unsigned port)
{
	char a[IP_FMT];

	ip_fmt(a, ip);
	snprintf(buf, IP_FMT + 8, ip_is4(ip) ? "%s:%u" : "[%s]:%u", a, port);
}

/* --- signals ------------------------------------------------------------ */

static void
on_signal(int sig)
{
	int e = errno;
	ssize_t r;

	if (sig == SIGCHLD)
		got_chld = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
	r = write(sigpipe[1], "", 1); /* full pipe: a wake-up is pending */
	(void)r;
	errno = e;
}

static void
setup_signals(void)
{
	struct sigaction sa;
	int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT};
	size_t i;

	if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) == -1)
		die_sys(111, "cannot create pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&handled);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		sigaddset(&handled, sigs[i]);
		sigaddset(&sa.sa_mask, sigs[i]);
	}
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, 0) == -1)
			die_sys(111, "cannot catch signal %d", sigs[i]);
	sa.sa_handler = SIG_IGN; /* replies go out with MSG_NOSIGNAL */
	sigaction(SIGPIPE, &sa, 0);
	sigprocmask(SIG_SETMASK, 0, &oldmask);
	sigdelset(&oldmask, SIGCHLD); /* the loop needs these */
	sigdelset(&oldmask, SIGHUP);
	sigdelset(&oldmask, SIGTERM);
	sigdelset(&oldmask, SIGINT);
	sigprocmask(SIG_SETMASK, &oldmask, 0);
}

static void
drain_sigpipe(void)
{
	char buf[64];

	while (read(sigpipe[0], buf, sizeof buf) > 0)
		;
}

/* --- listeners ---------------------------------------------------------- */

static void
add_listener(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	unsigned char ip[IP_LEN];
	unsigned port;
	struct listener *n;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		die_sys(111, "cannot get the address of fd %d", fd);
	if (ip_from_sa((struct sockaddr *)&ss, len, ip, &port) == -1)
		die(111, "fd %d is not an IPv4 or IPv6 socket", fd);
	n = realloc(lis, (nlis + 1) * sizeof *lis);
	if (!n)
		die(111, "out of memory");
	lis = n;
	lis[nlis].fd = fd;
	fmt_ipport(lis[nlis].name, ip, port);
	nlis++;
}

/* ADDR:PORT into a socket address; 0 or -1 */
static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon, *h = s, *p;
	size_t hlen;
	unsigned long port = 0;
	int v6 = s[0] == '[';

	if (v6) {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof host)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = 0;
	p = colon + 1;
	if (!*p || strlen(p) > 5 || p[0] == '0')
		return -1;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return -1;
	memset(ss, 0, sizeof *ss);
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return -1;
		*len = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -1;
		*len = sizeof *s4;
	}
	return 0;
}

static void
bind_listen(const char *addr, const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		die_sys(111, "cannot create a socket for %s", addr);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == -1)
		die_sys(111, "cannot set SO_REUSEADDR on %s", addr);
	if (ss->ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) == -1)
		die_sys(111, "cannot set IPV6_V6ONLY on %s", addr);
	if (bind(fd, (const struct sockaddr *)ss, len) == -1)
		die_sys(111, "cannot bind %s", addr);
	if (listen(fd, SOMAXCONN) == -1)
		die_sys(111, "cannot listen on %s", addr);
	add_listener(fd);
}

/* a decimal environment variable, or -1 */
static long
env_num(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v || *v < '0' || *v > '9')
		return -1;
	errno = 0;
	n = strtol(v, &end, 10);
	return errno || *end ? -1 : n;
}

/* one socket handed over by LISTEN_FDS */
static void
take_fd(int fd)
{
	int yes = 0, fl;
	socklen_t l = sizeof yes;
	struct stat st;

	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &yes, &l) == -1 || !yes)
		die(111, "fd %d from LISTEN_FDS is not a listening socket", fd);
	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) == -1)
		die_sys(111, "cannot set flags on fd %d", fd);
	add_listener(fd);
}

/* sockets from systemd (or `moat run`); the variables are not passed on */
static void
take_listen_fds(void)
{
	long n = env_num("LISTEN_FDS"), i;

	if (getenv("LISTEN_FDS")) {
		if (env_num("LISTEN_PID") != (long)getpid())
			log_msg("warning: LISTEN_PID is not this process; "
			        "ignoring LISTEN_FDS");
		else if (n < 0 || n > LISTEN_FDS_MAX)
			die(111, "LISTEN_FDS is not a number up to %d",
			    LISTEN_FDS_MAX);
		else
			for (i = 0; i < n; i++)
				take_fd(3 + (int)i);
	}
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
}

/* --- privileges --------------------------------------------------------- */

static void
drop_root(const char *user)
{
	struct passwd *pw;

	if (!user) {
		if (geteuid() == 0)
			log_msg("warning: running as root without -u: "
			        "the program will run as root");
		return;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		if (errno)
			die_sys(111, "cannot look up user %s", user);
		die(100, "unknown user %s", user);
	}
	if (pw->pw_uid == 0)
		die(100, "refusing to run the program as root (-u %s)", user);
	if (geteuid() != 0) {
		if (geteuid() != pw->pw_uid)
			die(111,
			    "cannot switch to user %s: not running as root",
			    user);
		return;
	}
	if (initgroups(user, pw->pw_gid) == -1)
		die_sys(111, "cannot set the groups of %s", user);
	if (setgid(pw->pw_gid) == -1)
		die_sys(111, "cannot set group %lu", (unsigned long)pw->pw_gid);
	if (setuid(pw->pw_uid) == -1)
		die_sys(111, "cannot set user %s", user);
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || getegid() != pw->pw_gid ||
	    setuid(0) != -1)
		die(111, "switching to user %s did not take", user);
}

/* --- configuration ------------------------------------------------------ */

static void
config_free(struct config *c)
{
	free(c->relay);
	str_free(&c->busy);
	memset(c, 0, sizeof *c);
}

static int
config_fail(const char *name, struct config *n)
{
	log_sys("cannot read %s/%s", ctl_dir(), name);
	config_free(n);
	return -1;
}

/* a limit from the command line or control file name; 0 or -1 */
static int
limit(const char *name, unsigned long long opt, unsigned long long *out)
{
	if (opt) {
		*out = opt;
		return 0;
	}
	if (ctl_num(name, out) == -1)
		return -1;
	if (*out < 1 || *out > LIMIT_MAX) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}

/* read the control files into cfg; on failure cfg is left alone */
static int
load_config(void)
{
	struct config n = {0, 0, 0, 0, STR_INIT};
	str me = STR_INIT, items = STR_INIT;
	size_t count, i, off = 0;

	if (limit("concurrencyincoming", opt_c, &n.maxconn) == -1)
		return config_fail("concurrencyincoming", &n);
	if (limit("concurrencyperip", opt_i, &n.maxperip) == -1)
		return config_fail("concurrencyperip", &n);
	if (ctl_line("me", &me) == -1)
		return config_fail("me", &n);
	if (str_copys(&n.busy, "421 4.7.0 ") == -1 ||
	    str_catb(&n.busy, me.s, me.len) == -1 ||
	    str_cats(&n.busy, " too many connections, try again later\r\n") ==
	        -1) {
		str_free(&me);
		return config_fail("me", &n);
	}
	str_free(&me);
	if (ctl_list("relayclients", &items, &count) == -1) {
		str_free(&items);
		return config_fail("relayclients", &n);
	}
	n.relay = calloc(count ? count : 1, sizeof *n.relay);
	if (!n.relay) {
		str_free(&items);
		return config_fail("relayclients", &n);
	}
	for (i = 0; i < count; i++) {
		const char *it = items.s + off;
		size_t len = strlen(it);

		off += len + 1;
		if (ipnet_parse(it, len, &n.relay[n.nrelay]) == 0)
			n.nrelay++;
		else
			log_msg("warning: %s/relayclients: ignoring %s: not an "
			        "address or prefix",
			        ctl_dir(), it);
	}
	str_free(&items);
	config_free(&cfg);
	cfg = n;
	return 0;
}

/* --- children ----------------------------------------------------------- */

static void
kid_ended(pid_t pid, int status)
{
	size_t i;

	for (i = 0; i < nkids; i++)
		if (kids[i].pid == pid) {
			kids[i] = kids[--nkids];
			log_msg("end pid %ld status %d", (long)pid, status);
			return;
		}
	/* as a subreaper we also reap what our children left behind */
}

/* children ours, and with -F those the dead fork server left us */
static void
reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (!fsc_reaped(&fs, pid, status))
			kid_ended(pid, status);
	}
}

static size_t
count_ip(const unsigned char ip[IP_LEN])
{
	size_t i, n = 0;

	for (i = 0; i < nkids; i++)
		if (!memcmp(kids[i].ip, ip, IP_LEN))
			n++;
	return n;
}

static int
kids_room(void)
{
	struct child *n;
	size_t want;

	if (nkids < akids)
		return 0;
	if (size_add(&want, akids, akids / 2 + 16) == -1 ||
	    want > SIZE_MAX / sizeof *kids)
		return -1;
	n = realloc(kids, want * sizeof *kids);
	if (!n)
		return -1;
	kids = n;
	akids = want;
	return 0;
}

static void
setenv_or_die(const char *name, const char *value)
{
	if (setenv(name, value, 1) == -1)
		die_sys(111, "cannot set %s", name);
}

/* -h: the client's name if it resolves back to the client's address */
static void
remote_host(const struct sockaddr *sa, socklen_t len,
            const unsigned char ip[IP_LEN])
{
	char name[NI_MAXHOST];
	struct addrinfo hints, *res, *r;
	unsigned char rip[IP_LEN];
	size_t i, n;
	int ok = 0;

	if (getnameinfo(sa, len, name, sizeof name, 0, 0, NI_NAMEREQD) != 0)
		return;
	n = strlen(name);
	if (n == 0 || n > HOSTNAME_MAX)
		return;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(name, 0, &hints, &res) != 0)
		return;
	for (r = res; r && !ok; r = r->ai_next)
		if (ip_from_sa(r->ai_addr, r->ai_addrlen, rip, 0) == 0 &&
		    !memcmp(rip, ip, IP_LEN))
			ok = 1;
	freeaddrinfo(res);
	if (ok)
		setenv_or_die("TCPREMOTEHOST", name);
}

static void
signals_default(void)
{
	struct sigaction sa;
	int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGPIPE};
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, 0);
	sigprocmask(SIG_SETMASK, &oldmask, 0); /* pending SIGTERM kills now */
}

_Noreturn static void
run_child(int c, const struct sockaddr_storage *rsa, socklen_t rlen,
          const unsigned char rip[IP_LEN], unsigned rport,
          const unsigned char lip[IP_LEN], unsigned lport, int relay)
{
	char buf[IP_FMT];

	signals_default();
	if (dup2(c, 0) == -1 || dup2(c, 1) == -1)
		die_sys(111, "cannot dup the connection");
	close(c);
	setenv_or_die("PROTO", ip_is4(rip) ? "TCP" : "TCP6");
	ip_fmt(buf, lip);
	setenv_or_die("TCPLOCALIP", buf);
	snprintf(buf, sizeof buf, "%u", lport);
	setenv_or_die("TCPLOCALPORT", buf);
	ip_fmt(buf, rip);
	setenv_or_die("TCPREMOTEIP", buf);
	snprintf(buf, sizeof buf, "%u", rport);
	setenv_or_die("TCPREMOTEPORT", buf);
	if (relay)
		setenv_or_die("RELAYCLIENT", "");
	if (opt_h)
		remote_host((const struct sockaddr *)rsa, rlen, rip);
	execvp(prog[0], prog);
	die_sys(111, "cannot run %s", prog[0]);
}

/* --- the fork server (-F) ----------------------------------------------- */

/* the variables of one connection, as a fork server request */
static int
fs_request(str *v, const unsigned char rip[IP_LEN], unsigned rport,
           const unsigned char lip[IP_LEN], unsigned lport, int relay)
{
	char buf[IP_FMT], port[8];

	v->len = 0;
	ip_fmt(buf, rip);
	snprintf(port, sizeof port, "%u", rport);
	if (fsc_add(v, "PROTO", ip_is4(rip) ? "TCP" : "TCP6") == -1 ||
	    fsc_add(v, "TCPREMOTEIP", buf) == -1 ||
	    fsc_add(v, "TCPREMOTEPORT", port) == -1)
		return -1;
	ip_fmt(buf, lip);
	snprintf(port, sizeof port, "%u", lport);
	if (fsc_add(v, "TCPLOCALIP", buf) == -1 ||
	    fsc_add(v, "TCPLOCALPORT", port) == -1 ||
	    (relay && fsc_add(v, "RELAYCLIENT", "") == -1))
		return -1;
	return 0;
}

/* refuse a connection with a 421 reply, without blocking */
static void
refuse(int c, const char *reply, size_t len, const char *from, const char *why)
{
	ssize_t r = send(c, reply, len, MSG_DONTWAIT | MSG_NOSIGNAL);

	(void)r;
	close(c);
	log_msg("refused %s: %s", from, why);
}

#define TEMPFAIL "421 4.3.0 temporary failure, try again later\r\n"

/* accept one connection: 1 done, 0 nothing to accept, -1 pause accepting */
static int
accept_one(int lfd)
{
	struct sockaddr_storage rsa, lsa;
	socklen_t rlen = sizeof rsa, llen = sizeof lsa;
	unsigned char rip[IP_LEN], lip[IP_LEN];
	unsigned rport, lport;
	char from[IP_FMT + 8], to[IP_FMT + 8];
	int c, relay;
	pid_t pid;

	if (got_chld) { /* free the slots of children that are gone */
		got_chld = 0;
		reap();
	}
	c = accept4(lfd, (struct sockaddr *)&rsa, &rlen, SOCK_CLOEXEC);
	if (c == -1) {
		switch (errno) {
		case EAGAIN:
#if EWOULDBLOCK != EAGAIN
		case EWOULDBLOCK:
#endif
			return 0;
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
		case EPERM:
		case ENETDOWN:
		case ENOPROTOOPT:
		case EHOSTDOWN:
		case ENONET:
		case EHOSTUNREACH:
		case EOPNOTSUPP:
		case ENETUNREACH:
			return 1; /* that connection is gone; try the next */
		default:
			log_sys("cannot accept");
			return -1; /* EMFILE, ENOBUFS...: rest, don't spin */
		}
	}
	if (getsockname(c, (struct sockaddr *)&lsa, &llen) == -1 ||
	    ip_from_sa((struct sockaddr *)&rsa, rlen, rip, &rport) == -1 ||
	    ip_from_sa((struct sockaddr *)&lsa, llen, lip, &lport) == -1) {
		log_sys("cannot get the addresses of a connection");
		close(c);
		return 1;
	}
	fmt_ipport(from, rip, rport);
	fmt_ipport(to, lip, lport);
	relay = ipnet_any(cfg.relay, cfg.nrelay, rip);
	if (nkids >= cfg.maxconn) {
		refuse(c, cfg.busy.s, cfg.busy.len, from,
		       "too many connections");
		return 1;
	}
	if (!relay && count_ip(rip) >= cfg.maxperip) {
		refuse(c, cfg.busy.s, cfg.busy.len, from,
		       "too many connections from this address");
		return 1;
	}
	if (kids_room() == -1) {
		refuse(c, TEMPFAIL, sizeof TEMPFAIL - 1, from, "out of memory");
		return 1;
	}
	pid = -1;
	if (opt_F) {
		static str req;

		if (fs_request(&req, rip, rport, lip, lport, relay) == 0)
			pid = fsc_spawn(&fs, &c, 1, &req);
	}
	if (pid == -2) {
		close(c);
		log_msg("dropped %s: the fork server went away", from);
		return 1;
	}
	if (pid == -1) {
		sigprocmask(SIG_BLOCK, &handled, 0);
		pid = fork();
		if (pid == 0)
			run_child(c, &rsa, rlen, rip, rport, lip, lport, relay);
		sigprocmask(SIG_SETMASK, &oldmask, 0);
	}
	if (pid == -1) {
		log_sys("cannot fork");
		refuse(c, TEMPFAIL, sizeof TEMPFAIL - 1, from, "cannot fork");
		return -1;
	}
	close(c);
	kids[nkids].pid = pid;
	memcpy(kids[nkids].ip, rip, IP_LEN);
	nkids++;
	log_msg("pid %ld from %s to %s", (long)pid, from, to);
	return 1;
}

/* --- main loop ---------------------------------------------------------- */

static void
serve(void)
{
	struct pollfd *pfd = calloc(nlis + 3, sizeof *pfd);
	long long resume = 0;
	size_t i;

	if (!pfd)
		die(111, "out of memory");
	pfd[0].fd = sigpipe[0];
	pfd[0].events = POLLIN;
	for (i = 0; i < nlis; i++)
		pfd[i + 1].fd = lis[i].fd;
	while (!got_term) {
		int timeout = -1, n;
		long long t;

		if (got_chld) {
			got_chld = 0;
			reap();
		}
		if (got_hup) {
			got_hup = 0;
			if (load_config() == 0)
				log_msg("reloaded: %zu relay rules, maxconn "
				        "%llu, maxperip %llu",
				        cfg.nrelay, cfg.maxconn, cfg.maxperip);
			else
				log_msg("keeping the previous configuration");
			fsc_close(&fs, 0); /* and the program afresh */
		}
		t = resume ? fsc_now_ms() : 0;
		if (resume && t >= resume)
			resume = 0;
		if (resume)
			timeout = (int)(resume - t);
		for (i = 0; i < nlis; i++)
			pfd[i + 1].events = resume ? 0 : POLLIN;
		pfd[nlis + 1].fd = fs.sock; /* -1: ignored */
		pfd[nlis + 1].events = POLLIN;
		pfd[nlis + 2].fd = fs.old;
		pfd[nlis + 2].events = POLLIN;
		n = poll(pfd, nlis + 3, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			die_sys(111, "poll failed");
		}
		if (pfd[0].revents)
			drain_sigpipe();
		if (pfd[nlis + 1].revents || pfd[nlis + 2].revents)
			fsc_drain(&fs);
		for (i = 0; i < nlis && !resume && !got_term; i++) {
			int k, r = 1;
			short ev = pfd[i + 1].revents;

			if (ev && !(ev & POLLIN)) { /* POLLERR and the like */
				log_msg("listener %s: poll reports %#x",
				        lis[i].name, (unsigned)ev);
				resume = fsc_now_ms() + ACCEPT_PAUSE_MS;
				break;
			}
			if (!ev)
				continue;
			for (k = 0; k < ACCEPT_BURST && r == 1; k++)
				r = accept_one(lis[i].fd);
			if (r == -1)
				resume = fsc_now_ms() + ACCEPT_PAUSE_MS;
		}
	}
	free(pfd);
}

static void
shut_down(void)
{
	long long deadline;
	size_t i;

	for (i = 0; i < nlis; i++)
		close(lis[i].fd);
	fs.stopping = 1;
	log_msg("stopping: %zu children", nkids);
	for (i = 0; i < nkids; i++)
		kill(kids[i].pid, SIGTERM);
	if (fs.pid) /* what it reaps it reports; what it leaves is ours */
		kill(fs.pid, SIGTERM);
	fsc_close(&fs, 1);
	deadline = fsc_now_ms() + SHUTDOWN_WAIT * 1000;
	for (;;) {
		struct pollfd p[2] = {{sigpipe[0], POLLIN, 0}, {-1, 0, 0}};
		long long t;

		reap();
		t = fsc_now_ms();
		if (!nkids || t >= deadline)
			break;
		if (poll(p, 2, (int)(deadline - t)) > 0 && p[0].revents)
			drain_sigpipe();
	}
	if (nkids)
		log_msg("exiting with %zu children still running", nkids);
	exit(0);
}

/* fds 0, 1 and 2 open, so no socket lands on them */
static void
std_fds(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
			_exit(111);
}

static unsigned long long
opt_limit(const char *flag, const char *v)
{
	unsigned long long n = 0;
	const char *p = v;

	if (!*p)
		usage("empty limit");
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || n > LIMIT_MAX)
			break;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (*p || n < 1 || n > LIMIT_MAX) {
		char why[128];

		snprintf(why, sizeof why, "%s wants a number from 1 to %d",
		         flag, LIMIT_MAX);
		usage(why);
	}
	return n;
}

int
main(int argc, char **argv)
{
	const char *user = 0;
	const char **addrs;
	size_t naddr = 0, k;
	int i;

	std_fds();
	log_init("moat-tcpd");
	addrs = calloc((size_t)argc + 1, sizeof *addrs);
	if (!addrs)
		die(111, "out of memory");
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--")) {
			prog = argv + i + 1;
			break;
		}
		if (a[0] != '-' || !a[1]) {
			addrs[naddr++] = a;
			continue;
		}
		for (a++; *a; a++) {
			const char *val;

			if (*a == 'h') {
				opt_h = 1;
				continue;
			}
			if (*a == 'F') {
				opt_F = 1;
				continue;
			}
			if (*a != 'u' && *a != 'c' && *a != 'i') {
				char why[64];

				snprintf(why, sizeof why, "unknown option -%c",
				         *a);
				usage(why);
			}
			val = a[1] ? a + 1 : i + 1 < argc ? argv[++i] : 0;
			if (!val) {
				char why[64];

				snprintf(why, sizeof why,
				         "option -%c wants a value", *a);
				usage(why);
			}
			if (*a == 'u')
				user = val;
			else if (*a == 'c')
				opt_c = opt_limit("-c", val);
			else
				opt_i = opt_limit("-i", val);
			break;
		}
	}
	if (!prog)
		usage("no -- before the program");
	if (!prog[0])
		usage("no program after --");
	if (user && !*user)
		usage("empty user name");

	unsetenv("RELAYCLIENT"); /* only relayclients grants it */
	unsetenv("TCPREMOTEHOST");
	unsetenv("TCPREMOTEINFO");
	unsetenv("TCPLOCALHOST");
	for (k = 0; k < naddr; k++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (parse_listen(addrs[k], &ss, &len) == -1) {
			char why[256];

			snprintf(why, sizeof why,
			         "bad address %.150s: want IPv4:PORT or "
			         "[IPv6]:PORT",
			         addrs[k]);
			usage(why);
		}
	}
	take_listen_fds();
	for (k = 0; k < naddr; k++) {
		struct sockaddr_storage ss;
		socklen_t len;

		parse_listen(addrs[k], &ss, &len);
		bind_listen(addrs[k], &ss, len);
	}
	free(addrs);
	if (!nlis)
		usage("no address to listen on (and no LISTEN_FDS)");

	drop_root(user);
	if (paths_setup_control(root_dir(0)) == -1)
		die(111, "out of memory");
	setup_signals();
	if (load_config() == -1)
		die(111, "cannot start without the control files");
	if (opt_F && opt_h) {
		log_msg("-h: the name lookup needs a child of moat-tcpd; "
		        "not using -F");
		opt_F = 0;
	}
	/* -F: children of a fork server that died are reparented to us */
	if (opt_F && prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		die_sys(111, "cannot become a subreaper for -F");
	fsc_init(&fs);
	fs.prog = prog;
	fs.child_setup = signals_default;
	fs.ended = kid_ended;
	fs.max_use = FS_MAX_USE;
	for (k = 0; k < nlis; k++)
		log_msg("listening on %s", lis[k].name);
	log_msg("maxconn %llu, maxperip %llu, %zu relay rules", cfg.maxconn,
	        cfg.maxperip, cfg.nrelay);
	serve();
	shut_down();
}
