/*
 * moat-smtpd: one SMTP connection, on descriptors 0 (in) and 1 (out).
 *
 * Runs as: moatd (or the `moat run` user), started per connection by
 * moat-tcpd, tcpserver or systemd (Accept=yes); never as root.
 * Reads: control/me, smtpgreeting, databytes, maxrcpt, timeoutsmtpd,
 * rcpthosts, morercpthosts.cdb, locals, envnoathost, badmailfrom,
 * virtualdomains, rcptcheck, smtpusers, servercert.pem (whether it is
 * there); the environment TCPREMOTEIP, TCPREMOTEHOST, TCPLOCALIP,
 * RELAYCLIENT, QMAILQUEUE, MOAT_ROOT, MOAT_SUBMISSION.
 * Writes: each accepted message to moat-queue (or $QMAILQUEUE), through the
 * qmail-queue protocol; one log line per message on stderr.
 *
 * RFC 5321 with PIPELINING, 8BITMIME, SIZE and ENHANCEDSTATUSCODES;
 * STARTTLS (RFC 3207) through moat-tlsd when control/servercert.pem is
 * there; AUTH PLAIN and LOGIN (RFC 4954) under TLS against
 * control/smtpusers, after which the client may relay.  With
 * MOAT_SUBMISSION set (a port 587 listener, RFC 6409), MAIL needs AUTH
 * first unless RELAYCLIENT is set: 530 5.7.0.  Every
 * reply after the greeting and EHLO/HELO carries an enhanced status code.
 * Replies are buffered and flushed only before a read would block, so
 * pipelined commands are answered in order, in as few packets as possible.
 *
 * DATA is streamed to moat-queue as it arrives (memory stays bounded
 * whatever the size), lines stored with LF endings.  A line ending that is
 * not CRLF (a bare LF, or a CR not followed by LF) gets 550 5.5.2 and the
 * connection is closed with nothing queued: no end-of-data variant that
 * another server might read differently can start a second message.
 * The client hears 250 only after moat-queue exited 0.
 *
 * Exit codes: 0 after QUIT or end of input; 1 after a timeout, a protocol
 * violation that closes the connection, or a fatal error.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "base64.h"
#include "control.h"
#include "date.h"
#include "envelope.h"
#include "forkserver.h"
#include "io.h"
#include "log.h"
#include "paths.h"
#include "route.h"
#include "sasl.h"
#include "smtpcmd.h"
#include "str.h"
#include "tlsproc.h"
#include "users.h"

#define LINE_MAX_SMTP 2048 /* command line, CRLF included (RFC: 512) */
#define ERRORS_MAX 20      /* bad commands before we hang up */
#define HOPS_MAX 100       /* Received/Delivered-To lines meaning a loop */

static io in, out;
static char inbuf[4096], outbuf[4096];

/* configuration */
static str me, greeting, envnoathost, rcpthosts, badmailfrom, locals, vdoms;
static size_t n_rcpthosts, n_badmailfrom, n_locals, n_vdoms;
static unsigned long long databytes, maxrcpt, timeout, rcptcheck;
static const char *root;
static const char *remoteip, *remotehost, *localip, *relayclient;
static int submission; /* MOAT_SUBMISSION: MAIL needs AUTH (RFC 6409) */

/* session */
static str helo;
static int esmtp;
static int errors;
static int tls_ready; /* control/servercert.pem is there */
static str tls;       /* after STARTTLS: "PROTOCOL with cipher CIPHER" */
static str authusers; /* control/smtpusers: "user:hash" items */
static size_t n_authusers;
static str authuser;  /* after AUTH: who */
static int authfails;
#define AUTHFAILS_MAX 3

/* AUTH only under TLS, and only with accounts to check against */
static int
auth_offered(void)
{
	return tls.len && n_authusers;
}

/* transaction */
static int have_mail;
static str sender, rcpts; /* rcpts: 'T' records, as for moat-queue */
static size_t nrcpt;

static void
out_put(const char *s)
{
	if (io_puts(&out, s) == -1)
		_exit(1);
}

static void
flush(void)
{
	if (io_flush(&out) == -1)
		_exit(1);
}

static _Noreturn void
hangup(const char *reply)
{
	out_put(reply);
	flush();
	_exit(1);
}

static void
reply(const char *s)
{
	out_put(s);
}

/* "code x.y.z text" with me spliced in for "%s" once */
static void
replyf(const char *fmt, const char *arg)
{
	char buf[1024];

	snprintf(buf, sizeof buf, fmt, arg);
	out_put(buf);
}

static void
error(const char *s)
{
	reply(s);
	if (++errors >= ERRORS_MAX)
		hangup("421 4.7.0 too many errors; closing connection\r\n");
}

static void
nomem(void)
{
	hangup("421 4.3.0 out of memory; closing connection\r\n");
}

static void
reset(void)
{
	have_mail = 0;
	sender.len = 0;
	rcpts.len = 0;
	nrcpt = 0;
}

static const char *
envs(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static int sanitize(str *, const char *, size_t);
static str tlscert;

static void
config(void)
{
	static str rip, rhost;
	const char *v;

	root = root_dir(0);
	if (paths_setup_control(root) == -1)
		nomem();
	if (ctl_line("me", &me) < 0 || ctl_line("smtpgreeting", &greeting) < 0 ||
	    ctl_line("envnoathost", &envnoathost) < 0 ||
	    ctl_num("databytes", &databytes) < 0 ||
	    ctl_num("maxrcpt", &maxrcpt) < 0 ||
	    ctl_num("timeoutsmtpd", &timeout) < 0 ||
	    ctl_list("rcpthosts", &rcpthosts, &n_rcpthosts) < 0 ||
	    ctl_list("badmailfrom", &badmailfrom, &n_badmailfrom) < 0 ||
	    ctl_list("locals", &locals, &n_locals) < 0 ||
	    ctl_list("virtualdomains", &vdoms, &n_vdoms) < 0 ||
	    ctl_num("rcptcheck", &rcptcheck) < 0 ||
	    ctl_list("smtpusers", &authusers, &n_authusers) < 0) {
		log_sys("unable to read the control files");
		hangup("421 4.3.0 unable to read the configuration; try again "
		       "later\r\n");
	}
	if (timeout == 0 || timeout > 86400)
		timeout = 86400;
	/* the spawner's words go into headers and logs: printable only */
	/* systemd's Accept=yes sockets name the client REMOTE_ADDR */
	v = envs("TCPREMOTEIP", envs("REMOTE_ADDR", "unknown"));
	if (sanitize(&rip, v, strlen(v)) == -1)
		nomem();
	v = envs("TCPREMOTEHOST", "unknown");
	if (sanitize(&rhost, v, strlen(v)) == -1)
		nomem();
	remoteip = rip.s;
	remotehost = rhost.s;
	localip = envs("TCPLOCALIP", "");
	relayclient = getenv("RELAYCLIENT");
	submission = getenv("MOAT_SUBMISSION") != 0;
	if (ctl_path(&tlscert, "servercert.pem", "") == -1)
		nomem();
	tls_ready = access(tlscert.s, R_OK) == 0;
}

static void
greet(void)
{
	char buf[1024];

	snprintf(buf, sizeof buf, "220 %s ESMTP\r\n", greeting.s);
	out_put(buf);
}

/* printable ASCII copy of a client-supplied word, for headers and logs */
static int
sanitize(str *dst, const char *s, size_t n)
{
	size_t i;

	dst->len = 0;
	for (i = 0; i < n && i < 255; i++) {
		char c = s[i];
		if (str_catc(dst, c > 32 && c < 127 ? c : '?') == -1)
			return -1;
	}
	return str_0(dst);
}

static void
do_helo(const struct smtp_cmd *c, int ehlo)
{
	char buf[256];

	if (!c->arglen) {
		error(ehlo ? "501 5.5.4 Syntax: EHLO hostname\r\n"
			   : "501 5.5.4 Syntax: HELO hostname\r\n");
		return;
	}
	if (sanitize(&helo, c->arg, c->arglen) == -1)
		nomem();
	reset();
	esmtp = ehlo;
	if (!ehlo) {
		replyf("250 %s\r\n", me.s);
		return;
	}
	replyf("250-%s\r\n", me.s);
	reply("250-PIPELINING\r\n250-8BITMIME\r\n");
	if (databytes)
		snprintf(buf, sizeof buf, "250-SIZE %llu\r\n", databytes);
	else
		snprintf(buf, sizeof buf, "250-SIZE\r\n");
	reply(buf);
	if (tls_ready && !tls.len)
		reply("250-STARTTLS\r\n");
	if (auth_offered())
		reply("250-AUTH PLAIN LOGIN\r\n");
	reply("250 ENHANCEDSTATUSCODES\r\n");
}

static int
listed_sender(const char *a, size_t len)
{
	size_t off = 0, i, dl;
	const char *d = addr_domain(a, len, &dl);

	for (i = 0; i < n_badmailfrom; i++) {
		const char *it = badmailfrom.s + off;
		size_t l = strlen(it);

		off += l + 1;
		if (l == len && !strncasecmp(it, a, len))
			return 1;
		if (d && it[0] == '@' && l - 1 == dl &&
		    !strncasecmp(it + 1, d, dl))
			return 1;
	}
	return 0;
}

static int
all_digits(const struct smtp_param *p)
{
	size_t i;

	for (i = 0; i < p->vallen; i++)
		if (p->val[i] < '0' || p->val[i] > '9')
			return 0;
	return p->vallen > 0 && p->vallen <= 20; /* RFC 1870: 1*20DIGIT */
}

static void
do_mail(const struct smtp_cmd *c)
{
	size_t off, pos;
	struct smtp_param p;
	unsigned long long size;
	int r, seen_size = 0, seen_body = 0, seen_auth = 0;

	if (have_mail) {
		error("503 5.5.1 nested MAIL command\r\n");
		return;
	}
	if (submission && !authuser.len && !relayclient) {
		error("530 5.7.0 authentication required: this port is for "
		      "submission (STARTTLS, then AUTH)\r\n");
		return;
	}
	if (!smtp_prefix(c->arg, c->arglen, "FROM:", &off)) {
		error("501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
		return;
	}
	r = addr_path(c->arg + off, c->arglen - off, 0, &sender, &pos);
	if (r == ADDR_NOMEM)
		nomem();
	if (r == ADDR_TOOLONG) {
		error("501 5.1.7 sender address too long\r\n");
		return;
	}
	if (r != ADDR_OK) {
		error("501 5.1.7 bad sender address syntax\r\n");
		return;
	}
	pos += off;
	while ((r = smtp_param(c->arg, c->arglen, &pos, &p)) == 1) {
		if (p.keylen == 4 && !strncasecmp(p.key, "SIZE", 4)) {
			if (seen_size++ || !p.val || !all_digits(&p)) {
				error("501 5.5.4 bad SIZE parameter\r\n");
				return;
			}
			/* digits too many for 64 bits still mean too large */
			if (smtp_number(p.val, p.vallen, &size) == -1)
				size = ~0ULL;
			if (databytes && size > databytes) {
				reply("552 5.3.4 message size exceeds fixed "
				      "maximum message size\r\n");
				return;
			}
		} else if (p.keylen == 4 && !strncasecmp(p.key, "BODY", 4)) {
			if (seen_body++ || !p.val ||
			    !((p.vallen == 4 && !strncasecmp(p.val, "7BIT", 4)) ||
			      (p.vallen == 8 &&
			       !strncasecmp(p.val, "8BITMIME", 8)))) {
				error("501 5.5.4 bad BODY parameter\r\n");
				return;
			}
		} else if (p.keylen == 4 && !strncasecmp(p.key, "AUTH", 4) &&
			   auth_offered() && !seen_auth++) {
			/* RFC 4954 5: noted by the client, trusted by nobody
			 * here; the Received field names who authenticated */
		} else {
			error("555 5.5.4 unsupported MAIL parameter\r\n");
			return;
		}
	}
	if (r == -1) {
		error("501 5.5.4 bad MAIL parameters\r\n");
		return;
	}
	if (listed_sender(sender.s, sender.len)) {
		log_msg("rejected sender <%s> from %s: badmailfrom", sender.s,
			remoteip);
		reply("550 5.7.1 sender address rejected\r\n");
		return;
	}
	have_mail = 1;
	rcpts.len = 0;
	nrcpt = 0;
	reply("250 2.1.0 sender ok\r\n");
}

/* is the address literal [1.2.3.4] or [IPv6:...] the address the client
 * connected to? */
static int
own_literal(const char *d, size_t dl)
{
	unsigned char want[16], got[16];
	char buf[64];
	int fam = strchr(localip, ':') ? AF_INET6 : AF_INET;
	size_t skip = fam == AF_INET6 ? 6 : 1; /* "[IPv6:" or "[" */

	if (!*localip || inet_pton(fam, localip, want) != 1)
		return 0;
	if (dl < skip + 1 || dl - skip - 1 >= sizeof buf)
		return 0;
	if (fam == AF_INET6 && strncasecmp(d, "[IPv6:", 6))
		return 0;
	memcpy(buf, d + skip, dl - skip - 1);
	buf[dl - skip - 1] = 0;
	return inet_pton(fam, buf, got) == 1 &&
	       !memcmp(want, got, fam == AF_INET6 ? 16 : 4);
}

/* may the client send to this recipient through us? */
static int
allowed(const str *a)
{
	size_t dl, i;
	const char *d = addr_domain(a->s, a->len, &dl);

	size_t locallen = d ? (size_t)(d - 1 - a->s) : a->len;

	if (relayclient || authuser.len)
		return 1;
	/* routing inside the local part could relay: refuse it */
	for (i = 0; i < locallen; i++)
		if (a->s[i] == '%' || a->s[i] == '!' || a->s[i] == '@')
			return 0;
	if (!d) {
		d = envnoathost.s;
		dl = envnoathost.len;
	}
	if (dl && d[0] == '[')
		return own_literal(d, dl);
	if (ctl_domain_match(&rcpthosts, n_rcpthosts, d, dl))
		return 1;
	/* morercpthosts.cdb holds lower-case domains */
	{
		str low = STR_INIT;
		int r;

		if (str_copyb(&low, d, dl) == -1)
			nomem();
		for (i = 0; i < low.len; i++)
			if (low.s[i] >= 'A' && low.s[i] <= 'Z')
				low.s[i] = (char)(low.s[i] + 32);
		r = ctl_cdb_has("morercpthosts", low.s, low.len);
		str_free(&low);
		return r; /* -1: cannot tell now */
	}
}

/* is dom listed in locals (whole names only, as moat-send matches)? */
static int
is_local(const char *dom, size_t dl)
{
	size_t i, off = 0;

	for (i = 0; i < n_locals; i++) {
		const char *it = locals.s + off;
		size_t l = strlen(it);

		off += l + 1;
		if (l == dl && !strncasecmp(it, dom, dl))
			return 1;
	}
	return 0;
}

/* single-user mode (`moat run`): the whole queue belongs to the account
 * we run as, and only the user table names mailboxes; installed, the
 * queue is moatq's and moats', and system accounts take mail too */
static int
single_user(void)
{
	static int known, single;
	struct stat st;
	str q = STR_INIT;

	if (!known) {
		single = getenv("MOAT_SINGLE_USER") != 0;
		/* queue/info is moats' when installed: owning it too means
		 * one account runs everything (moatq, running sendmail -bs
		 * for root, owns the queue but not info/) */
		if (!single && root_path(&q, root, "queue/info") == 0 &&
		    stat(q.s, &st) == 0)
			single = st.st_uid == geteuid();
		str_free(&q);
		known = 1;
	}
	return single;
}

/* would a local recipient be taken by anyone?  1 yes or cannot tell,
 * 0 nobody (550 5.1.1 now rather than a bounce later) */
static int
local_exists(const str *a)
{
	size_t dl, ll, pl;
	const char *d = addr_domain(a->s, a->len, &dl), *pre;
	int flags = single_user() ? 0 : USERS_SYSTEM, r;
	str l = STR_INIT;

	if (!rcptcheck)
		return 1;
	if (!d) {
		d = envnoathost.s;
		dl = envnoathost.len;
		ll = a->len;
	} else {
		ll = (size_t)(d - 1 - a->s);
	}
	if (is_local(d, dl)) {
		r = users_rcpt_ok(root, a->s, ll, flags);
		return r != 0;
	}
	/* the whole address as moat-send looks it up: user@domain, with
	 * envnoathost added where there is no domain */
	if (str_copyb(&l, a->s, ll) == -1 || str_catc(&l, '@') == -1 ||
	    str_catb(&l, d, dl) == -1)
		nomem();
	pre = vdom_find(&vdoms, n_vdoms, l.s, l.len, &pl);
	if (!pre || !pl) {
		str_free(&l);
		return 1; /* remote, or an exception: not ours to judge */
	}
	l.len = 0;
	if (str_catb(&l, pre, pl) == -1 || str_catc(&l, '-') == -1 ||
	    str_catb(&l, a->s, ll) == -1)
		nomem();
	r = users_rcpt_ok(root, l.s, l.len, flags);
	str_free(&l);
	return r != 0;
}

static void
do_rcpt(const struct smtp_cmd *c)
{
	static str a;
	size_t off, pos;
	struct smtp_param p;
	int r;

	if (!have_mail) {
		error("503 5.5.1 need MAIL before RCPT\r\n");
		return;
	}
	if (!smtp_prefix(c->arg, c->arglen, "TO:", &off)) {
		error("501 5.5.4 Syntax: RCPT TO:<address>\r\n");
		return;
	}
	r = addr_path(c->arg + off, c->arglen - off, ADDR_NOAT, &a, &pos);
	if (r == ADDR_NOMEM)
		nomem();
	if (r == ADDR_TOOLONG) {
		error("501 5.1.3 recipient address too long\r\n");
		return;
	}
	if (r != ADDR_OK || a.len == 0) {
		error("501 5.1.3 bad recipient address syntax\r\n");
		return;
	}
	pos += off;
	r = smtp_param(c->arg, c->arglen, &pos, &p);
	if (r != 0) {
		error(r == 1 ? "555 5.5.4 unsupported RCPT parameter\r\n"
			     : "501 5.5.4 bad RCPT parameters\r\n");
		return;
	}
	if (maxrcpt && nrcpt >= maxrcpt) { /* 0: only moat-queue's cap */
		reply("452 4.5.3 too many recipients\r\n");
		return;
	}
	r = allowed(&a);
	if (r == -1) {
		log_sys("unable to read morercpthosts.cdb");
		reply("451 4.3.0 unable to read the configuration; try again "
		      "later\r\n");
		return;
	}
	if (!r) {
		log_msg("relay denied: <%s> to <%s> from %s", sender.s, a.s,
			remoteip);
		reply("550 5.7.1 relaying denied: this host does not accept "
		      "mail for that recipient\r\n");
		return;
	}
	if (!local_exists(&a)) {
		log_msg("unknown recipient <%s> from %s", a.s, remoteip);
		reply("550 5.1.1 no such user here\r\n");
		return;
	}
	if (relayclient && *relayclient &&
	    (str_cats(&a, relayclient) == -1 || str_0(&a) == -1))
		nomem();
	if (env_add(&rcpts, 'T', a.s, a.len) == -1)
		nomem();
	nrcpt++;
	reply("250 2.1.5 recipient ok\r\n");
}

/* the running moat-queue */
struct qq {
	pid_t pid;
	int mfd, efd, idfd;
	io m;
	char mbuf[16384];
	int broken; /* a write failed: it died; its status says why */
};

static int
qq_start(struct qq *q)
{
	int mp[2], ep[2], ip[2], r;
	str prog = STR_INIT;
	const char *qmailqueue = getenv("QMAILQUEUE");
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t sa;
	sigset_t def;
	char *argv[2];

	if (!qmailqueue || !*qmailqueue) {
		if (bin_path(&prog, "moat-queue") == -1)
			return -1;
		qmailqueue = prog.s;
	}
	if (pipe2(mp, O_CLOEXEC) == -1)
		return -1;
	if (pipe2(ep, O_CLOEXEC) == -1)
		goto close_m;
	if (pipe2(ip, O_CLOEXEC) == -1)
		goto close_e;
	/* posix_spawn: no copy of this process's memory for an exec */
	if (setenv("MOAT_IDFD", "3", 1) == -1) /* for it; we do not read it */
		goto close_i;
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		goto spawn_failed;
	if ((r = posix_spawnattr_init(&sa)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto spawn_failed;
	}
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	argv[0] = (char *)qmailqueue;
	argv[1] = 0;
	if ((r = posix_spawn_file_actions_adddup2(&fa, mp[0], 0)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, ep[0], 1)) == 0 &&
	    (r = posix_spawn_file_actions_adddup2(&fa, ip[1], 3)) == 0 &&
	    (r = posix_spawnattr_setsigdefault(&sa, &def)) == 0 &&
	    (r = posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETSIGDEF)) == 0)
		r = posix_spawn(&q->pid, qmailqueue, &fa, &sa, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&sa);
spawn_failed:
	if (r) {
		errno = r;
		goto close_i;
	}
	close(mp[0]);
	close(ep[0]);
	close(ip[1]);
	str_free(&prog);
	q->mfd = mp[1];
	q->efd = ep[1];
	q->idfd = ip[0];
	q->broken = 0;
	io_init(&q->m, q->mfd, q->mbuf, sizeof q->mbuf, (int)timeout);
	return 0;
close_i:
	close(ip[0]);
	close(ip[1]);
close_e:
	close(ep[0]);
	close(ep[1]);
close_m:
	close(mp[0]);
	close(mp[1]);
	str_free(&prog);
	return -1;
}

static void
qq_put(struct qq *q, const char *b, size_t n)
{
	if (!q->broken && io_put(&q->m, b, n) == -1)
		q->broken = 1;
}

/* finish: send the envelope if commit, wait; returns the exit code */
static int
qq_finish(struct qq *q, int commit, char *id, size_t idsize)
{
	int status, code;
	ssize_t n;

	id[0] = 0;
	if (!q->broken && commit && io_flush(&q->m) == -1)
		q->broken = 1;
	close(q->mfd);
	if (!q->broken && commit) {
		io e;
		char ebuf[4096];

		io_init(&e, q->efd, ebuf, sizeof ebuf, (int)timeout);
		if (io_put(&e, "F", 1) == -1 ||
		    io_put(&e, sender.s, sender.len + 1) == -1 ||
		    io_put(&e, rcpts.s, rcpts.len) == -1 ||
		    io_put(&e, "", 1) == -1 || io_flush(&e) == -1)
			q->broken = 1;
	}
	close(q->efd);
	n = read(q->idfd, id, idsize - 1);
	id[n > 0 ? n : 0] = 0;
	id[strcspn(id, "\n")] = 0;
	close(q->idfd);
	while (waitpid(q->pid, &status, 0) == -1)
		if (errno != EINTR)
			return QQ_BUG;
	if (WIFEXITED(status))
		code = WEXITSTATUS(status);
	else
		code = QQ_BUG;
	if (commit && q->broken && code == 0)
		code = QQ_WRITE; /* cannot happen; never claim success */
	return code;
}

static const char *
qq_reply(int code)
{
	switch (code) {
	case 11:
		return "554 5.1.3 envelope address too long for the queue\r\n";
	case 31:
		return "554 5.3.0 mail server permanently rejected the "
		       "message\r\n";
	case 51:
		return "451 4.3.0 out of memory; try again later\r\n";
	case 52:
		return "451 4.3.0 queue timeout; try again later\r\n";
	case 53:
		return "451 4.3.0 queue write error or disk full; try again "
		       "later\r\n";
	case 54:
		return "451 4.3.0 queue unable to read the message; try again "
		       "later\r\n";
	case 55:
		return "451 4.3.0 queue unable to read its configuration\r\n";
	case 61: case 62: case 63: case 64: case 65: case 66:
		return "451 4.3.0 problem with the queue directory; try again "
		       "later\r\n";
	case 91:
		return "554 5.6.0 envelope format error\r\n";
	case 120:
		return "451 4.3.0 unable to run the queue program\r\n";
	default:
		if (code >= 11 && code <= 40)
			return "554 5.3.0 the queue refused the message "
			       "permanently\r\n";
		return "451 4.3.0 temporary queue failure; try again later\r\n";
	}
}

/* does the header line start, as far as seen in h (n bytes), count as a hop */
static int
is_hop(const char *h, size_t n)
{
	return (n >= 9 && !strncasecmp(h, "received:", 9)) ||
	       (n >= 13 && !strncasecmp(h, "delivered-to:", 13));
}

static void
received(struct qq *q)
{
	char date[64], head[2048];
	int n;

	date_rfc5322(date, sizeof date, time(0));
	/* RFC 3848: ESMTPS is ESMTP under STARTTLS */
	n = snprintf(head, sizeof head,
		     "Received: from %s (%s [%s])\n%s%s%s\tby %s (moat) with "
		     "%s; %s\n",
		     helo.len ? helo.s : "unknown", remotehost, remoteip,
		     tls.len ? "\t(using " : "", tls.len ? tls.s : "",
		     tls.len ? ")\n" : "", me.s,
		     !esmtp	   ? "SMTP"
		     : authuser.len ? "ESMTPSA"
		     : tls.len	   ? "ESMTPS"
				   : "ESMTP",
		     date);
	if (n > 0)
		qq_put(q, head, (size_t)n < sizeof head ? (size_t)n
							: sizeof head - 1);
}

enum { S_BOL, S_DOT, S_DOTCR, S_MID, S_CR };

static void
do_data(const struct smtp_cmd *c)
{
	struct qq q;
	char id[64], hbuf[16], buf[1024];
	size_t hlen = 0, hops = 0, pos;
	unsigned long long size = 0;
	int state = S_BOL, in_header = 1, toobig = 0, nul = 0, code;

	if (!have_mail) {
		error("503 5.5.1 need MAIL before DATA\r\n");
		return;
	}
	if (!nrcpt) {
		error("503 5.5.1 need RCPT before DATA: no valid "
		      "recipients\r\n");
		return;
	}
	if (c->arglen) {
		error("501 5.5.4 Syntax: DATA\r\n");
		return;
	}
	if (qq_start(&q) == -1) {
		log_sys("unable to start the queue program");
		reply("451 4.3.0 unable to start the queue; try again "
		      "later\r\n");
		return;
	}
	reply("354 end data with <CR><LF>.<CR><LF>\r\n");
	received(&q);

	/* byte state machine; emits the unstuffed message with LF endings */
	for (;;) {
		char *b, *e;
		size_t start;

		if (in.pos == in.len) {
			ssize_t r = io_fill(&in);
			if (r <= 0) {
				qq_finish(&q, 0, id, sizeof id);
				if (r < 0 && errno == ETIMEDOUT)
					hangup("421 4.4.2 timeout; closing "
					       "connection\r\n");
				_exit(1);
			}
		}
		b = in.buf + in.pos;
		e = in.buf + in.len;
		start = 0;
		/* runs of ordinary bytes are handed on in one piece: start
		 * marks the first byte not yet given to moat-queue */
		for (pos = 0; b + pos < e; pos++) {
			char ch = b[pos];

			switch (state) {
			case S_MID:
				if (ch == '\r') {
					state = S_CR;
					if (pos > start && !toobig)
						qq_put(&q, b + start,
						       pos - start);
					start = pos + 1;
					continue;
				}
				if (ch == '\n')
					goto bare;
				if (!ch)
					nul = 1;
				if (in_header && hlen < sizeof hbuf)
					hbuf[hlen++] = ch;
				size++;
				continue;
			case S_BOL:
				start = pos;
				if (ch == '.') {
					state = S_DOT;
					start = pos + 1;
					continue;
				}
				if (ch == '\r') {
					state = S_CR;
					start = pos + 1;
					continue;
				}
				goto first;
			case S_DOT:
				if (ch == '\r') {
					state = S_DOTCR;
					start = pos + 1;
					continue;
				}
				start = pos; /* a stuffed dot: drop the first one */
			first: /* the first byte of a line's text */
				if (ch == '\n')
					goto bare;
				if (!ch)
					nul = 1;
				hlen = 0;
				if (in_header)
					hbuf[hlen++] = ch;
				size++;
				state = S_MID;
				continue;
			case S_DOTCR:
				if (ch != '\n')
					goto bare;
				in.pos += pos + 1;
				goto end;
			case S_CR:
				if (ch != '\n')
					goto bare;
				/* end of a line */
				if (in_header) {
					if (is_hop(hbuf, hlen))
						hops++;
					if (hlen == 0)
						in_header = 0;
				}
				hlen = 0;
				size++;
				if (!toobig)
					qq_put(&q, "\n", 1);
				if (databytes && size > databytes)
					toobig = 1;
				state = S_BOL;
				start = pos + 1;
				continue;
			}
		}
		if (state == S_MID && pos > start && !toobig)
			qq_put(&q, b + start, pos - start);
		if (databytes && size > databytes)
			toobig = 1;
		in.pos = in.len;
	}
bare:
	qq_finish(&q, 0, id, sizeof id);
	reset();
	log_msg("bare CR or LF in DATA from %s: connection closed", remoteip);
	hangup("550 5.5.2 bare CR or LF in message: lines must end with "
	       "CRLF (RFC 5321 2.3.8); closing connection\r\n");
end:
	if (toobig || nul || hops >= HOPS_MAX) {
		qq_finish(&q, 0, id, sizeof id);
		if (toobig)
			reply("552 5.3.4 message size exceeds fixed maximum "
			      "message size\r\n");
		else if (nul)
			reply("554 5.6.0 message contains a NUL byte\r\n");
		else
			reply("554 5.4.6 too many hops: this message is "
			      "looping\r\n");
		log_msg("message from <%s> via %s refused: %s", sender.s,
			remoteip,
			toobig ? "too big" : nul ? "NUL byte" : "loop");
		reset();
		return;
	}
	code = qq_finish(&q, 1, id, sizeof id);
	if (code == 0) {
		snprintf(buf, sizeof buf, "250 2.0.0 ok: queued as %s\r\n",
			 id[0] ? id : "(unknown)");
		reply(buf);
		log_msg("queued %s from <%s> via %s helo %s rcpts %zu size "
			"%llu%s%s",
			id[0] ? id : "(unknown)", sender.s, remoteip,
			helo.len ? helo.s : "-", nrcpt, size,
			authuser.len ? " auth " : "",
			authuser.len ? authuser.s : "");
	} else {
		reply(qq_reply(code));
		log_msg("queue failed with status %d for <%s> via %s", code,
			sender.s, remoteip);
	}
	reset();
}

/*
 * STARTTLS (RFC 3207): moat-tlsd takes the network socket and hands us a
 * socketpair that carries the plaintext.  Whatever the client sent after
 * the command is thrown away unread, so nothing sent in the clear can pass
 * as said under TLS; the session starts again from the greeting's state.
 */
static void
do_starttls(const struct smtp_cmd *c)
{
	static str line;
	struct tlsproc t;
	char tbuf[32];
	char *args[] = {"-s", "-t", tbuf, tlscert.s, 0};
	const char *cipher;
	str word = STR_INIT;

	if (c->arglen) {
		error("501 5.5.4 Syntax: STARTTLS\r\n");
		return;
	}
	if (tls.len) {
		error("554 5.5.1 TLS already active\r\n");
		return;
	}
	if (!tls_ready) {
		reply("454 4.7.0 TLS not available\r\n");
		return;
	}
	snprintf(tbuf, sizeof tbuf, "%llu", timeout);
	if (tls_start(&t, 0, args) == -1) {
		log_sys("unable to start moat-tlsd");
		reply("454 4.7.0 TLS not available due to local problem\r\n");
		return;
	}
	/* "ready": it has the certificate and key */
	if (!tls_status(&t, &line, (int)timeout) || strcmp(line.s, "ready")) {
		tls_done(&t, 0);
		kill(t.pid, SIGTERM);
		waitpid(t.pid, 0, 0);
		reply("454 4.7.0 TLS not available due to local problem\r\n");
		return;
	}
	in.pos = in.len; /* CVE-2011-0411: no plaintext after STARTTLS */
	reply("220 2.0.0 ready to start TLS\r\n");
	flush();
	if (!tls_status(&t, &line, (int)timeout) || strncmp(line.s, "ok ", 3)) {
		log_msg("TLS handshake with %s failed", remoteip);
		_exit(1);
	}
	tls_done(&t, 1);
	if (dup2(t.plain, 0) == -1 || dup2(t.plain, 1) == -1)
		_exit(1);
	close(t.plain);
	/* "ok PROTOCOL CIPHER" */
	cipher = strchr(line.s + 3, ' ');
	if (sanitize(&tls, line.s + 3,
		     cipher ? (size_t)(cipher - line.s - 3) : strlen(line.s + 3)) ==
		    -1 ||
	    str_cats(&tls, " with cipher ") == -1 ||
	    sanitize(&word, cipher ? cipher + 1 : "unknown",
		     strlen(cipher ? cipher + 1 : "unknown")) == -1 ||
	    str_catb(&tls, word.s, word.len) == -1 || str_0(&tls) == -1)
		nomem();
	str_free(&word);
	helo.len = 0;
	esmtp = 0;
	reset();
}

/*
 * AUTH (RFC 4954), PLAIN (RFC 4616) and LOGIN, under TLS only, checked
 * against the crypt(3) hashes of control/smtpusers.  An authenticated
 * client may relay, as a RELAYCLIENT may.
 */

static int auth_decode(const char *, size_t, str *);

/* the client's next line into line, without its CRLF (or LF): IO_LINE, or
 * IO_LONG past max bytes; a timeout or the end of input ends the session */
static int
get_line(str *line, size_t max)
{
	int r;

	line->len = 0;
	r = io_getline(&in, line, '\n', max);
	if (r == IO_ERR) {
		if (errno == ETIMEDOUT)
			hangup("421 4.4.2 timeout; closing connection\r\n");
		_exit(1);
	}
	if (r == IO_EOF) {
		flush();
		_exit(0);
	}
	if (r == IO_LONG)
		return r;
	line->len--; /* LF */
	if (line->len && line->s[line->len - 1] == '\r')
		line->len--;
	return IO_LINE;
}

/* read one response line of the exchange, decoded into out: 0, or -1 after
 * replying (cancelled, too long, not base64) */
static int
auth_read(const char *challenge, str *dec)
{
	static str line;

	reply(challenge);
	if (get_line(&line, 12288 + 2) == IO_LONG) { /* RFC 4954 4 */
		error("500 5.5.6 authentication exchange line is too long\r\n");
		return -1;
	}
	if (line.len == 1 && line.s[0] == '*') {
		error("501 5.7.0 authentication cancelled\r\n");
		return -1;
	}
	return auth_decode(line.s, line.len, dec);
}

static int
auth_decode(const char *s, size_t n, str *dec)
{
	/* "=": an empty initial response */
	int r = b64_decode(dec, s, n == 1 && s[0] == '=' ? 0 : n);

	if (r == -1)
		nomem();
	if (r == -2) {
		error("501 5.5.2 cannot decode the response: not base64\r\n");
		return -1;
	}
	return 0;
}

/* the hash of user in control/smtpusers, or NULL */
static const char *
auth_hash(const char *user, size_t len)
{
	size_t off = 0, i;

	for (i = 0; i < n_authusers; i++) {
		const char *it = authusers.s + off;

		off += strlen(it) + 1;
		if (!strncmp(it, user, len) && it[len] == ':')
			return it + len + 1;
	}
	return 0;
}

static int
auth_check(const char *user, size_t ulen, const char *pass)
{
	const char *hash = 0, *got;
	struct crypt_data *cd;
	size_t i, n;
	int diff;

	if (ulen && ulen < 256 && !memchr(user, 0, ulen) &&
	    !memchr(user, ':', ulen))
		hash = auth_hash(user, ulen);
	if (hash && hash[0] != '$') {
		log_msg("control/smtpusers: the entry for %.*s is not a "
			"crypt(3) hash; refused",
			(int)ulen, user);
		hash = 0;
	}
	if (!(cd = calloc(1, sizeof *cd)))
		nomem();
	/* an unknown user costs a hash too, so timing does not tell */
	got = crypt_r(pass, hash ? hash : "$5$moatmoatmoatmoat$", cd);
	diff = !hash || !got || got[0] == '*';
	if (!diff) {
		n = strlen(hash);
		diff = strlen(got) != n;
		for (i = 0; !diff && i < n; i++)
			diff |= got[i] != hash[i];
	}
	explicit_bzero(cd, sizeof *cd);
	free(cd);
	return !diff;
}

static void
do_auth(const struct smtp_cmd *c)
{
	static str a, b;
	const char *sp, *user, *pass, *mech = c->arg;
	size_t ml, ulen;
	int plain;

	if (!n_authusers) {
		error("503 5.5.1 authentication is not enabled\r\n");
		return;
	}
	if (!tls.len) {
		error("538 5.7.11 encryption required: say STARTTLS "
		      "first\r\n");
		return;
	}
	if (!esmtp) {
		error("503 5.5.1 say EHLO first\r\n");
		return;
	}
	if (authuser.len) {
		error("503 5.5.1 already authenticated\r\n");
		return;
	}
	if (have_mail) {
		error("503 5.5.1 not during a mail transaction\r\n");
		return;
	}
	sp = memchr(mech, ' ', c->arglen);
	ml = sp ? (size_t)(sp - mech) : c->arglen;
	if (!ml) {
		error("501 5.5.4 Syntax: AUTH mechanism [initial-response]\r\n");
		return;
	}
	if (ml == 5 && !strncasecmp(mech, "PLAIN", 5))
		plain = 1;
	else if (ml == 5 && !strncasecmp(mech, "LOGIN", 5))
		plain = 0;
	else {
		error("504 5.5.4 unrecognized authentication mechanism\r\n");
		return;
	}
	if (sp && auth_decode(sp + 1, c->arglen - ml - 1, &a) == -1)
		return;
	if (plain) {
		if (!sp && auth_read("334 \r\n", &a) == -1)
			return;
		if (sasl_plain(a.s, a.len, &user, &ulen, &pass) == -1) {
			/* malformed, or acting for someone else: a failure */
			user = "";
			ulen = 0;
			pass = "";
		}
	} else {
		if (!sp && auth_read("334 VXNlcm5hbWU6\r\n", &a) == -1)
			return;
		if (auth_read("334 UGFzc3dvcmQ6\r\n", &b) == -1)
			goto wipe;
		user = a.s;
		ulen = a.len;
		pass = memchr(b.s, 0, b.len) ? "" : b.s;
	}
	if (auth_check(user, ulen, pass)) {
		if (sanitize(&authuser, user, ulen) == -1)
			nomem();
		log_msg("AUTH %s as %s from %s", plain ? "PLAIN" : "LOGIN",
			authuser.s, remoteip);
		reply("235 2.7.0 authentication successful\r\n");
	} else {
		str who = STR_INIT;

		if (sanitize(&who, user, ulen) == -1)
			nomem();
		log_msg("AUTH %s failed for %s from %s",
			plain ? "PLAIN" : "LOGIN", who.len ? who.s : "-",
			remoteip);
		str_free(&who);
		if (++authfails >= AUTHFAILS_MAX)
			hangup("421 4.7.0 too many failed authentications; "
			       "closing connection\r\n");
		error("535 5.7.8 authentication credentials invalid\r\n");
	}
wipe:
	if (a.s)
		explicit_bzero(a.s, a.len);
	if (b.s)
		explicit_bzero(b.s, b.len);
}

static void
do_help(void)
{
	reply("214-2.0.0 moat SMTP server; commands:\r\n"
	      "214-2.0.0 HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	      "214 2.0.0 end of HELP\r\n");
}

int
main(int argc, char **argv)
{
	static str line;
	struct smtp_cmd c;

	(void)argc;
	log_init(argv[0] ? argv[0] : "moat-smtpd");
	signal(SIGPIPE, SIG_IGN);
	if (geteuid() == 0)
		die(1, "refusing to run as root");
	/* under moat-tcpd -F: returns in a connection's child */
	forkserver(&argc, &argv);
	config();
	io_init(&out, 1, outbuf, sizeof outbuf, (int)timeout);
	io_init(&in, 0, inbuf, sizeof inbuf, (int)timeout);
	in.flush_first = &out;
	greet();

	for (;;) {
		if (get_line(&line, LINE_MAX_SMTP) == IO_LONG) {
			error("500 5.5.2 line too long\r\n");
			continue;
		}
		smtp_cmd(line.s, line.len, &c);
		switch (c.verb) {
		case SMTP_HELO:
			do_helo(&c, 0);
			break;
		case SMTP_EHLO:
			do_helo(&c, 1);
			break;
		case SMTP_MAIL:
			do_mail(&c);
			break;
		case SMTP_RCPT:
			do_rcpt(&c);
			break;
		case SMTP_DATA:
			do_data(&c);
			break;
		case SMTP_RSET:
			reset();
			reply("250 2.0.0 ok\r\n");
			break;
		case SMTP_NOOP:
			reply("250 2.0.0 ok\r\n");
			break;
		case SMTP_QUIT:
			replyf("221 2.0.0 %s closing connection\r\n", me.s);
			flush();
			_exit(0);
		case SMTP_VRFY:
			reply("252 2.0.0 cannot VRFY user; try RCPT to attempt "
			      "delivery\r\n");
			break;
		case SMTP_HELP:
			do_help();
			break;
		case SMTP_STARTTLS:
			do_starttls(&c);
			break;
		case SMTP_AUTH:
			do_auth(&c);
			break;
		case SMTP_EXPN:
		case SMTP_TURN:
		case SMTP_SEND:
		case SMTP_SOML:
		case SMTP_SAML:
		case SMTP_BDAT:
			error("502 5.5.1 command not implemented\r\n");
			break;
		case SMTP_UNKNOWN:
			error("502 5.5.2 command not recognized\r\n");
			break;
		case SMTP_BAD:
			error("500 5.5.2 syntax error\r\n");
			break;
		}
	}
}
