/*
 * moat-remote: one delivery attempt, over SMTP, of one message to the
 * recipients of one domain.
 *
 *   moat-remote DOMAIN SENDER RCPT...
 *
 * Runs as: moatr (or the `moat run` user), started by moat-rspawn, one
 * process per attempt.  SENDER may be empty (a bounce: MAIL FROM:<>).
 *
 * Reads: the message on fd 0, exactly as stored in the queue (LF line
 * ends; a seekable file: it is read once to measure it, then again to send
 * it); control/helohost, smtproutes, outgoingip, timeoutconnect,
 * timeoutremote, timeoutdns, nameservers, me, locals (under MOAT_ROOT or
 * the prefix); the environment MOAT_ROOT and MOAT_DOWN_HOSTS (addresses,
 * comma-separated, that are tried only after every other one).
 *
 * Writes: the results on fd 1, NUL-terminated fields:
 *   one per recipient, in argv order: 'K' (the server accepted the RCPT),
 *     'Z' (deferred, try again later) or 'D' (failed for good), then text;
 *   one for the message: 'K', 'Z' or 'D', then text (K: accepted after the
 *     final dot);
 *   then 'T' and an address, for each address whose connection attempt
 *     timed out (moat-rspawn remembers them as down for a while).
 * A recipient's fate is its own field unless that is K; then it is the
 * message field.  When the attempt fails as a whole (DNS, no host took the
 * connection, a 5xx greeting, MAIL refused, the connection lost), every
 * recipient gets the same status and text, and the message field repeats
 * it.  Texts are printable ASCII, one line, at most TEXT_MAX bytes, ready
 * for a bounce: "Remote host mx.example.org [192.0.2.1] said: 550 5.1.1
 * no such user (in reply to RCPT TO)"; local problems carry a qmail-style
 * enhanced code such as "(#4.4.1)".  Nothing goes to stderr but system
 * errors.
 *
 * Routing: control/smtproutes ("domain:relay[:port]", ".suffix:...",
 * ":relay" for every other domain; an empty relay means MX, so
 * "domain::2525" is MX routing to port 2525; the relay may be an address
 * literal "[192.0.2.1]" or "[IPv6:2001:db8::1]"); a relay name is looked up
 * by its A/AAAA records only.  Otherwise DNS (dns.h): MX hosts by
 * preference, each host's addresses in turn, the implicit MX, null MX.  A
 * failed lookup of a relay named in smtproutes is always temporary.
 * Self-MX: when an MX host is named in control/locals or control/me, or
 * (on port 25 only) has one of this host's addresses, only hosts with a
 * better preference are tried; with none left the result is D 5.4.6.
 * Relays are checked by address only (the operator named them).
 *
 * SMTP: each address is tried in order until one greets with 2xx and
 * accepts EHLO (or HELO, when EHLO gets 5xx); a failed or timed-out
 * connect, a 4xx greeting (421 included), a 4xx to EHLO/HELO, a malformed
 * reply or a lost connection moves on to the next address.  A 5xx
 * greeting or a 5xx to HELO fails every recipient for good.  After EHLO
 * the attempt stays with that server.  PIPELINING: MAIL, every RCPT and
 * DATA go in one write, then the replies are read in order.  SIZE: the
 * size is declared, and a message larger than the server's stated limit
 * fails (D 5.3.4) without being sent.  8BITMIME: BODY=8BITMIME when the
 * message has a byte above 127; a server without 8BITMIME gets the
 * message as it is all the same (as qmail does).  A connection lost, or a
 * reply that does not come, after the final dot is Z, flagged "(possible
 * duplicate)".  QUIT at the end.
 *
 * Outbound data is canonical whatever is stored: every line end (LF, CRLF,
 * or a CR alone) goes out as CRLF, so no bare CR or LF ever leaves; a line
 * that starts with '.' gets another; a missing last line end is added.
 * The declared SIZE counts the CRLFs but not the added dots.
 *
 * The server is not trusted: replies are cut by smtpreply.h (line and size
 * caps, every line of a reply with the same code, control bytes cleaned);
 * a malformed reply is a protocol error, never text.  Before every command
 * sent on its own, and before the message after 354, any byte the server
 * sent ahead of time is a protocol error, so lines sent early are never
 * taken as the replies to later commands.  Inside the one pipelined group
 * (MAIL, RCPT..., DATA) replies are matched to commands in order, as
 * RFC 2920 has it; a server can only answer our own commands early there.
 *
 * Timeouts: control/timeoutconnect (default 60 s) for each connect;
 * control/timeoutremote (default 1200 s) for each reply and each write;
 * control/timeoutdns (default 30 s) for all the DNS lookups together.
 *
 * Exit codes: 0 once the results are written, whatever they are; 100
 * usage; 111 on a failure before any result (no memory, unreadable control
 * files, an unreadable or unseekable message): the caller defers everyone.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dns.h"
#include "forkserver.h"
#include "io.h"
#include "ipmatch.h"
#include "job.h"
#include "log.h"
#include "paths.h"
#include "route.h"
#include "smtpreply.h"
#include "str.h"
#include "tlsproc.h"

#define TEXT_MAX 800       /* bytes of one result text */
#define NAME_SHOWN 200     /* bytes of a host name shown in a text */
#define RBUF_MAX (1 << 20) /* unparsed reply bytes kept while writing */
#define QUIT_WAIT 10       /* seconds to wait for the reply to QUIT */
#define TIMEOUT_MAX 86400
#define SMTP_PORT 25

/* the attempt */
static const char *domain, *sender;
static char **rcpt;
static size_t nrcpt;
static char *rstat; /* per recipient: 'K', 'Z', 'D', or 0 not yet */
static str *rtext;
static char mstat;
static str mtext;
static str tfields;  /* "T<ip>\0"... */
static int *badrcpt; /* recipients that cannot be sent (bad syntax) */

/* configuration */
static str helohost, routes, me, locals, outgoing;
static size_t nroutes, nlocals;
static unsigned long long tconnect = 60, tremote = 1200, tlsremote = 1;
static int have_outip;
static unsigned char outip[IP_LEN];
static str myips, downips;
static size_t nmyips, ndownips;

/* the message */
static unsigned long long msgsize;
static int eightbit;

/* the connection */
static int sock = -1;
static int peer_eof;
static str rbuf; /* bytes received; unparsed from rpos */
static size_t rpos;
static const char *cur_host;
static char cur_ip[IP_FMT];
static pid_t tls_pid;  /* moat-tlsd, when sock is its plaintext end */
static int tls_failed; /* this address's handshake failed: try it plain */
static str last_fail; /* why the last address did not take the message */

enum ioerr { E_NONE, E_TIMEOUT, E_EOF, E_PROTO, E_EARLY, E_SYS };
static enum ioerr ioerr;
static int ioerrno;

static _Noreturn void
nomem(void)
{
	die(111, "out of memory");
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- texts ---- */

/* printable, one line, bounded: the form every result text takes */
static void
settext(str *out, const char *s, size_t n)
{
	size_t i;

	out->len = 0;
	if (n > TEXT_MAX)
		n = TEXT_MAX;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (str_catc(out, c >= 32 && c < 127 ? (char)c : '?') == -1)
			nomem();
	}
	if (str_0(out) == -1)
		nomem();
}

static void __attribute__((format(printf, 2, 3)))
textf(str *out, const char *fmt, ...)
{
	char buf[TEXT_MAX * 3];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	settext(out, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* a host name (from DNS or a control file) fit for a text */
static const char *
shown(const char *name)
{
	static char buf[4][NAME_SHOWN + 4];
	static int k;
	char *b = buf[k++ % 4];
	size_t i;

	for (i = 0; name[i] && i < NAME_SHOWN; i++) {
		unsigned char c = (unsigned char)name[i];
		b[i] = c > 32 && c < 127 ? (char)c : '?';
	}
	if (name[i]) {
		memcpy(b + i, "...", 3);
		i += 3;
	}
	b[i] = 0;
	return b;
}

/* "host [ip]", or "[ip]" alone for a literal */
static const char *
peer(void)
{
	static char buf[NAME_SHOWN + IP_FMT + 16];

	if (!strcmp(cur_host, cur_ip))
		snprintf(buf, sizeof buf, "[%s]", cur_ip);
	else
		snprintf(buf, sizeof buf, "%s [%s]", shown(cur_host), cur_ip);
	return buf;
}

static void
remote_said(str *out, const struct smtp_reply *r, const char *cmd)
{
	textf(out, "Remote host %s said: %s (in reply to %s)", peer(),
	      r->text.s, cmd);
}

static const char *
ioerr_text(void)
{
	switch (ioerr) {
	case E_TIMEOUT:
		return "timed out";
	case E_EOF:
		return "connection closed by the remote host";
	case E_PROTO:
		return "malformed reply (protocol error)";
	case E_EARLY:
		return "the remote host sent data out of turn (protocol error)";
	case E_SYS:
		return strerror(ioerrno);
	default:
		return "unknown error";
	}
}

static char
status_of(int code)
{
	if (code >= 200 && code < 300)
		return 'K';
	if (code >= 500 && code < 600)
		return 'D';
	return 'Z';
}

/* every recipient not yet settled, and the message */
static void
set_all(char st, const str *text)
{
	size_t i;

	for (i = 0; i < nrcpt; i++) {
		if (rstat[i])
			continue;
		rstat[i] = st;
		settext(&rtext[i], text->s, text->len);
	}
	mstat = st;
	settext(&mtext, text->s, text->len);
}

static void __attribute__((format(printf, 2, 3)))
fail_all(char st, const char *fmt, ...)
{
	char buf[TEXT_MAX * 3];
	str t = STR_INIT;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	settext(&t, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
	set_all(st, &t);
	str_free(&t);
}

static _Noreturn void
finish(void)
{
	str out = STR_INIT;
	size_t i;

	for (i = 0; i < nrcpt; i++) {
		if (!rstat[i]) {
			rstat[i] = 'Z';
			settext(&rtext[i], "no result (#4.3.0)", 18);
		}
		if (str_catc(&out, rstat[i]) == -1 ||
		    str_catb(&out, rtext[i].s, rtext[i].len) == -1 ||
		    str_catc(&out, 0) == -1)
			nomem();
	}
	if (!mstat) {
		mstat = 'Z';
		settext(&mtext, "no result (#4.3.0)", 18);
	}
	if (str_catc(&out, mstat) == -1 ||
	    str_catb(&out, mtext.s, mtext.len) == -1 ||
	    str_catc(&out, 0) == -1 ||
	    str_catb(&out, tfields.s, tfields.len) == -1)
		nomem();
	if (io_writeall(1, out.s, out.len, 0) == -1)
		die_sys(111, "unable to write the results");
	_exit(0);
}

/* ---- configuration ---- */

static unsigned long long
bounded(unsigned long long v)
{
	return v == 0 || v > TIMEOUT_MAX ? TIMEOUT_MAX : v;
}

static void
my_addresses(void)
{
	struct ifaddrs *ifa, *i;
	unsigned char ip[IP_LEN];

	/* the unspecified addresses reach this host as well */
	memset(ip, 0, IP_LEN);
	if (str_catb(&myips, (char *)ip, IP_LEN) == -1)
		nomem();
	ip[10] = ip[11] = 0xff;
	if (str_catb(&myips, (char *)ip, IP_LEN) == -1)
		nomem();
	nmyips = 2;
	if (getifaddrs(&ifa) == -1)
		die_sys(111, "unable to list this host's addresses");
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr)
			continue;
		if (ip_from_sa(i->ifa_addr,
		               i->ifa_addr->sa_family == AF_INET
		                   ? sizeof(struct sockaddr_in)
		                   : sizeof(struct sockaddr_in6),
		               ip, 0) == -1)
			continue;
		if (str_catb(&myips, (char *)ip, IP_LEN) == -1)
			nomem();
		nmyips++;
	}
	freeifaddrs(ifa);
}

static int
listed(const str *ips, size_t n, const unsigned char *ip)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!memcmp(ips->s + i * IP_LEN, ip, IP_LEN))
			return 1;
	return 0;
}

static void
down_hosts(void)
{
	const char *v = getenv("MOAT_DOWN_HOSTS");
	unsigned char ip[IP_LEN];

	while (v && *v) {
		const char *c = strchr(v, ',');
		size_t n = c ? (size_t)(c - v) : strlen(v);

		if (ip_parse(v, n, ip) == 0) {
			if (str_catb(&downips, (char *)ip, IP_LEN) == -1)
				nomem();
			ndownips++;
		}
		v += n + (c ? 1 : 0);
	}
}

static void
config(void)
{
	const char *root = root_dir(0);

	if (paths_setup_control(root) == -1)
		nomem();
	if (ctl_line("helohost", &helohost) < 0 || ctl_line("me", &me) < 0 ||
	    ctl_list("locals", &locals, &nlocals) < 0 ||
	    ctl_list("smtproutes", &routes, &nroutes) < 0 ||
	    ctl_line("outgoingip", &outgoing) < 0 ||
	    ctl_num("timeoutconnect", &tconnect) < 0 ||
	    ctl_num("timeoutremote", &tremote) < 0 ||
	    ctl_num("tlsremote", &tlsremote) < 0)
		die_sys(111, "unable to read the control files in %s",
		        ctl_dir());
	tconnect = bounded(tconnect);
	tremote = bounded(tremote);
	if (outgoing.len) {
		if (ip_parse(outgoing.s, outgoing.len, outip) == -1)
			die(111, "control/outgoingip is not an address: %s",
			    outgoing.s);
		have_outip = 1;
	}
	/* EHLO takes one word: anything else would be a second command */
	if (!helohost.len || strcspn(helohost.s, " \t\r\n") != helohost.len)
		die(111, "control/helohost (or me) is empty or not one word");
	my_addresses();
	down_hosts();
}

/* ---- the message ---- */

/*
 * The canonical form: every line end (LF, CRLF, a CR alone) as CRLF, a
 * dot doubled at the start of a line, a last line end added.  emit() gets
 * the output; stuffed dots are flagged so the size can leave them out.
 */
struct canon {
	int bol; /* at the start of an output line */
	int cr;  /* the last input byte was a CR */
};

typedef void (*emit_fn)(const char *, size_t, int stuffed);

static void
canon_feed(struct canon *c, const char *b, size_t n, emit_fn emit)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		char ch = b[i];

		if (c->cr) {
			c->cr = 0;
			if (ch == '\n') {
				start = i + 1; /* CRLF: already sent */
				continue;
			}
		}
		if (ch == '\r' || ch == '\n') {
			emit(b + start, i - start, 0);
			emit("\r\n", 2, 0);
			start = i + 1;
			c->bol = 1;
			c->cr = ch == '\r';
			continue;
		}
		if (c->bol && ch == '.') {
			emit(b + start, i - start, 0);
			emit(".", 1, 1);
			start = i;
		}
		c->bol = 0;
	}
	emit(b + start, n - start, 0);
}

static void
canon_end(struct canon *c, emit_fn emit)
{
	if (!c->bol)
		emit("\r\n", 2, 0);
	c->bol = 1;
}

static void
count(const char *b, size_t n, int stuffed)
{
	size_t i;

	if (stuffed)
		return;
	for (i = 0; i < n && !eightbit; i++)
		if ((unsigned char)b[i] > 127)
			eightbit = 1;
	msgsize += n;
}

static void
scan_message(void)
{
	struct canon c = {1, 0};
	char buf[65536];

	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			die_sys(111, "unable to read the message");
		}
		if (r == 0)
			break;
		canon_feed(&c, buf, (size_t)r, count);
	}
	canon_end(&c, count);
	if (lseek(0, 0, SEEK_SET) == -1)
		die_sys(111, "unable to rewind the message");
}

/* ---- addresses ---- */

static int
atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c > 127 ||
	       strchr("!#$%&'*+-/=?^_`{|}~", c);
}

/* a dot-atom local part needs no quotes */
static int
dot_atom(const char *s, size_t n)
{
	size_t i;

	if (!n || s[0] == '.' || s[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return 0;
		} else if (!atext((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* an address that may go into a command: no control bytes at all */
static int
addr_ok(const char *a)
{
	for (; *a; a++)
		if ((unsigned char)*a < 32 || *a == 127)
			return 0;
	return 1;
}

/* "<address>", the local part quoted when it must be */
static int
cat_path(str *out, const char *a)
{
	const char *at = strrchr(a, '@');
	size_t ll = at ? (size_t)(at - a) : strlen(a), i;

	if (str_catc(out, '<') == -1)
		return -1;
	if (!*a)
		return str_catc(out, '>');
	if (dot_atom(a, ll)) {
		if (str_catb(out, a, ll) == -1)
			return -1;
	} else {
		if (str_catc(out, '"') == -1)
			return -1;
		for (i = 0; i < ll; i++) {
			if ((a[i] == '"' || a[i] == '\\') &&
			    str_catc(out, '\\') == -1)
				return -1;
			if (str_catc(out, a[i]) == -1)
				return -1;
		}
		if (str_catc(out, '"') == -1)
			return -1;
	}
	if (at && str_cats(out, at) == -1)
		return -1;
	return str_catc(out, '>');
}

/* ---- routing ---- */

struct route {
	str relay; /* empty: MX */
	unsigned port;
};

/* 1 with rt set when smtproutes has a line for the domain, 0 if not */
static int
find_route(struct route *rt)
{
	const char *v = route_find(&routes, nroutes, domain);

	if (!v)
		return 0;
	switch (route_parse(v, &rt->relay, &rt->port)) {
	case ROUTE_OK:
		break;
	case ROUTE_ENOMEM:
		nomem();
		break;
	default:
		fail_all('Z',
		         "Bad line in control/smtproutes for %s: %s "
		         "(#4.3.5)",
		         shown(domain), shown(v));
		finish();
	}
	return 1;
}

static int
is_local_name(const char *name)
{
	size_t n = strlen(name);

	if (n && name[n - 1] == '.')
		n--;
	if (n == me.len && !strncasecmp(name, me.s, n))
		return 1;
	return n && ctl_domain_match(&locals, nlocals, name, n);
}

/*
 * Self-MX: drop this host and every host not better than it.  Returns the
 * name of the best self entry, or NULL when this host is not listed.
 */
static const char *
drop_self(struct mxlist *mx, unsigned port, int by_name)
{
	static str self;
	unsigned best = UINT_MAX;
	size_t i, j;

	for (i = 0; i < mx->n; i++) {
		struct mxhost *h = &mx->host[i];
		int me_too = by_name && is_local_name(h->name);

		for (j = 0; !me_too && port == SMTP_PORT && j < h->nip; j++)
			if (listed(&myips, nmyips,
			           (unsigned char *)h->ips.s + j * IP_LEN))
				me_too = 1;
		if (me_too && h->pref < best) {
			best = h->pref;
			if (str_copys(&self, h->name) == -1 ||
			    str_0(&self) == -1)
				nomem();
		}
	}
	if (best == UINT_MAX)
		return 0;
	for (i = 0; i < mx->n;) {
		if (mx->host[i].pref >= best)
			mxlist_drop(mx, i);
		else
			i++;
	}
	return self.s;
}

static void
dns_failed(int r, const char *what, const str *err)
{
	switch (r) {
	case DNS_PERM_NXDOMAIN:
		fail_all('D',
		         "Sorry, I couldn't find any host named %s: %s "
		         "(#5.1.2)",
		         shown(what), err->s);
		break;
	case DNS_NULLMX:
		fail_all('D',
		         "The domain %s accepts no mail: it publishes a "
		         "null MX record (RFC 7505) (#5.1.10)",
		         shown(what));
		break;
	case DNS_PERM_NOADDR:
		fail_all('D',
		         "Sorry, I couldn't find a mail exchanger or IP "
		         "address for %s: %s (#5.4.4)",
		         shown(what), err->s);
		break;
	default:
		fail_all('Z',
		         "DNS lookup for %s failed temporarily: %s "
		         "(#4.4.3)",
		         shown(what), err->s);
	}
	finish();
}

/* the hosts to try, in order, and the port; settles everyone on failure */
static void
route(struct mxlist *mx, unsigned *port)
{
	struct route rt = {STR_INIT, SMTP_PORT};
	str err = STR_INIT;
	const char *self;
	int r, relay;

	relay = find_route(&rt) && rt.relay.len;
	*port = rt.port;
	if (relay) {
		r = rt.relay.s[0] == '[' ? dns_mx(rt.relay.s, mx, &err)
		                         : dns_host(rt.relay.s, mx, &err);
		if (r != DNS_OK) {
			fail_all('Z',
			         "DNS lookup for the relay %s in "
			         "control/smtproutes failed: %s (#4.4.3)",
			         shown(rt.relay.s), err.s);
			finish();
		}
	} else {
		r = dns_mx(domain, mx, &err);
		if (r != DNS_OK && !mx->n)
			dns_failed(r, domain, &err);
	}
	self = drop_self(mx, *port, !relay && !mx->literal);
	if (self && !mx->n) {
		fail_all('D',
		         "Sorry, the best mail exchanger for %s is this "
		         "host (%s), but %s is not in control/locals: "
		         "MX points back to me, mail loop (#5.4.6)",
		         shown(domain), shown(self), shown(domain));
		finish();
	}
	r = mxlist_status(mx);
	if (r != DNS_OK) {
		/* the reason of the first host that has one */
		size_t i;

		for (i = 0; i < mx->n; i++)
			if (mx->host[i].why.len) {
				err.len = 0;
				if ((!mx->implicit &&
				     (str_cats(&err, shown(mx->host[i].name)) ==
				          -1 ||
				      str_cats(&err, ": ") == -1)) ||
				    str_catb(&err, mx->host[i].why.s,
				             mx->host[i].why.len) == -1 ||
				    str_0(&err) == -1)
					nomem();
				break;
			}
		if (!err.len &&
		    (str_copys(&err, "no address") == -1 || str_0(&err) == -1))
			nomem();
		dns_failed(r, relay ? rt.relay.s : domain, &err);
	}
	str_free(&rt.relay);
	str_free(&err);
}

/* ---- the connection ---- */

static void
hang_up(void)
{
	if (sock != -1)
		close(sock);
	sock = -1;
	if (tls_pid > 0) /* it ends on our EOF, after its close_notify */
		waitpid(tls_pid, 0, WNOHANG);
	tls_pid = 0;
	peer_eof = 0;
	rbuf.len = 0;
	rpos = 0;
}

static int
set_err(enum ioerr e, int en)
{
	ioerr = e;
	ioerrno = en;
	return -1;
}

/* wait for events until deadline; 0 ready, -1 timeout or error */
static int
wait_for(short events, long long deadline, short *revents)
{
	struct pollfd p;

	for (;;) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			return set_err(E_TIMEOUT, ETIMEDOUT);
		p.fd = sock;
		p.events = events;
		p.revents = 0;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0) {
			*revents = p.revents;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return set_err(E_SYS, errno);
	}
}

/* read what is there into rbuf: >0 bytes, 0 EOF, -1 error (EAGAIN too) */
static ssize_t
take_input(void)
{
	ssize_t r;

	if (rpos) {
		/* keep only what is not parsed yet */
		memmove(rbuf.s, rbuf.s + rpos, rbuf.len - rpos);
		rbuf.len -= rpos;
		rpos = 0;
	}
	if (str_readyplus(&rbuf, 4096) == -1)
		nomem();
	do
		r = read(sock, rbuf.s + rbuf.len, 4096);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		rbuf.len += (size_t)r;
	if (r == 0)
		peer_eof = 1;
	return r;
}

static int
send_all(const char *b, size_t n, unsigned long long secs)
{
	long long deadline = now_ms() + (long long)secs * 1000;

	while (n) {
		short ev, want = POLLOUT;
		ssize_t w;

		/* keep reading meanwhile, so a server that answers
		 * pipelined commands before reading on cannot deadlock us */
		if (!peer_eof && rbuf.len - rpos < RBUF_MAX)
			want |= POLLIN;
		if (wait_for(want, deadline, &ev) == -1)
			return -1;
		if (ev & POLLIN) {
			if (take_input() < 0 && errno != EAGAIN)
				return set_err(E_SYS, errno);
		}
		if (!(ev & (POLLOUT | POLLERR | POLLHUP)))
			continue;
		w = write(sock, b, n);
		if (w < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return set_err(errno == EPIPE || errno == ECONNRESET
			                   ? E_EOF
			                   : E_SYS,
			               errno);
		}
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
send_str(const str *s)
{
	return send_all(s->s, s->len, tremote);
}

/* one whole reply, waiting at most secs for all of it */
static int
get_reply(struct smtp_reply *r, unsigned long long secs)
{
	long long deadline = now_ms() + (long long)secs * 1000;
	int parse = 1;

	for (;;) {
		size_t used;
		short ev;
		ssize_t n;

		if (parse && rbuf.len > rpos) {
			int x = smtp_reply_parse(rbuf.s + rpos, rbuf.len - rpos,
			                         &used, r);
			if (x == 1) {
				rpos += used;
				return 0;
			}
			if (x == -1) {
				if (errno == ENOMEM)
					nomem();
				return set_err(E_PROTO, EPROTO);
			}
		}
		if (peer_eof)
			return set_err(E_EOF, 0);
		if (wait_for(POLLIN, deadline, &ev) == -1)
			return -1;
		n = take_input(); /* may move what is unparsed to the front */
		if (n < 0) {
			if (errno == EAGAIN)
				continue;
			return set_err(errno == ECONNRESET ? E_EOF : E_SYS,
			               errno);
		}
		/* parse again only when a line may have ended */
		parse =
		    n == 0 ||
		    memchr(rbuf.s + rbuf.len - (size_t)n, '\n', (size_t)n) ||
		    rbuf.len - rpos >= SMTP_REPLY_LINE_MAX;
	}
}

/* nothing may be waiting from the server before a command of ours */
static int
quiet(void)
{
	struct pollfd p = {.fd = sock, .events = POLLIN};

	if (rbuf.len > rpos)
		return set_err(E_EARLY, EPROTO);
	if (peer_eof)
		return set_err(E_EOF, 0);
	if (poll(&p, 1, 0) == 1) {
		ssize_t n = take_input();

		if (n > 0)
			return set_err(E_EARLY, EPROTO);
		if (n == 0)
			return set_err(E_EOF, 0);
		if (errno != EAGAIN)
			return set_err(E_SYS, errno);
	}
	return 0;
}

/* a command on its own, and its reply */
static int
command(const str *cmd, struct smtp_reply *r)
{
	if (quiet() == -1 || send_str(cmd) == -1)
		return -1;
	return get_reply(r, tremote);
}

static void
quit(void)
{
	static struct smtp_reply r = SMTP_REPLY_INIT;

	if (sock == -1)
		return;
	if (send_all("QUIT\r\n", 6, QUIT_WAIT) == 0)
		get_reply(&r, QUIT_WAIT); /* whatever it says */
	hang_up();
}

static int
connect_to(const unsigned char *ip, unsigned port, int *timedout)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int four = ip_is4(ip), e = 0;
	socklen_t el = sizeof e;
	short ev;

	*timedout = 0;
	memset(&ss, 0, sizeof ss);
	if (four) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)port);
		memcpy(&s4->sin_addr, ip + 12, 4);
		sl = sizeof *s4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)port);
		memcpy(&s6->sin6_addr, ip, IP_LEN);
		sl = sizeof *s6;
	}
	sock = socket(four ? AF_INET : AF_INET6,
	              SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sock == -1)
		return set_err(E_SYS, errno);
	if (have_outip && ip_is4(outip) == four) {
		struct sockaddr_storage b;
		memset(&b, 0, sizeof b);
		if (four) {
			struct sockaddr_in *b4 = (struct sockaddr_in *)&b;
			b4->sin_family = AF_INET;
			memcpy(&b4->sin_addr, outip + 12, 4);
		} else {
			struct sockaddr_in6 *b6 = (struct sockaddr_in6 *)&b;
			b6->sin6_family = AF_INET6;
			memcpy(&b6->sin6_addr, outip, IP_LEN);
		}
		if (bind(sock, (struct sockaddr *)&b, sl) == -1) {
			e = errno;
			hang_up();
			return set_err(E_SYS, e);
		}
	}
	if (connect(sock, (struct sockaddr *)&ss, sl) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		e = errno;
		hang_up();
		return set_err(E_SYS, e);
	}
	if (wait_for(POLLOUT, now_ms() + (long long)tconnect * 1000, &ev) ==
	    -1) {
		*timedout = ioerr == E_TIMEOUT;
		hang_up();
		return -1;
	}
	if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &e, &el) == -1)
		e = errno;
	if (e) {
		hang_up();
		return set_err(E_SYS, e);
	}
	return 0;
}

/* ---- the SMTP dialogue ---- */

enum { NEXT, DONE };

/* this address did not take the message: why, for the final text */
static int
next_io(const char *waiting)
{
	textf(&last_fail, "%s: %s (%s)", peer(), ioerr_text(), waiting);
	hang_up();
	return NEXT;
}

static int
next_reply(const struct smtp_reply *r, const char *cmd)
{
	remote_said(&last_fail, r, cmd);
	quit();
	return NEXT;
}

static void
all_said(const struct smtp_reply *r, const char *cmd)
{
	str t = STR_INIT;

	remote_said(&t, r, cmd);
	set_all(status_of(r->code) == 'K' ? 'Z' : status_of(r->code), &t);
	str_free(&t);
}

/* the connection failed inside the transaction: everyone deferred */
static int
lost(const char *waiting, int dup)
{
	fail_all('Z', "Connection to %s failed: %s (%s)%s (#4.4.2)", peer(),
	         ioerr_text(), waiting, dup ? " (possible duplicate)" : "");
	hang_up();
	return DONE;
}

static str outbuf;

static void
out_emit(const char *b, size_t n, int stuffed)
{
	(void)stuffed;
	if (str_catb(&outbuf, b, n) == -1)
		nomem();
}

/* the message, canonical, and the final dot: 0, -1 on a connection
 * failure (ioerr), -2 when the message cannot be read (errno) */
static int
send_body(void)
{
	struct canon c = {1, 0};
	char buf[32768];

	outbuf.len = 0;
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -2;
		}
		if (r == 0)
			break;
		canon_feed(&c, buf, (size_t)r, out_emit);
		if (outbuf.len >= sizeof buf) {
			if (send_str(&outbuf) == -1)
				return -1;
			outbuf.len = 0;
		}
	}
	canon_end(&c, out_emit);
	out_emit(".\r\n", 3, 0);
	return send_str(&outbuf);
}

static int
transaction(int pipelining, int size_ok, int mime8)
{
	static struct smtp_reply r = SMTP_REPLY_INIT;
	str cmd = STR_INIT, t = STR_INIT;
	size_t i, accepted = 0, first = nrcpt;
	int data354;

	/* MAIL, and with pipelining the whole group */
	if (str_cats(&cmd, "MAIL FROM:") == -1 || cat_path(&cmd, sender) == -1)
		nomem();
	if (size_ok &&
	    (str_cats(&cmd, " SIZE=") == -1 || str_catu(&cmd, msgsize) == -1))
		nomem();
	if (eightbit && mime8 && str_cats(&cmd, " BODY=8BITMIME") == -1)
		nomem();
	if (str_cats(&cmd, "\r\n") == -1)
		nomem();
	if (pipelining) {
		for (i = 0; i < nrcpt; i++) {
			if (badrcpt[i])
				continue;
			if (str_cats(&cmd, "RCPT TO:") == -1 ||
			    cat_path(&cmd, rcpt[i]) == -1 ||
			    str_cats(&cmd, "\r\n") == -1)
				nomem();
		}
		if (str_cats(&cmd, "DATA\r\n") == -1)
			nomem();
		if (quiet() == -1 || send_str(&cmd) == -1)
			return lost("sending MAIL FROM", 0);
		if (get_reply(&r, tremote) == -1)
			return lost("waiting for the reply to MAIL FROM", 0);
	} else if (command(&cmd, &r) == -1) {
		return lost("waiting for the reply to MAIL FROM", 0);
	}
	if (status_of(r.code) != 'K') {
		all_said(&r, "MAIL FROM");
		if (!pipelining) {
			quit();
			return DONE;
		}
		/* read the rest of the group, then leave */
		for (i = 0; i <= nrcpt; i++) {
			if (i < nrcpt && badrcpt[i])
				continue;
			if (get_reply(&r, tremote) == -1) {
				hang_up();
				return DONE;
			}
		}
		if (r.code == 354)
			hang_up(); /* the server is reading a message: drop it
			            */
		else
			quit();
		return DONE;
	}

	/* RCPT */
	for (i = 0; i < nrcpt; i++) {
		if (badrcpt[i])
			continue;
		if (!pipelining) {
			cmd.len = 0;
			if (str_cats(&cmd, "RCPT TO:") == -1 ||
			    cat_path(&cmd, rcpt[i]) == -1 ||
			    str_cats(&cmd, "\r\n") == -1)
				nomem();
			if (command(&cmd, &r) == -1)
				return lost("waiting for the reply to RCPT TO",
				            0);
		} else if (get_reply(&r, tremote) == -1) {
			return lost("waiting for the reply to RCPT TO", 0);
		}
		rstat[i] = status_of(r.code);
		remote_said(&rtext[i], &r, "RCPT TO");
		if (rstat[i] == 'K')
			accepted++;
		if (first == nrcpt)
			first = i;
	}

	/* DATA */
	if (!pipelining && !accepted) {
		mstat = rstat[first];
		settext(&mtext, rtext[first].s, rtext[first].len);
		quit();
		return DONE;
	}
	if (!pipelining) {
		cmd.len = 0;
		if (str_cats(&cmd, "DATA\r\n") == -1)
			nomem();
		if (command(&cmd, &r) == -1)
			return lost("waiting for the reply to DATA", 0);
	} else if (get_reply(&r, tremote) == -1) {
		return lost("waiting for the reply to DATA", 0);
	}
	str_free(&cmd);
	data354 = r.code == 354;
	if (!accepted) {
		/* each recipient has its own answer; the message takes the
		 * first one's */
		mstat = rstat[first];
		settext(&mtext, rtext[first].s, rtext[first].len);
		if (data354)
			hang_up(); /* never send a message to nobody */
		else
			quit();
		return DONE;
	}
	if (!data354) {
		remote_said(&mtext, &r, "DATA");
		mstat = status_of(r.code) == 'D' ? 'D' : 'Z';
		quit();
		return DONE;
	}

	/* the message */
	if (quiet() == -1)
		return lost("before sending the message", 0);
	switch (send_body()) {
	case -2: /* our own message file failed us */
		fail_all('Z', "Unable to read the message: %s (#4.3.0)",
		         strerror(errno));
		hang_up();
		return DONE;
	case -1:
		return lost("sending the message", 0);
	}
	if (get_reply(&r, tremote) == -1)
		return lost("waiting for the reply to the end of DATA", 1);
	remote_said(&t, &r, "end of DATA");
	mstat = status_of(r.code);
	settext(&mtext, t.s, t.len);
	str_free(&t);
	quit();
	return DONE;
}

/* what the reply to EHLO (esmtp) or HELO offers, then the transaction */
static int
features(const struct smtp_reply *r, int esmtp)
{
	const char *arg;
	unsigned long long limit = 0;
	int pipelining = 0, size_ok = 0, mime8 = 0;

	if (esmtp) {
		pipelining = smtp_reply_ehlo(r, "PIPELINING", 0);
		mime8 = smtp_reply_ehlo(r, "8BITMIME", 0);
		if (smtp_reply_ehlo(r, "SIZE", &arg)) {
			size_ok = 1;
			while (*arg >= '0' && *arg <= '9' &&
			       !__builtin_mul_overflow(limit, 10, &limit) &&
			       !__builtin_add_overflow(
			           limit, (unsigned)(*arg - '0'), &limit))
				arg++;
		}
	}
	if (limit && msgsize > limit) {
		fail_all('D',
		         "Remote host %s accepts messages of at most %llu "
		         "bytes; this message has %llu (#5.3.4)",
		         peer(), limit, msgsize);
		quit();
		return DONE;
	}
	return transaction(pipelining, size_ok, mime8);
}

/* ---- STARTTLS (RFC 3207), opportunistic: certificates are not checked
 * (RFC 7435); a failed handshake makes deliver() try the address again in
 * the clear, as a server that cannot do TLS still gets its mail ---- */

/* the plaintext end of moat-tlsd in place of the socket: 0, or -1 with
 * tls_failed set */
static int
tls_client(void)
{
	static str line;
	struct tlsproc t;
	char secs[32];
	char *args[] = {"-c", "-t", secs, (char *)cur_host, 0};
	int fl;

	snprintf(secs, sizeof secs, "%llu", tremote);
	if (tls_start(&t, sock, args) == -1) {
		log_sys("unable to start moat-tlsd");
		tls_failed = 1;
		return -1;
	}
	tls_pid = t.pid;
	close(sock); /* moat-tlsd has it now */
	sock = t.plain;
	if (!tls_status(&t, &line, (int)tremote) || strcmp(line.s, "ready") ||
	    !tls_status(&t, &line, (int)tremote) || strncmp(line.s, "ok ", 3)) {
		tls_done(&t, 1);
		tls_failed = 1;
		return -1;
	}
	tls_done(&t, 1);
	fl = fcntl(sock, F_GETFL);
	if (fl == -1 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) == -1) {
		tls_failed = 1;
		return -1;
	}
	return 0;
}

/* after an EHLO that offers STARTTLS: -2 to go on in the clear (the server
 * refused), or session()'s result after the TLS session's own EHLO */
static int
starttls(struct smtp_reply *r, str *ehlo)
{
	static const str cmd = {"STARTTLS\r\n", 10, 0};
	static struct smtp_reply sr = SMTP_REPLY_INIT;

	/* sr, not r: a refusal leaves the EHLO reply for features() */
	if (command(&cmd, &sr) == -1)
		return next_io("waiting for the reply to STARTTLS");
	if (sr.code != 220)
		return -2; /* 454 and the like: the session goes on */
	if (quiet() == -1) { /* nothing may come before the handshake */
		tls_failed = 1;
		return next_io("starting TLS");
	}
	if (tls_client() == -1) {
		textf(&last_fail, "%s: TLS handshake failed", peer());
		hang_up();
		return NEXT;
	}
	rbuf.len = rpos = 0;
	peer_eof = 0;
	/* RFC 3207 4.2: forget what the server said before; ask again */
	ehlo->len = 0;
	if (str_cats(ehlo, "EHLO ") == -1 ||
	    str_catb(ehlo, helohost.s, helohost.len) == -1 ||
	    str_cats(ehlo, "\r\n") == -1)
		nomem();
	if (command(ehlo, r) == -1)
		return next_io("waiting for the reply to EHLO under TLS");
	if (status_of(r->code) != 'K')
		return next_reply(r, "EHLO under TLS");
	return features(r, 1);
}

static int
session(void)
{
	static struct smtp_reply r = SMTP_REPLY_INIT;
	str cmd = STR_INIT;
	int esmtp = 1;

	if (get_reply(&r, tremote) == -1)
		return next_io("waiting for the greeting");
	if (r.code >= 500) {
		all_said(&r, "the greeting");
		quit();
		return DONE;
	}
	if (status_of(r.code) != 'K')
		return next_reply(&r, "the greeting");
	if (str_cats(&cmd, "EHLO ") == -1 ||
	    str_catb(&cmd, helohost.s, helohost.len) == -1 ||
	    str_cats(&cmd, "\r\n") == -1)
		nomem();
	if (command(&cmd, &r) == -1)
		return next_io("waiting for the reply to EHLO");
	if (r.code >= 500) {
		esmtp = 0;
		cmd.len = 0;
		if (str_cats(&cmd, "HELO ") == -1 ||
		    str_catb(&cmd, helohost.s, helohost.len) == -1 ||
		    str_cats(&cmd, "\r\n") == -1)
			nomem();
		if (command(&cmd, &r) == -1)
			return next_io("waiting for the reply to HELO");
		if (r.code >= 500) {
			all_said(&r, "HELO");
			quit();
			return DONE;
		}
	}
	if (status_of(r.code) != 'K')
		return next_reply(&r, esmtp ? "EHLO" : "HELO");
	if (esmtp && tlsremote && !tls_failed && !tls_pid &&
	    smtp_reply_ehlo(&r, "STARTTLS", 0)) {
		int x = starttls(&r, &cmd);

		if (x != -2) {
			str_free(&cmd);
			return x;
		}
	}
	str_free(&cmd);
	return features(&r, esmtp);
}

/* ---- main ---- */

/* one address: connect and talk; once more in the clear when the TLS
 * handshake failed */
static int
try_address(const unsigned char *ip, unsigned port)
{
	int timedout, r = NEXT, tries;

	for (tries = 0; tries < 2; tries++) {
		if (connect_to(ip, port, &timedout) == -1) {
			if (timedout && (str_catc(&tfields, 'T') == -1 ||
			                 str_cats(&tfields, cur_ip) == -1 ||
			                 str_catc(&tfields, 0) == -1))
				nomem();
			textf(&last_fail, "%s: %s", peer(),
			      timedout ? "connection timed out"
			               : ioerr_text());
			break;
		}
		r = session();
		if (r == DONE || !tls_failed)
			break;
	}
	tls_failed = 0;
	return r;
}

static void
deliver(const struct mxlist *mx, unsigned port)
{
	str tried = STR_INIT;
	size_t ntried = 0, pass, i, j;
	int any = 0;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < mx->n; i++) {
			const struct mxhost *h = &mx->host[i];

			for (j = 0; j < h->nip; j++) {
				const unsigned char *ip =
				    (unsigned char *)h->ips.s + j * IP_LEN;
				int down = listed(&downips, ndownips, ip);

				if (down != (int)pass ||
				    listed(&tried, ntried, ip))
					continue;
				if (str_catb(&tried, (char *)ip, IP_LEN) == -1)
					nomem();
				ntried++;
				any = 1;
				cur_host = h->name;
				ip_fmt(cur_ip, ip);
				if (try_address(ip, port) == DONE)
					return;
			}
		}
	}
	if (!any)
		fail_all('Z', "No address to deliver to for %s (#4.4.1)",
		         shown(domain));
	else
		fail_all('Z',
		         "Unable to deliver to any mail exchanger for "
		         "%s. Last attempt: %s (#4.4.1)",
		         shown(domain), last_fail.s);
	str_free(&tried);
}

int
main(int argc, char **argv)
{
	static struct mxlist mx = MXLIST_INIT;
	unsigned port = SMTP_PORT;
	size_t i, good = 0;

	log_init(argv[0] ? argv[0] : "moat-remote");
	/* under moat-rspawn: returns in a child, with its job's arguments */
	forkserver(&argc, &argv);
	if (argc < 4)
		die(100, "usage: moat-remote domain sender recipient...");
	domain = argv[1];
	sender = argv[2];
	rcpt = argv + 3;
	nrcpt = (size_t)argc - 3;
	if (nrcpt > JOB_RCPT_MAX)
		die(100, "more than %d recipients", JOB_RCPT_MAX);
	signal(SIGPIPE, SIG_IGN);
	rstat = calloc(nrcpt, 1);
	rtext = calloc(nrcpt, sizeof *rtext);
	badrcpt = calloc(nrcpt, sizeof *badrcpt);
	if (!rstat || !rtext || !badrcpt)
		nomem();
	config();
	scan_message();

	/* what cannot go into a command is settled before anything else */
	if (!*domain || !addr_ok(domain)) {
		fail_all('D', "Sorry, the domain is not valid (#5.1.2)");
		finish();
	}
	if (!addr_ok(sender)) {
		fail_all('D', "Sorry, the sender address is not valid "
		              "(#5.1.7)");
		finish();
	}
	for (i = 0; i < nrcpt; i++) {
		if (!*rcpt[i] || !addr_ok(rcpt[i])) {
			badrcpt[i] = 1;
			rstat[i] = 'D';
			textf(&rtext[i], "Sorry, the recipient address is not "
			                 "valid (#5.1.3)");
		} else {
			good++;
		}
	}
	if (!good) {
		fail_all('D', "Sorry, no recipient address is valid (#5.1.3)");
		finish();
	}
	route(&mx, &port);
	deliver(&mx, port);
	finish();
}
