/*
 * moat-rspawn: the remote-delivery spawner.
 *
 * Runs as: moatr in the installed system (started by moat-start); under
 * `moat run`, the run account.  Never as root: it refuses to start (exit
 * 111) when its real or effective uid is 0.  Takes no arguments.
 *
 * Reads delivery jobs (job.h) on fd 0 and writes one result per job on
 * fd 1, in whatever order the deliveries finish.  A job carries every
 * pending recipient of one message in one domain: the domain follows the
 * last '@' of the first recipient, and every other recipient must have the
 * same one (any case).  For each job it opens ROOT/queue/mess/N/ID
 * read-only and starts
 *
 *   moat-remote domain sender rcpt...
 *
 * with the message on fd 0, a pipe on fd 1, stderr inherited, every other
 * descriptor closed, and the environment PATH=/usr/bin:/bin, MOAT_ROOT and
 * MOAT_DOWN_HOSTS (below).  moat-remote is found next to moat-rspawn.
 *
 * moat-remote's report: NUL-terminated fields on its stdout, first one per
 * recipient in argv order (K accepted at RCPT, Z refused with 4xx, D with
 * 5xx, each followed by text), then one for the message (K delivered, Z
 * deferred, D failed, and text), then any number of "T<ip>" fields, the
 * addresses whose connection timed out.  A recipient's result is its own
 * field when that is Z or D; when it is K, the message field's letter and
 * text.  Output is read up to OUT_MAX bytes; an exit status other than 0,
 * death by a signal, or output that is cut short, too long or not in this
 * form makes every recipient Z "moat-remote crashed or was killed
 * (#4.3.0)".  Texts are made printable and cut to 1000 bytes (job.h).
 *
 * moat-remote runs as a fork server (forkserver.h, fsclient.h): started
 * once, with the environment above less MOAT_DOWN_HOSTS and with
 * /dev/null on fds 0 and 1, it forks a fresh child per job, which takes
 * the job's arguments, MOAT_DOWN_HOSTS and its two descriptors: the same
 * as above, without an exec, the dynamic loader and libc's start-up per
 * delivery.  A server serves FS_MAX_USE jobs, or until SIGHUP, and is
 * then replaced; moat-rspawn is the subreaper of its children, so a
 * server's death loses none.  While there is none (at most one start a
 * second), or when moat-remote is not a fork server, jobs fork and exec
 * as described.  A job the server may have taken before it went away is
 * deferred (Z).
 *
 * Concurrency: moat-send keeps the total to concurrencyremote; moat-rspawn
 * adds a limit per destination, control/concurrencydomain (default 10):
 * at most that many moat-remote processes for one domain at once.  Further
 * jobs for that domain wait here, first in, first out, and start as its
 * deliveries finish, so one slow domain cannot hold every slot.  More than
 * WAIT_MAX waiting jobs is a protocol error.
 *
 * Down hosts: the addresses reported in T fields are remembered with the
 * time, for control/downhostperiod seconds (default 3600; 0: not at all),
 * at most DOWN_TABLE of them; each moat-remote gets the DOWN_PASS most
 * recent in MOAT_DOWN_HOSTS, comma-separated (empty when there are none),
 * so that it can skip them at once.  The table lives in memory only.
 *
 * Results without moat-remote: a missing or unreadable message file, a
 * failed pipe or fork: Z for every recipient; a job whose recipients lack
 * a domain or do not share one (moat-send never sends such a job): Z.
 * When moat-remote cannot be executed, the child reports Z for every
 * recipient with the reason.
 *
 * Signals: SIGHUP re-reads concurrencydomain and downhostperiod (a value
 * that cannot be read keeps the old one).  At end of input, or on SIGTERM
 * or SIGINT, it stops reading, answers the jobs that have not started Z,
 * waits for the running deliveries, reports them and exits 0.  A malformed
 * job, end of input inside one, or too many waiting jobs is a protocol
 * error: the same finish, then exit 111.  One poll() loop drives
 * everything; signals arrive through a signalfd.
 *
 * Exit codes: 0 clean finish; 100 usage; 111 protocol or system error, or
 * started as root.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "fsclient.h"
#include "job.h"
#include "spawner.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"

#define OUT_MAX (1024 * 1024) /* bytes of moat-remote output read */
#define WAIT_MAX 100000       /* jobs waiting for a per-domain slot */
#define DOWN_TABLE 1000       /* down hosts remembered */
#define DOWN_PASS 100         /* down hosts passed to one moat-remote */
#define CONC_MAX 65000        /* highest concurrencydomain honoured */
#define DOM_BUCKETS 4096
/* the largest well-formed job, with room to spare */

static const char crashed[] = "moat-remote crashed or was killed (#4.3.0)";

/* a job that has not started */
struct pend {
	struct pend *next;
	unsigned long n;
	unsigned long long id;
	size_t nrcpt;
	str sender; /* NUL-terminated */
	str rcpts;  /* nrcpt NUL-terminated addresses */
};

/* a destination: its running deliveries and its waiting jobs */
struct dom {
	struct dom *next; /* hash chain */
	char *name;       /* lower case */
	size_t running;
	struct pend *head, *tail;
};

struct kid {
	pid_t pid;
	unsigned long n; /* job number */
	size_t nrcpt;
	struct dom *d;
	int fd; /* report pipe; -1 after EOF */
	int exited;
	int status;   /* wait status, once exited */
	int overflow; /* wrote more than OUT_MAX */
	str out;      /* what it wrote */
};

struct down {
	char ip[INET6_ADDRSTRLEN];
	time_t when;            /* monotonic seconds */
	unsigned long long seq; /* larger: reported more recently */
};

static struct kid *kids;
static size_t nkids, akids;
static struct dom *doms[DOM_BUCKETS];
static size_t nwaiting;
static struct down downs[DOWN_TABLE];
static size_t ndown;
static unsigned long long down_seq;

static str remote_bin; /* moat-remote next to us */
static unsigned long long conc_dom = 10;
static unsigned long long down_period = 3600;
static int stopping; /* no more jobs start */
static struct fsc fs; /* moat-remote as a fork server */
#define FS_MAX_USE 100 /* deliveries, then a fresh fork server */

static time_t
mono(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return 0;
	return ts.tv_sec;
}

/* one result with one status and text for nres recipients */

/* ---- control files ---- */

/* at start a failure is fatal; after SIGHUP the old value stays */
static void
read_controls(int fatal)
{
	static const char *const names[] = {"concurrencydomain",
	                                    "downhostperiod"};
	unsigned long long *vars[] = {&conc_dom, &down_period};
	size_t i;

	for (i = 0; i < 2; i++) {
		unsigned long long v;

		if (ctl_num(names[i], &v) < 0) {
			if (fatal)
				die_sys(111, "unable to read control/%s",
				        names[i]);
			log_sys("unable to read control/%s; keeping %llu",
			        names[i], *vars[i]);
			continue;
		}
		*vars[i] = v;
	}
	if (conc_dom == 0)
		conc_dom = 1;
	if (conc_dom > CONC_MAX)
		conc_dom = CONC_MAX;
}

/* ---- down hosts ---- */

static void
down_expire(time_t now)
{
	size_t i;

	for (i = 0; i < ndown;) {
		if (down_period == 0 ||
		    (unsigned long long)(now - downs[i].when) >= down_period)
			downs[i] = downs[--ndown];
		else
			i++;
	}
}

/* ip is a valid address already in canonical form */
static void
down_add(const char *ip, time_t now)
{
	size_t i, old = 0;

	if (down_period == 0)
		return;
	for (i = 0; i < ndown; i++)
		if (!strcmp(downs[i].ip, ip))
			break;
	if (i == ndown && ndown == DOWN_TABLE) {
		for (i = 1; i < ndown; i++)
			if (downs[i].seq < downs[old].seq)
				old = i;
		i = old;
	} else if (i == ndown) {
		ndown++;
	}
	snprintf(downs[i].ip, sizeof downs[i].ip, "%s", ip);
	downs[i].when = now;
	downs[i].seq = ++down_seq;
}

static int
newest_first(const void *a, const void *b)
{
	const struct down *x = a, *y = b;

	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

/* "MOAT_DOWN_HOSTS=ip,ip,...", the DOWN_PASS most recent */
static void
down_env(str *env)
{
	size_t i;

	down_expire(mono());
	qsort(downs, ndown, sizeof *downs, newest_first);
	if (str_copys(env, "MOAT_DOWN_HOSTS=") == -1)
		sp_nomem();
	for (i = 0; i < ndown && i < DOWN_PASS; i++)
		if ((i && str_catc(env, ',') == -1) ||
		    str_cats(env, downs[i].ip) == -1)
			sp_nomem();
	if (str_0(env) == -1)
		sp_nomem();
}

/* canonical text of an IPv4 or IPv6 address into buf; -1 if not one */
static int
canon_ip(const char *s, char *buf, size_t size)
{
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		return inet_ntop(AF_INET, a, buf, (socklen_t)size) ? 0 : -1;
	if (inet_pton(AF_INET6, s, a) == 1)
		return inet_ntop(AF_INET6, a, buf, (socklen_t)size) ? 0 : -1;
	return -1;
}

/* ---- destinations ---- */

static size_t
dom_hash(const char *s, size_t len)
{
	size_t h = 2166136261u, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 16777619u;
	}
	return h % DOM_BUCKETS;
}

static struct dom *
dom_get(const char *s, size_t len)
{
	size_t h = dom_hash(s, len), i;
	struct dom *d;

	for (d = doms[h]; d; d = d->next)
		if (strlen(d->name) == len && !strncasecmp(d->name, s, len))
			return d;
	d = calloc(1, sizeof *d);
	if (!d || !(d->name = malloc(len + 1)))
		sp_nomem();
	for (i = 0; i < len; i++) {
		char c = s[i];
		d->name[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
	}
	d->name[len] = 0;
	d->next = doms[h];
	doms[h] = d;
	return d;
}

/* forget d once nothing runs or waits for it */
static void
dom_release(struct dom *d)
{
	struct dom **p;

	if (d->running || d->head)
		return;
	for (p = &doms[dom_hash(d->name, strlen(d->name))]; *p; p = &(*p)->next)
		if (*p == d) {
			*p = d->next;
			break;
		}
	free(d->name);
	free(d);
}

static void
pend_free(struct pend *p)
{
	str_free(&p->sender);
	str_free(&p->rcpts);
	free(p);
}

/* ---- the child: run moat-remote ---- */

static void
writeall(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(111);
		s += w;
		n -= (size_t)w;
	}
}

/* report, in moat-remote's own format, that it could not be run */
static _Noreturn void
child_fail(size_t nrcpt, const char *what, int e)
{
	char buf[300];
	size_t i;
	int n = snprintf(buf, sizeof buf, "Zmoat-rspawn: %s: %s (#4.3.0)", what,
	                 strerror(e));

	if (n < 0)
		_exit(111);
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	for (i = 0; i < nrcpt; i++)
		writeall(1, "K", 2);
	writeall(1, buf, (size_t)n + 1);
	_exit(0);
}

static _Noreturn void
child(int mess, int w, char **argv, char **envp, size_t nrcpt)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(w, 1) == -1)
		_exit(111);
	if (dup2(mess, 0) == -1)
		child_fail(nrcpt, "unable to set up the message descriptor",
		           errno);
	sp_close_others();
	if (getuid() == 0 || geteuid() == 0)
		child_fail(nrcpt, "refusing to run moat-remote as root", EPERM);
	execve(remote_bin.s, argv, envp);
	child_fail(nrcpt, "unable to run moat-remote", errno);
}

/* ---- starting a job ---- */

/* moat-remote through the fork server: its pid, or -1 (run it without),
 * or -2 (the server went away; a child of it may have the job) */
static pid_t
remote_spawn(int mess, int report, char **argv, const char *downenv)
{
	static str req;
	int fds[2];
	size_t i;

	fds[0] = mess;
	fds[1] = report;
	req.len = 0;
	if (fsc_add(&req, downenv, 0) == -1 || str_catc(&req, 0) == -1)
		sp_nomem();
	for (i = 0; argv[i]; i++)
		if (fsc_add(&req, argv[i], 0) == -1)
			sp_nomem();
	return fsc_spawn(&fs, fds, 2, &req);
}

/* 1 if a moat-remote runs for p now, 0 if p was answered at once */
static int
launch(struct dom *d, struct pend *p)
{
	str path = STR_INIT, rel = STR_INIT, rootenv = STR_INIT;
	str downenv = STR_INIT;
	char **argv = 0, *envp[4];
	size_t i, off = 0;
	int mess = -1, pi[2], started = 0;
	pid_t pid;
	struct kid *k;

	if (queue_file(&rel, "queue/mess", p->id) == -1 ||
	    root_path(&path, sp.root.s, rel.s) == -1)
		sp_nomem();
	mess = open(path.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (mess == -1) {
		if (errno == ENOENT)
			sp_result(p->n, 'Z', p->nrcpt,
			       "moat-rspawn: the message file queue/%s is "
			       "missing (#4.3.0)",
			       rel.s + 6);
		else
			sp_result(p->n, 'Z', p->nrcpt,
			       "moat-rspawn: unable to open the message "
			       "file: %s (#4.3.0)",
			       strerror(errno));
		goto done;
	}
	if (nkids == akids) {
		size_t na = akids ? akids * 2 : 16;
		struct kid *nk = realloc(kids, na * sizeof *kids);
		if (!nk)
			sp_nomem();
		kids = nk;
		akids = na;
	}
	argv = calloc(p->nrcpt + 4, sizeof *argv);
	if (!argv)
		sp_nomem();
	argv[0] = "moat-remote";
	argv[1] = strrchr(p->rcpts.s, '@') + 1; /* as given; checked */
	argv[2] = p->sender.s;
	for (i = 0; i < p->nrcpt; i++) {
		argv[3 + i] = p->rcpts.s + off;
		off += strlen(p->rcpts.s + off) + 1;
	}
	if (str_copys(&rootenv, "MOAT_ROOT=") == -1 ||
	    str_cats(&rootenv, sp.root.s) == -1 || str_0(&rootenv) == -1)
		sp_nomem();
	down_env(&downenv);
	envp[0] = "PATH=/usr/bin:/bin";
	envp[1] = rootenv.s;
	envp[2] = downenv.s;
	envp[3] = 0;
	if (pipe2(pi, O_CLOEXEC) == -1) {
		sp_result(p->n, 'Z', p->nrcpt,
		       "moat-rspawn: unable to create a pipe: %s (#4.3.0)",
		       strerror(errno));
		goto done;
	}
	pid = remote_spawn(mess, pi[1], argv, downenv.s);
	if (pid == -2) { /* a child of the server may have it: defer */
		close(pi[1]);
		close(pi[0]);
		sp_result(p->n, 'Z', p->nrcpt,
		       "moat-rspawn: the fork server went away (#4.3.0)");
		goto done;
	}
	if (pid == -1)
		pid = fork();
	if (pid == 0)
		child(mess, pi[1], argv, envp, p->nrcpt);
	close(pi[1]);
	if (pid == -1) {
		sp_result(p->n, 'Z', p->nrcpt,
		       "moat-rspawn: unable to fork: %s (#4.3.0)",
		       strerror(errno));
		close(pi[0]);
		goto done;
	}
	if (fcntl(pi[0], F_SETFL, O_NONBLOCK) == -1)
		log_sys("unable to make a report pipe non-blocking");
	k = &kids[nkids++];
	k->pid = pid;
	k->n = p->n;
	k->nrcpt = p->nrcpt;
	k->d = d;
	k->fd = pi[0];
	k->exited = 0;
	k->status = 0;
	k->overflow = 0;
	k->out = (str)STR_INIT;
	d->running++;
	started = 1;
done:
	if (mess != -1)
		close(mess);
	free(argv);
	str_free(&path);
	str_free(&rel);
	str_free(&rootenv);
	str_free(&downenv);
	return started;
}

/* start d's waiting jobs while it has free slots */
static void
run_domain(struct dom *d)
{
	while (!stopping && d->head && d->running < conc_dom) {
		struct pend *p = d->head;

		d->head = p->next;
		if (!d->head)
			d->tail = 0;
		nwaiting--;
		launch(d, p);
		pend_free(p);
	}
	dom_release(d);
}

static void
run_all(void)
{
	size_t b;

	for (b = 0; b < DOM_BUCKETS; b++) {
		struct dom *d = doms[b], *next;

		for (; d; d = next) {
			next = d->next; /* run_domain may free d */
			run_domain(d);
		}
	}
}

/* answer every job that has not started: we are stopping */
static void
drop_waiting(void)
{
	size_t b;

	for (b = 0; b < DOM_BUCKETS; b++) {
		struct dom *d = doms[b], *next;

		for (; d; d = next) {
			next = d->next;
			while (d->head) {
				struct pend *p = d->head;

				d->head = p->next;
				sp_result(p->n, 'Z', p->nrcpt,
				       "moat-rspawn: stopping before this "
				       "delivery started (#4.3.0)");
				pend_free(p);
				nwaiting--;
			}
			d->tail = 0;
			dom_release(d);
		}
	}
}

static const char *
domain_of(const char *a, size_t *len)
{
	const char *at = strrchr(a, '@');

	if (!at) {
		*len = 0;
		return 0;
	}
	*len = strlen(at + 1);
	return at + 1;
}

/* take j's job; 0 if all is well, -1 if too many are waiting */
static int
accept_job(struct job *j)
{
	const char *dom, *r = j->rcpts.s;
	size_t dlen, i, l;
	struct pend *p;
	struct dom *d;

	dom = domain_of(r, &dlen);
	if (!dom || !dlen) {
		log_msg("job %lu: recipient without a domain", j->n);
		sp_result(j->n, 'Z', j->nrcpt,
		       "moat-rspawn: protocol error: a remote recipient "
		       "without a domain (#4.3.5)");
		return 0;
	}
	for (i = 1; i < j->nrcpt; i++) {
		const char *o;

		r += strlen(r) + 1;
		o = domain_of(r, &l);
		if (!o || l != dlen || strncasecmp(o, dom, dlen)) {
			log_msg("job %lu: recipients in different domains",
			        j->n);
			sp_result(j->n, 'Z', j->nrcpt,
			       "moat-rspawn: protocol error: recipients "
			       "of different domains in one job (#4.3.5)");
			return 0;
		}
	}
	d = dom_get(dom, dlen);
	if (d->running >= conc_dom && nwaiting >= WAIT_MAX) {
		log_msg("protocol error: more than %d jobs waiting", WAIT_MAX);
		sp_result(j->n, 'Z', j->nrcpt,
		       "moat-rspawn: too many deliveries waiting (#4.3.0)");
		dom_release(d);
		return -1;
	}
	p = calloc(1, sizeof *p);
	if (!p)
		sp_nomem();
	p->n = j->n;
	p->id = j->id;
	p->nrcpt = j->nrcpt;
	/* the job's buffers move to p; job_get makes new ones */
	p->sender = j->sender;
	p->rcpts = j->rcpts;
	j->sender = (str)STR_INIT;
	j->rcpts = (str)STR_INIT;
	if (d->tail)
		d->tail->next = p;
	else
		d->head = p;
	d->tail = p;
	nwaiting++;
	run_domain(d);
	return 0;
}

/* ---- finishing a delivery ---- */

/* read what the pipe has; 0 at EOF or error (fd closed), 1 otherwise */
static int
drain(struct kid *k)
{
	return sp_drain(&k->fd, &k->out, OUT_MAX, &k->overflow);
}

static const char *
default_text(char st)
{
	if (st == 'K')
		return "delivered";
	if (st == 'D')
		return "moat-remote: permanent failure, no reason given "
		       "(#5.3.0)";
	return "moat-remote: temporary failure, no reason given (#4.3.0)";
}

/* a text field (after its tag) into texts, sanitized, NUL-terminated */
static void
cat_text(str *texts, char st, const char *t)
{
	if (!*t)
		t = default_text(st);
	if (job_cattext(texts, t, strlen(t)) == -1)
		sp_nomem();
}

/*
 * moat-remote's report into per-recipient statuses and texts; the down
 * hosts it names are remembered.  -1 if the report is not well formed.
 */
static int
parse_report(struct kid *k, char *st, str *texts)
{
	const char *s = k->out.s, *msg = 0;
	size_t len = k->out.len, pos = 0, nf = 0, i;
	time_t now = mono();

	if (k->overflow || (len && s[len - 1] != 0))
		return -1;
	/* pass 1: the form */
	while (pos < len) {
		const char *f = s + pos;
		size_t l = strlen(f);

		if (nf <= k->nrcpt) {
			if (l == 0 ||
			    (f[0] != 'K' && f[0] != 'Z' && f[0] != 'D'))
				return -1;
			if (nf == k->nrcpt)
				msg = f;
		} else if (l == 0 || f[0] != 'T') {
			return -1;
		}
		nf++;
		pos += l + 1;
	}
	if (!msg)
		return -1;
	/* pass 2: results, then the down hosts */
	for (pos = 0, i = 0; i < k->nrcpt; i++) {
		const char *f = s + pos;

		pos += strlen(f) + 1;
		if (f[0] == 'K') {
			st[i] = msg[0];
			cat_text(texts, msg[0], msg + 1);
		} else {
			st[i] = f[0];
			cat_text(texts, f[0], f + 1);
		}
	}
	pos += strlen(msg) + 1;
	while (pos < len) {
		const char *f = s + pos;
		char ip[INET6_ADDRSTRLEN];

		pos += strlen(f) + 1;
		if (canon_ip(f + 1, ip, sizeof ip) == 0) {
			down_add(ip, now);
		} else {
			char e[100];
			log_escape(e, sizeof e, f + 1, strlen(f + 1));
			log_msg("job %lu: moat-remote named a down host that "
			        "is not an address: %s",
			        k->n, e);
		}
	}
	return 0;
}

static void
finish(struct kid *k)
{
	char st[JOB_RCPT_MAX];
	str texts = STR_INIT;
	struct dom *d = k->d;
	int ok = 0;

	if (k->fd != -1) {
		/* moat-remote has exited: what it wrote is in the pipe; a
		 * process it left behind holding the pipe is not waited for */
		drain(k);
		if (k->fd != -1) {
			close(k->fd);
			k->fd = -1;
		}
	}
	if (WIFEXITED(k->status) && WEXITSTATUS(k->status) == 0) {
		ok = parse_report(k, st, &texts) == 0;
		if (!ok)
			log_msg("moat-remote (job %lu) wrote a malformed "
			        "report (%zu bytes%s)",
			        k->n, k->out.len,
			        k->overflow ? ", too long" : "");
	} else if (WIFSIGNALED(k->status)) {
		log_msg("moat-remote (job %lu) killed by signal %d", k->n,
		        WTERMSIG(k->status));
	} else {
		log_msg("moat-remote (job %lu) exited %d", k->n,
		        WEXITSTATUS(k->status));
	}
	if (ok) {
		sp_put(k->n, st, texts.s, k->nrcpt);
	} else {
		sp_result(k->n, 'Z', k->nrcpt, "%s", crashed);
	}
	str_free(&texts);
	str_free(&k->out);
	*k = kids[--nkids];
	/* k is gone; d's next job may start (and grow kids) */
	d->running--;
	run_domain(d);
}

/* a moat-remote ended: ours, or the fork server's (it says so) */
static void
kid_ended(pid_t pid, int status)
{
	size_t i;

	for (i = 0; i < nkids; i++)
		if (kids[i].pid == pid && !kids[i].exited) {
			kids[i].exited = 1;
			kids[i].status = status;
			return;
		}
}

/* the fork server, before its exec: what a moat-remote gets, and not
 * moat-send's descriptors */
static void
server_setup(void)
{
	sigset_t none;
	int fd = open("/dev/null", O_RDWR);

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, 0);
	signal(SIGPIPE, SIG_DFL);
	if (fd == -1 || dup2(fd, 0) == -1 || dup2(fd, 1) == -1)
		_exit(111);
	if (fd > 2)
		close(fd);
	if (clearenv() != 0 || setenv("PATH", "/usr/bin:/bin", 1) == -1 ||
	    setenv("MOAT_ROOT", sp.root.s, 1) == -1)
		_exit(111);
}

static void
reap(void)
{
	int status;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		if (!fsc_reaped(&fs, pid, status))
			kid_ended(pid, status);
	fsc_drain(&fs);
	for (i = 0; i < nkids;) {
		if (kids[i].exited)
			finish(&kids[i]); /* moves the last kid to i */
		else
			i++;
	}
}

/* ---- results out ---- */

/* ---- the loop ---- */

static void
setup(void)
{
	sp_setup();
	read_controls(1);
	if (bin_path(&remote_bin, "moat-remote") == -1)
		die_sys(111, "unable to find my own directory");
}

int
main(int argc, char **argv)
{
	struct job j = {0, 0, STR_INIT, STR_INIT, 0};
	str in = STR_INIT;
	struct pollfd *pfd = 0;
	size_t apfd = 0;
	sigset_t set;
	int sfd, reading = 1;
	static char *fs_prog[2];

	log_init(argc > 0 ? argv[0] : "moat-rspawn");
	if (argc > 1)
		die(100, "usage: moat-rspawn (jobs on fd 0, results on fd 1)");
	if (getuid() == 0 || geteuid() == 0)
		die(111, "refusing to run as root");
	setup();

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, 0) == -1)
		die_sys(111, "unable to block signals");
	sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd == -1)
		die_sys(111, "unable to create a signalfd");
	/* moat-remote runs as a fork server: no exec, loader and libc
	 * start-up per delivery; what a dead server leaves is ours */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		die_sys(111, "unable to become a subreaper");
	fsc_init(&fs);
	fs_prog[0] = remote_bin.s;
	fs.prog = fs_prog;
	fs.child_setup = server_setup;
	fs.ended = kid_ended;
	fs.max_use = FS_MAX_USE;

	for (;;) {
		size_t np = 0, i, ikid;
		int pin = -1, pout = -1;

		if (!reading) {
			stopping = 1;
			if (nwaiting)
				drop_waiting();
		}
		if (!reading && nkids == 0 && (sp.out.len == 0 || sp.dead))
			break;
		if (apfd < nkids + 5) {
			size_t na = nkids + 64;
			struct pollfd *p = realloc(pfd, na * sizeof *pfd);
			if (!p)
				sp_nomem();
			pfd = p;
			apfd = na;
		}
		pfd[np++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		if (reading) {
			pin = (int)np;
			pfd[np++] = (struct pollfd){.fd = 0, .events = POLLIN};
		}
		if (sp.out.len && !sp.dead) {
			pout = (int)np;
			pfd[np++] = (struct pollfd){.fd = 1, .events = POLLOUT};
		}
		pfd[np++] = (struct pollfd){.fd = fs.sock, .events = POLLIN};
		pfd[np++] = (struct pollfd){.fd = fs.old, .events = POLLIN};
		ikid = np;
		for (i = 0; i < nkids; i++)
			pfd[np++] =
			    (struct pollfd){.fd = kids[i].fd, .events = POLLIN};
		/* fd -1 entries are ignored by poll */
		if (poll(pfd, (nfds_t)np, -1) == -1) {
			if (errno == EINTR)
				continue;
			die_sys(111, "poll");
		}
		if (pfd[0].revents) {
			struct signalfd_siginfo si;

			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGTERM ||
				    si.ssi_signo == SIGINT) {
					reading = 0;
					stopping = 1;
				} else if (si.ssi_signo == SIGHUP) {
					read_controls(0);
					fsc_close(&fs, 0); /* and moat-remote */
					run_all();
				}
			}
		}
		/* kids' output first: indexes shift once reap() runs */
		for (i = 0; i < nkids; i++)
			if (kids[i].fd != -1 &&
			    pfd[ikid + i].fd == kids[i].fd &&
			    pfd[ikid + i].revents)
				drain(&kids[i]);
		reap();
		if (pin != -1 && reading && pfd[pin].revents)
			reading = sp_read_jobs(&in, &j, accept_job);
		if (pout != -1 && pfd[pout].revents)
			sp_flush();
	}
	fs.stopping = 1;
	fsc_close(&fs, 1);
	job_free(&j);
	str_free(&in);
	free(pfd);
	free(kids);
	return sp.failed || sp.dead ? 111 : 0;
}
