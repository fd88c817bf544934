/*
 * moat-send: the scheduler.
 *
 * Runs as: moats (the run user under `moat run`), started by moat-start or
 * `moat run` with three sockets: fd 3 to moat-lspawn, fd 4 to moat-rspawn
 * (may be closed: remote mail then waits), fd 5 to moat-clean.
 * Reads: ROOT/control (locals, virtualdomains, percenthack, envnoathost,
 * concurrencylocal, concurrencyremote, queuelifetime, bounce*, me),
 * queue/todo, mess, info, local, remote, bounce; lock/trigger.
 * Writes: queue/info, local, remote, bounce, error (its own directories);
 * asks moat-clean to remove todo/intd/mess files; injects bounces through
 * moat-queue; one log line per event on stderr.
 *
 * Life of a message here: a todo/ entry (seen through the trigger fifo, or
 * by the periodic rescan) is preprocessed in batches: its recipients are
 * rewritten (qmail's order: envnoathost, percenthack, locals,
 * virtualdomains) and written to local/ and remote/ as 'T' (pending)
 * records, the sender to info/.  They are fsynced, and then moat-clean
 * removes todo and intd, only when the message must wait (a deferral, a
 * bounce to retry, SYNC_AFTER seconds, a stop): until then todo stays the
 * commit mark, and mail delivered at its first attempt never pays for the
 * flushes (its todo is removed when it is retired).  After a crash of
 * moat-send alone (info/ names this boot), such a message is taken up
 * from its files, done marks included.  Each attempt sends
 * every pending recipient as a job (one
 * per local recipient, one per remote domain) within the concurrency
 * limits; a success or permanent failure flips the record's tag to 'D' in
 * place (a permanent failure is first appended to bounce/ and fsynced).  A
 * deferral waits for the next attempt: birth + (isqrt(age) + c)^2, c = 10
 * local, 20 remote, kept across restarts as the channel file's mtime.
 * After queuelifetime a deferral counts as a failure.  When no job of the
 * message is running and bounce/ holds failures, the bounce (an RFC 3464
 * report) is injected at once, without waiting for deferred recipients.
 * When nothing is pending, local/, remote/, info/ and then mess/ go.
 *
 * New mail cannot starve delivery: at most PRE_BATCH todo entries are
 * preprocessed between two rounds of dispatching and result handling.
 *
 * For `moat queue`: every deferral and permanent failure is also appended
 * to queue/error/N/id, the last error of each recipient (format and bounds
 * in lasterr.h).  It only informs, so it is not fsynced and a failure to
 * write it is logged and ignored (a queue without error/ records nothing);
 * it is removed with the leftovers before preprocessing and, when the
 * message is retired, before info/.
 *
 * One moat-send per queue: it holds an exclusive flock on queue/info
 * (waiting up to LOCK_WAIT seconds for it, since `moat queue remove` holds
 * it for a moment while it removes a message no moat-send is handling),
 * then writes its pid to queue/info/pid (through queue/info/pid.tmp and a
 * rename; removed at a clean exit) so `moat queue retry` can signal it.
 * The scan of info/ reads only the split subdirectories, so the pid file
 * is never taken for a message.
 *
 * Signals: SIGALRM retry everything now; SIGHUP re-read the control
 * files; SIGTERM stop starting deliveries, wait for running ones, exit 0.
 * Exit codes: 0 after SIGTERM, 111 on fatal errors (a lost spawner).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "date.h"
#include "dsn.h"
#include "io.h"
#include "envelope.h"
#include "job.h"
#include "lasterr.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "route.h"
#include "str.h"

#define FD_LOCAL 3
#define FD_REMOTE 4
#define FD_CLEAN 5
#define PRE_BATCH 64            /* todo entries per round */
#define RESCAN_EVERY 600        /* seconds between safety-net rescans */
#define REAP_EVERY 3600         /* seconds between orphan reapings */
#define ORPHAN_AGE (36 * 3600)  /* mess/ without todo or info */
#define BOUNCE_RETRY 60         /* seconds before a failed bounce is retried */
#define BOUNCE_CAP (64 * 1024)  /* bytes of the original in a bounce */
#define STOP_WAIT 120           /* seconds SIGTERM waits for deliveries */
#define LOCK_WAIT 5             /* seconds to wait for the queue lock */
#define SYNC_BATCH 256          /* messages flushed per round, at most */
#define SYNC_AFTER 2            /* seconds (less one, at the least) a
                                 * preprocessed message may stay unsynced
                                 * while its deliveries run */

enum { LOCAL, REMOTE };
static const char *chan_dir[2] = {"local", "remote"};
static const int chan_c[2] = {10, 20};

/* M_RETIRING: finished, but moat-clean has not yet confirmed removing
 * its files; the id (an inode number) stays reserved until it has, so a
 * stale todo/ entry is never taken up again and a new message that reuses
 * the inode is never mistaken for the old one */
enum { M_TODO, M_ACTIVE, M_RETIRING };

struct msg {
	unsigned long long id;
	time_t birth;
	time_t next[2];        /* next attempt; 0: nothing scheduled */
	time_t bounce_next;    /* retry of a failed bounce injection */
	unsigned busy[2];      /* jobs in flight */
	unsigned char pending[2];
	unsigned char ready[2]; /* in the ready queue */
	unsigned char state;
	unsigned char bounce;  /* bounce/ has records */
	unsigned char retodo;  /* M_RETIRING, and todo/ has its id again */
	unsigned char unsynced; /* info/local/remote written, not yet synced:
				 * todo/ stays, the message's commit mark
				 * (1; 2 being synced; 3 a flush failed) */
	time_t sync_by;        /* when unsynced: sync at the latest then */
	unsigned char reretire; /* M_RETIRING for todo/ only: retire() again */
	unsigned cleaning;     /* moat-clean requests not yet answered */
	/* the attempt being dispatched */
	unsigned char *sent[2]; /* per record: already given to a job */
	size_t cursor[2];
};

/* ------------------------------------------------------------ tables */

static struct msg **tab;
static size_t tab_cap, tab_n;

static size_t
hash(unsigned long long id)
{
	id ^= id >> 33;
	id *= 0xff51afd7ed558ccdULL;
	id ^= id >> 33;
	return (size_t)id;
}

static struct msg *
msg_find(unsigned long long id)
{
	size_t i;

	if (!tab_cap)
		return 0;
	for (i = hash(id) & (tab_cap - 1); tab[i]; i = (i + 1) & (tab_cap - 1))
		if (tab[i]->id == id)
			return tab[i];
	return 0;
}

static void
tab_insert(struct msg *m)
{
	size_t i;

	for (i = hash(m->id) & (tab_cap - 1); tab[i];
	     i = (i + 1) & (tab_cap - 1))
		;
	tab[i] = m;
}

static struct msg *
msg_add(unsigned long long id)
{
	struct msg *m;

	if ((tab_n + 1) * 2 > tab_cap) {
		struct msg **old = tab;
		size_t oldcap = tab_cap, i;

		tab_cap = tab_cap ? tab_cap * 2 : 1024;
		tab = calloc(tab_cap, sizeof *tab);
		if (!tab)
			die(111, "out of memory");
		for (i = 0; i < oldcap; i++)
			if (old[i])
				tab_insert(old[i]);
		free(old);
	}
	m = calloc(1, sizeof *m);
	if (!m)
		die(111, "out of memory");
	m->id = id;
	tab_insert(m);
	tab_n++;
	return m;
}

static void
msg_del(struct msg *m)
{
	size_t i = hash(m->id) & (tab_cap - 1), j;

	while (tab[i] != m)
		i = (i + 1) & (tab_cap - 1);
	tab[i] = 0;
	tab_n--;
	/* re-place the rest of the cluster (linear probing deletion) */
	for (j = (i + 1) & (tab_cap - 1); tab[j]; j = (j + 1) & (tab_cap - 1)) {
		struct msg *x = tab[j];
		tab[j] = 0;
		tab_insert(x);
	}
	free(m->sent[0]);
	free(m->sent[1]);
	free(m);
}

/* FIFO of ids: todo backlog, and a ready queue per channel */
struct fifo {
	unsigned long long *v;
	size_t head, n, cap;
};

static struct fifo todo_q, ready_q[2];
/* unsynced messages: in preprocessing order (so by sync_by), and those
 * that must be synced at once (see sync_due) */
static struct fifo sync_q, syncnow_q;

static void
fifo_push(struct fifo *f, unsigned long long id)
{
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 256, i;
		unsigned long long *v = malloc(nc * sizeof *v);

		if (!v)
			die(111, "out of memory");
		for (i = 0; i < f->n; i++)
			v[i] = f->v[(f->head + i) % f->cap];
		free(f->v);
		f->v = v;
		f->cap = nc;
		f->head = 0;
	}
	f->v[(f->head + f->n) % f->cap] = id;
	f->n++;
}

static unsigned long long
fifo_front(struct fifo *f)
{
	return f->v[f->head];
}

static void
fifo_pop(struct fifo *f)
{
	f->head = (f->head + 1) % f->cap;
	f->n--;
}

/* min-heap of retry times; stale entries are skipped when popped */
struct timer {
	time_t when;
	unsigned long long id;
	int chan; /* LOCAL, REMOTE, or 2: bounce retry */
};

static struct timer *heap;
static size_t heap_n, heap_cap;

static void
heap_push(time_t when, unsigned long long id, int chan)
{
	size_t i;

	if (heap_n == heap_cap) {
		size_t nc = heap_cap ? heap_cap * 2 : 1024;
		struct timer *h = realloc(heap, nc * sizeof *h);

		if (!h)
			die(111, "out of memory");
		heap = h;
		heap_cap = nc;
	}
	i = heap_n++;
	while (i > 0 && heap[(i - 1) / 2].when > when) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i].when = when;
	heap[i].id = id;
	heap[i].chan = chan;
}

static struct timer
heap_pop(void)
{
	struct timer top = heap[0], last = heap[--heap_n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= heap_n)
			break;
		if (c + 1 < heap_n && heap[c + 1].when < heap[c].when)
			c++;
		if (last.when <= heap[c].when)
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (heap_n)
		heap[i] = last;
	return top;
}

/* ------------------------------------------------------------ config */

static str me, envnoathost, bouncefrom, bouncehost, dbto, dbhost;
static str locals, vdoms, phack;
static size_t n_locals, n_vdoms, n_phack;
static unsigned long long conc[2], lifetime, maxrcptremote;

static void
config(void)
{
	unsigned long long v;

	if (ctl_line("me", &me) < 0 ||
	    ctl_line("envnoathost", &envnoathost) < 0 ||
	    ctl_line("bouncefrom", &bouncefrom) < 0 ||
	    ctl_line("bouncehost", &bouncehost) < 0 ||
	    ctl_line("doublebounceto", &dbto) < 0 ||
	    ctl_line("doublebouncehost", &dbhost) < 0 ||
	    ctl_list("locals", &locals, &n_locals) < 0 ||
	    ctl_list("virtualdomains", &vdoms, &n_vdoms) < 0 ||
	    ctl_list("percenthack", &phack, &n_phack) < 0 ||
	    ctl_num("queuelifetime", &lifetime) < 0)
		die_sys(111, "unable to read the control files");
	if (ctl_num("maxrcptremote", &v) < 0)
		die_sys(111, "unable to read control/maxrcptremote");
	maxrcptremote = v ? (v > JOB_RCPT_MAX ? JOB_RCPT_MAX : v) : 1;
	if (ctl_num("concurrencylocal", &v) < 0)
		die_sys(111, "unable to read control/concurrencylocal");
	conc[LOCAL] = v ? (v > 65000 ? 65000 : v) : 1;
	if (ctl_num("concurrencyremote", &v) < 0)
		die_sys(111, "unable to read control/concurrencyremote");
	conc[REMOTE] = v ? (v > 65000 ? 65000 : v) : 1;
}

/* -------------------------------------------------------- connections */

struct conn {
	int fd;
	str in, out;
	size_t outpos; /* bytes of out written */
	int dead;
};

static struct conn spawner[2], clean;
static unsigned inflight[2];

/* clean's outstanding requests (ids, and their kinds), to log failures */
static struct fifo clean_q, clean_kq;

static void
conn_queue(struct conn *c, const char *b, size_t n)
{
	if (str_catb(&c->out, b, n) == -1)
		die(111, "out of memory");
}

static void
conn_write(struct conn *c)
{
	ssize_t w;

	if (!c->out.len)
		return;
	w = write(c->fd, c->out.s + c->outpos, c->out.len - c->outpos);
	if (w < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		die_sys(111, "lost a helper (fd %d)", c->fd);
	}
	str_done(&c->out, &c->outpos, (size_t)w);
}

static void
clean_request(char kind, unsigned long long id)
{
	char buf[32];
	int n = kind == 'P' ? snprintf(buf, sizeof buf, "P")
			    : snprintf(buf, sizeof buf, "%c%llu", kind, id);

	conn_queue(&clean, buf, (size_t)n + 1);
	fifo_push(&clean_q, id);
	if (kind != 'P') {
		struct msg *m = msg_find(id);
		if (m)
			m->cleaning++;
	}
	fifo_push(&clean_kq, (unsigned char)kind);
}

/* ------------------------------------------------------------ files */

static void
qpath(char *buf, size_t size, const char *dir, unsigned long long id)
{
	snprintf(buf, size, "queue/%s/%llu/%llu", dir, id % QUEUE_SPLIT, id);
}

static int
slurp(const char *fn, str *out)
{
	return io_readfile(fn, out, (size_t)-1, O_NOFOLLOW);
}

static int
write_file(const char *fn, const str *data, int *fdout)
{
	int fd = open(fn, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		      0600);
	size_t off = 0;

	if (fd == -1)
		return -1;
	while (off < data->len) {
		ssize_t w = write(fd, data->s + off, data->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	*fdout = fd;
	return 0;
}

/* --------------------------------------------------------- rewriting */

static int
ieq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && !strncasecmp(a, b, an);
}

static int
in_list(const str *items, size_t n, const char *s, size_t len)
{
	size_t i, off = 0;

	for (i = 0; i < n; i++) {
		const char *it = items->s + off;
		size_t l = strlen(it);

		off += l + 1;
		if (ieq(it, l, s, len))
			return 1;
	}
	return 0;
}

/* rewrite one recipient into out; 1 local, 0 remote */
static int
rewrite(const char *addr, str *out)
{
	const char *at, *dom;
	str v = STR_INIT;
	size_t dl;
	int loops, r;

	if (str_copys(out, addr) == -1)
		die(111, "out of memory");
	if (!memchr(out->s, '@', out->len) &&
	    (str_catc(out, '@') == -1 ||
	     str_catb(out, envnoathost.s, envnoathost.len) == -1))
		die(111, "out of memory");
	/* user%host@domain -> user@host for percenthack domains */
	for (loops = 0; loops < 10; loops++) {
		char *pct;

		at = memrchr(out->s, '@', out->len);
		dom = at + 1;
		dl = out->len - (size_t)(dom - out->s);
		if (!in_list(&phack, n_phack, dom, dl))
			break;
		pct = memrchr(out->s, '%', (size_t)(at - out->s));
		if (!pct)
			break;
		*pct = '@';
		out->len = (size_t)(at - out->s);
	}
	if (str_0(out) == -1)
		die(111, "out of memory");
	at = strrchr(out->s, '@');
	dom = at + 1;
	dl = strlen(dom);
	if (in_list(&locals, n_locals, dom, dl))
		return 1;
	/* virtualdomains: user@domain, domain, .suffixes, then "" */
	r = vdom_rewrite(&vdoms, n_vdoms, out->s, out->len, &v);
	if (r == -1 || (r == 1 && str_copyb(out, v.s, v.len + 1) == -1))
		die(111, "out of memory");
	if (r == 1)
		out->len--;
	str_free(&v);
	return r;
}

/* ------------------------------------------------------ preprocessing */

static time_t now;

static void
schedule(struct msg *m, int c, time_t when)
{
	m->next[c] = when;
	if (when <= now) {
		if (!m->ready[c]) {
			m->ready[c] = 1;
			fifo_push(&ready_q[c], m->id);
		}
	} else {
		heap_push(when, m->id, c);
	}
}

/* this boot's id: info/ written in this boot, and not flushed, is still
 * exactly as written (the page cache), which a crash of a process does
 * not change; "" when the kernel does not say */
static str bootid;

static void
read_bootid(void)
{
	str b = STR_INIT;

	if (io_readfile("/proc/sys/kernel/random/boot_id", &b, 64, 0) == -1) {
		str_free(&b);
		return;
	}
	while (b.len && (b.s[b.len - 1] == '\n' || b.s[b.len - 1] == 0))
		b.len--;
	if (b.len && !memchr(b.s, 0, b.len))
		bootid = b;
	else
		str_free(&b);
}

struct pre {
	struct msg *m;
	int fds[3];
	int nfd;
	int nr[2];
	size_t size;
	str sender;
	unsigned long uid, pid;
};

static unsigned long long pre_failed; /* todo/ subdirectories to retry */

static void
pre_fail(struct pre *p, const char *why)
{
	char fn[64];
	int i, c;

	log_sys("msg %llu: %s; will retry", p->m->id, why);
	for (i = 0; i < p->nfd; i++)
		close(p->fds[i]);
	p->nfd = 0;
	/* info first: with todo/, it says the others are complete */
	qpath(fn, sizeof fn, "info", p->m->id);
	unlink(fn);
	for (c = 0; c < 2; c++) {
		qpath(fn, sizeof fn, chan_dir[c], p->m->id);
		unlink(fn);
	}
	/* todo/ stays: the next trigger, whatever it names, tries again */
	pre_failed |= 1ULL << (p->m->id % QUEUE_SPLIT);
	msg_del(p->m);
	p->m = 0;
}

/* read todo, write info/local/remote without syncing */
static void
pre_write(struct pre *p)
{
	struct msg *m = p->m;
	char fn[64];
	str env = STR_INIT, chan[2] = {STR_INIT, STR_INIT}, info = STR_INIT,
	    a = STR_INIT;
	struct stat st;
	size_t i = 0;
	int c, fd;

	p->nfd = 0;
	p->nr[0] = p->nr[1] = 0;
	p->sender.len = 0;
	p->uid = p->pid = 0;
	qpath(fn, sizeof fn, "todo", m->id);
	if (slurp(fn, &env) == -1) {
		if (errno == ENOENT) { /* gone: nothing to do */
			msg_del(m);
			p->m = 0;
		} else {
			pre_fail(p, "unable to read todo");
		}
		goto out;
	}
	qpath(fn, sizeof fn, "mess", m->id);
	if (stat(fn, &st) == -1) {
		log_sys("msg %llu: no message file; dropping the todo entry",
			m->id);
		clean_request('T', m->id);
		m->state = M_RETIRING; /* until moat-clean has removed todo */
		p->m = 0;
		goto out;
	}
	m->birth = st.st_mtime;
	p->size = (size_t)st.st_size;
	/* leftovers of an earlier crash go first, info before the others
	 * (written last, it says that they are complete; see scan_info) */
	qpath(fn, sizeof fn, "info", m->id);
	unlink(fn);
	for (c = 0; c < 2; c++) {
		qpath(fn, sizeof fn, chan_dir[c], m->id);
		unlink(fn);
	}
	qpath(fn, sizeof fn, "error", m->id);
	unlink(fn);
	/* failures recorded before a crash that left todo/ come again */
	qpath(fn, sizeof fn, "bounce", m->id);
	unlink(fn);
	while (i < env.len) {
		const char *f = env.s + i;
		size_t l = strnlen(f, env.len - i);

		i += l + 1;
		if (i > env.len)
			break; /* no NUL: truncated, ignore the tail */
		if (l && f[0] == 'F') {
			if (str_copyb(&p->sender, f + 1, l - 1) == -1)
				die(111, "out of memory");
		} else if (l && f[0] == 'u') {
			p->uid = strtoul(f + 1, 0, 10);
		} else if (l && f[0] == 'p') {
			p->pid = strtoul(f + 1, 0, 10);
		} else if (l > 1 && f[0] == 'T') {
			c = rewrite(f + 1, &a) ? LOCAL : REMOTE;
			if (env_add(&chan[c], 'T', a.s, a.len) == -1)
				die(111, "out of memory");
			p->nr[c]++;
		}
	}
	if (str_0(&p->sender) == -1)
		die(111, "out of memory");
	for (c = 0; c < 2; c++) {
		if (!p->nr[c])
			continue;
		qpath(fn, sizeof fn, chan_dir[c], m->id);
		if (write_file(fn, &chan[c], &fd) == -1) {
			pre_fail(p, "unable to write a channel file");
			goto out;
		}
		p->fds[p->nfd++] = fd;
	}
	if (env_add(&info, 'F', p->sender.s, p->sender.len) == -1 ||
	    str_catc(&info, 'B') == -1 ||
	    str_catu(&info, (unsigned long long)m->birth) == -1 ||
	    str_catc(&info, 0) == -1 ||
	    (bootid.len && env_add(&info, 'b', bootid.s, bootid.len) == -1))
		die(111, "out of memory");
	qpath(fn, sizeof fn, "info", m->id);
	if (write_file(fn, &info, &fd) == -1) {
		pre_fail(p, "unable to write info");
		goto out;
	}
	p->fds[p->nfd++] = fd;
out:
	str_free(&env);
	str_free(&chan[0]);
	str_free(&chan[1]);
	str_free(&info);
	str_free(&a);
}

static void
log_new(const struct pre *p)
{
	log_msg("new msg %llu size %zu from <%s> qp %lu uid %lu local %d "
		"remote %d",
		p->m->id, p->size, p->sender.s, p->pid, p->uid, p->nr[LOCAL],
		p->nr[REMOTE]);
}

/*
 * Preprocess up to PRE_BATCH todo entries.  Their files are written, not
 * synced: todo/ stays, so a crash before the sync preprocesses the message
 * again (and delivers it again: at least once).  Deliveries start at once;
 * a message whose first attempt settles everything is retired without
 * ever being synced (retire removes its todo too), which saves two files'
 * and two directories' flushes for most mail.  The others are synced by
 * sync_due.
 */
static void
preprocess(void)
{
	static struct pre batch[PRE_BATCH];
	size_t n = 0, i;
	int k, c;

	while (n < PRE_BATCH && todo_q.n) {
		struct msg *m = msg_find(fifo_front(&todo_q));

		fifo_pop(&todo_q);
		if (!m || m->state != M_TODO)
			continue;
		batch[n].m = m;
		pre_write(&batch[n]);
		if (batch[n].m)
			n++;
	}
	for (i = 0; i < n; i++) {
		struct pre *p = &batch[i];

		for (k = 0; k < p->nfd; k++)
			if (close(p->fds[k]) == -1) {
				pre_fail(p, "unable to write");
				break;
			}
		if (!p->m)
			continue;
		p->nfd = 0;
		log_new(p);
		p->m->state = M_ACTIVE;
		p->m->unsynced = 1;
		p->m->sync_by = now + SYNC_AFTER;
		fifo_push(&sync_q, p->m->id);
		for (c = 0; c < 2; c++) {
			p->m->pending[c] = p->nr[c] > 0;
			if (p->nr[c])
				schedule(p->m, c, now);
		}
		if (!p->nr[0] && !p->nr[1]) /* no recipients at all */
			schedule(p->m, LOCAL, now);
		str_free(&p->sender);
	}
}

/* flush one message's local, remote and info files: a bit per file
 * flushed (1 local, 2 remote, 4 info), -1 on failure */
static int
sync_files(struct msg *m)
{
	static const char *const dirs[3] = {"local", "remote", "info"};
	char fn[64];
	int k, fd, done = 0;

	for (k = 0; k < 3; k++) {
		qpath(fn, sizeof fn, dirs[k], m->id);
		fd = open(fn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd == -1) {
			if (errno == ENOENT && k < 2)
				continue; /* a channel with no recipients */
			log_sys("msg %llu: unable to open %s to sync it",
				m->id, fn);
			return -1;
		}
		if (fsync(fd) == -1) {
			log_sys("msg %llu: unable to sync %s", m->id, fn);
			close(fd);
			return -1;
		}
		close(fd);
		done |= 1 << k;
	}
	return done;
}

/*
 * Commit the unsynced messages that are due: those whose attempt left
 * something waiting (syncnow_q), those unsynced for SYNC_AFTER seconds,
 * or, with all, every one (at a stop).  Their files are flushed, then the
 * directories they are in, once each; only then may moat-clean remove
 * todo and intd (DESIGN.md: the message is in S5).  A message whose files
 * cannot be flushed is never committed from them.  At most
 * SYNC_BATCH per call, so that a backlog does not hold up results.
 */
static void
sync_due(int all)
{
	static struct msg **b;
	static size_t bcap;
	unsigned char dirty[3][QUEUE_SPLIT];
	size_t n = 0, i;
	int k;

	while (n < SYNC_BATCH) {
		struct msg *m;
		unsigned long long id;

		if (syncnow_q.n) {
			id = fifo_front(&syncnow_q);
			fifo_pop(&syncnow_q);
		} else if (sync_q.n) {
			id = fifo_front(&sync_q);
			m = msg_find(id);
			if (m && m->unsynced == 1 && !all && m->sync_by > now)
				break;
			fifo_pop(&sync_q);
		} else {
			break;
		}
		m = msg_find(id);
		if (!m || m->state != M_ACTIVE || m->unsynced != 1)
			continue;
		if (n == bcap) {
			size_t nc = bcap ? bcap * 2 : 64;
			struct msg **nb = realloc(b, nc * sizeof *nb);

			if (!nb)
				die(111, "out of memory");
			b = nb;
			bcap = nc;
		}
		m->unsynced = 2; /* in this batch */
		b[n++] = m;
	}
	if (!n)
		return;
	memset(dirty, 0, sizeof dirty);
	for (i = 0; i < n; i++) {
		struct msg *m = b[i];
		unsigned sub = (unsigned)(m->id % QUEUE_SPLIT);
		int done = sync_files(m);

		if (done == -1) {
			/* a failed flush cannot be trusted when tried again
			 * (the kernel may have dropped the pages): todo/ stays
			 * the commit mark, and the next start preprocesses
			 * the message afresh if it is still there */
			log_msg("msg %llu: stays in todo/ until it is "
				"finished or moat-send restarts", m->id);
			m->unsynced = 3;
			b[i] = 0;
			continue;
		}
		for (k = 0; k < 3; k++)
			if (done & 1 << k)
				dirty[k][sub] = 1;
	}
	for (k = 0; k < 3; k++)
		for (i = 0; i < QUEUE_SPLIT; i++) {
			char d[48];

			if (!dirty[k][i])
				continue;
			snprintf(d, sizeof d, "queue/%s/%zu",
				 k == 2 ? "info" : chan_dir[k], i);
			if (queue_fsync_dir(d) == -1)
				die_sys(111, "unable to sync %s", d);
		}
	for (i = 0; i < n; i++)
		if (b[i]) {
			/* committed to info/: todo and intd may go */
			b[i]->unsynced = 0;
			clean_request('T', b[i]->id);
		}
}

/* m's attempt left it waiting: commit it at the end of this round */
static void
sync_soon(struct msg *m)
{
	if (m->unsynced == 1)
		fifo_push(&syncnow_q, m->id);
}

static void retire(struct msg *m);

/* moat-clean has done all it was asked for m: forget it, and take up a
 * new message that came meanwhile under the same id */
static void
retired(struct msg *m)
{
	unsigned long long id = m->id;
	int again = m->retodo;

	if (m->reretire) { /* todo and intd are gone: now the rest */
		m->reretire = 0;
		m->state = M_ACTIVE;
		retire(m);
		return;
	}
	msg_del(m);
	if (again) {
		m = msg_add(id);
		m->state = M_TODO;
		fifo_push(&todo_q, id);
	}
}

/* --------------------------------------------------------- scanning */

#define SCAN_ALL ((1ULL << QUEUE_SPLIT) - 1)

/* look in the todo/ subdirectories whose bits are set in `which' */
static void
scan_todo(unsigned long long which)
{
	int i;

	for (i = 0; i < QUEUE_SPLIT; i++) {
		char d[32];
		DIR *dir;
		struct dirent *e;

		if (!(which & 1ULL << i))
			continue;
		snprintf(d, sizeof d, "queue/todo/%d", i);
		dir = opendir(d);
		if (!dir) {
			log_sys("unable to scan %s", d);
			continue;
		}
		while ((e = readdir(dir))) {
			char *end;
			unsigned long long id = strtoull(e->d_name, &end, 10);
			struct msg *m;

			if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end)
				continue;
			if ((m = msg_find(id))) {
				/* a new message with a retiring one's id (the
				 * inode freed by moat-clean, reused at once)
				 * is taken up when moat-clean has answered */
				if (m->state == M_RETIRING)
					m->retodo = 1;
				continue; /* known: preprocessed or queued */
			}
			m = msg_add(id);
			m->state = M_TODO;
			fifo_push(&todo_q, id);
		}
		closedir(dir);
	}
}

static int
count_pending(const str *data)
{
	size_t i = 0;
	int n = 0;

	while (i < data->len) {
		size_t l = strnlen(data->s + i, data->len - i);

		if (i + l >= data->len)
			break;
		if (l > 1 && data->s[i] == 'T')
			n++;
		i += l + 1;
	}
	return n;
}

/*
 * Whether info/ of a message still in todo/ can be taken up as it is: it
 * was written in this boot (so a crash of moat-send, not of the machine,
 * cut its first attempt short, and the page cache holds exactly what was
 * written) and is whole.  preprocess writes info/ last and removes it
 * first, so then local/ and remote/ are whole too, with their done marks.
 */
static int
adoptable(const str *info)
{
	size_t k = 0;
	int sender = 0, boot = 0;

	if (!bootid.len || !info->len || info->s[info->len - 1])
		return 0;
	while (k < info->len) {
		size_t l = strnlen(info->s + k, info->len - k);

		if (l && info->s[k] == 'F')
			sender = 1;
		else if (l == bootid.len + 1 && info->s[k] == 'b' &&
			 !memcmp(info->s + k + 1, bootid.s, bootid.len))
			boot = 1;
		k += l + 1;
	}
	return sender && boot;
}

/* start-up: messages already preprocessed, and orphans */
static void
scan_info(void)
{
	str data = STR_INIT;
	int i, c;

	for (i = 0; i < QUEUE_SPLIT; i++) {
		char d[32];
		DIR *dir;
		struct dirent *e;

		snprintf(d, sizeof d, "queue/info/%d", i);
		dir = opendir(d);
		if (!dir)
			die_sys(111, "unable to scan %s", d);
		while ((e = readdir(dir))) {
			char *end, fn[64];
			unsigned long long id = strtoull(e->d_name, &end, 10);
			struct msg *m;
			struct stat st;
			int uncommitted, got;

			if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end)
				continue;
			qpath(fn, sizeof fn, "todo", id);
			uncommitted = access(fn, F_OK) == 0;
			qpath(fn, sizeof fn, "info", id);
			got = slurp(fn, &data) == 0;
			if (uncommitted && !(got && adoptable(&data)))
				continue; /* preprocessing was cut short: redo */
			m = msg_add(id);
			m->state = M_ACTIVE;
			if (uncommitted) {
				/* its first attempt was cut short by a crash
				 * of moat-send: go on from its files, and
				 * commit them at once */
				m->unsynced = 1;
				m->sync_by = now;
				fifo_push(&sync_q, id);
			}
			if (got) {
				size_t k = 0;
				while (k < data.len) {
					size_t l = strnlen(data.s + k,
							   data.len - k);
					if (l > 1 && data.s[k] == 'B')
						m->birth = (time_t)strtoll(
						    data.s + k + 1, 0, 10);
					k += l + 1;
				}
			}
			if (!m->birth)
				m->birth = now;
			for (c = 0; c < 2; c++) {
				qpath(fn, sizeof fn, chan_dir[c], id);
				if (slurp(fn, &data) == -1 ||
				    stat(fn, &st) == -1)
					continue;
				if (count_pending(&data)) {
					m->pending[c] = 1;
					schedule(m, c,
						 st.st_mtime > now ? st.st_mtime
								   : now);
				}
			}
			qpath(fn, sizeof fn, "bounce", id);
			m->bounce = access(fn, F_OK) == 0;
			if (!m->pending[0] && !m->pending[1])
				schedule(m, LOCAL, now); /* finish it */
		}
		closedir(dir);
	}
	str_free(&data);
}

static void
scan_orphans(void)
{
	int i;

	for (i = 0; i < QUEUE_SPLIT; i++) {
		char d[32];
		DIR *dir;
		struct dirent *e;

		snprintf(d, sizeof d, "queue/mess/%d", i);
		dir = opendir(d);
		if (!dir)
			continue;
		while ((e = readdir(dir))) {
			char *end, fn[64];
			unsigned long long id = strtoull(e->d_name, &end, 10);
			struct stat st;

			if (e->d_name[0] < '0' || e->d_name[0] > '9' || *end)
				continue;
			if (msg_find(id))
				continue;
			qpath(fn, sizeof fn, "todo", id);
			if (access(fn, F_OK) == 0)
				continue;
			qpath(fn, sizeof fn, "mess", id);
			if (stat(fn, &st) == 0 && st.st_mtime + ORPHAN_AGE < now) {
				log_msg("removing orphaned message %llu", id);
				clean_request('M', id);
			}
		}
		closedir(dir);
	}
	clean_request('P', 0);
}

/* ------------------------------------------------------------- jobs */

struct job_slot {
	int used;
	int chan;
	unsigned long long id;
	size_t n;
	size_t *off;  /* record offsets in the channel file */
	str rcpts;    /* n NUL-terminated addresses */
};

static struct job_slot *jobs;
static size_t njobs;

static size_t
job_alloc(void)
{
	size_t i;

	for (i = 0; i < njobs; i++)
		if (!jobs[i].used)
			return i;
	{
		size_t nn = njobs ? njobs * 2 : 64;
		struct job_slot *j = realloc(jobs, nn * sizeof *j);

		if (!j)
			die(111, "out of memory");
		memset(j + njobs, 0, (nn - njobs) * sizeof *j);
		jobs = j;
		njobs = nn;
	}
	return i;
}

static const char *
domain_of(const char *a)
{
	const char *at = strrchr(a, '@');
	return at ? at + 1 : "";
}

/* VERP as qmail does it: sender "pre-@host-@[]" to recipient "r@d"
 * becomes "pre-r=d@host" */
static int
verp_sender(str *sender, const char *rcpt)
{
	str v = STR_INIT;
	const char *at, *rat = strrchr(rcpt, '@');
	size_t base = sender->len - 4; /* without "-@[]" */

	sender->s[base] = 0;
	at = strrchr(sender->s, '@');
	if (!at)
		return str_0(sender); /* not the VERP form after all */
	if (str_catb(&v, sender->s, (size_t)(at - sender->s)) == -1 ||
	    str_catb(&v, rcpt, rat ? (size_t)(rat - rcpt) : strlen(rcpt)) == -1 ||
	    (rat && (str_catc(&v, '=') == -1 || str_cats(&v, rat + 1) == -1)) ||
	    str_cats(&v, at) == -1 || str_0(&v) == -1 ||
	    str_copyb(sender, v.s, v.len + 1) == -1)
		return -1;
	sender->len--;
	str_free(&v);
	return 0;
}

/* start the attempt's next job for m on channel c; 0 when none is left */
static int
dispatch_one(struct msg *m, int c, const str *data)
{
	size_t i, nrec = 0, first = (size_t)-1, slot, pos;
	struct job_slot *j;
	const char *dom = 0;
	str rec = STR_INIT;
	str sender = STR_INIT, info = STR_INIT;
	char fn[64];
	int verp;

	/* records, and the first one not yet sent */
	for (pos = 0; pos < data->len; nrec++) {
		size_t l = strnlen(data->s + pos, data->len - pos);

		if (pos + l >= data->len)
			break;
		if (nrec >= m->cursor[c] && first == (size_t)-1 && l > 1 &&
		    data->s[pos] == 'T' && !m->sent[c][nrec])
			first = nrec;
		pos += l + 1;
	}
	if (first == (size_t)-1)
		return 0;
	/* the sender from info/ */
	qpath(fn, sizeof fn, "info", m->id);
	if (slurp(fn, &info) == 0) {
		size_t k = 0;
		while (k < info.len) {
			size_t l = strnlen(info.s + k, info.len - k);
			if (l && info.s[k] == 'F' &&
			    str_copyb(&sender, info.s + k + 1, l - 1) == -1)
				die(111, "out of memory");
			k += l + 1;
		}
	}
	if (str_0(&sender) == -1)
		die(111, "out of memory");
	verp = sender.len > 4 && !strcmp(sender.s + sender.len - 4, "-@[]");
	slot = job_alloc();
	j = &jobs[slot];
	j->used = 1;
	j->chan = c;
	j->id = m->id;
	j->n = 0;
	j->off = 0;
	j->rcpts.len = 0;
	for (pos = 0, i = 0; pos < data->len; i++) {
		const char *f = data->s + pos;
		size_t l = strnlen(f, data->len - pos);

		if (pos + l >= data->len)
			break;
		if (i >= first && l > 1 && f[0] == 'T' && !m->sent[c][i] &&
		    j->n < maxrcptremote) {
			if (i == first)
				dom = domain_of(f + 1);
			if (i == first ||
			    (c == REMOTE && !strcasecmp(domain_of(f + 1), dom))) {
				size_t *o = realloc(j->off,
						    (j->n + 1) * sizeof *o);
				if (!o || str_catb(&j->rcpts, f + 1, l) == -1)
					die(111, "out of memory");
				j->off = o;
				j->off[j->n++] = pos;
				m->sent[c][i] = 1;
			}
		}
		if ((c == LOCAL || verp) && j->n)
			break; /* one recipient per job */
		pos += l + 1;
	}
	m->cursor[c] = first + 1;
	if (verp && verp_sender(&sender, j->rcpts.s) == -1)
		die(111, "out of memory");
	if (job_put(&rec, (unsigned long)slot, m->id, sender.s, j->rcpts.s,
		    j->n) == -1)
		die_sys(111, "unable to build a job");
	conn_queue(&spawner[c], rec.s, rec.len);
	{
		size_t k, off = 0;
		for (k = 0; k < j->n; k++) {
			log_msg("starting delivery %zu: msg %llu to %s %s", slot,
				m->id, chan_dir[c], j->rcpts.s + off);
			off += strlen(j->rcpts.s + off) + 1;
		}
	}
	m->busy[c]++;
	inflight[c]++;
	str_free(&rec);
	str_free(&sender);
	str_free(&info);
	return 1;
}

static void finish_attempt(struct msg *m, int c);

/* dispatch ready messages of channel c while slots are free */
static void
dispatch(int c)
{
	str data = STR_INIT;

	if (spawner[c].dead)
		return;
	while (ready_q[c].n && inflight[c] < conc[c]) {
		struct msg *m = msg_find(fifo_front(&ready_q[c]));
		char fn[64];
		size_t nrec;

		if (!m || !m->ready[c]) {
			fifo_pop(&ready_q[c]);
			continue;
		}
		qpath(fn, sizeof fn, chan_dir[c], m->id);
		if (slurp(fn, &data) == -1) {
			data.len = 0;
			if (errno != ENOENT)
				log_sys("unable to read %s", fn);
		}
		if (!m->sent[c]) {
			nrec = data.len + 1; /* at most one record per byte */
			m->sent[c] = calloc(nrec, 1);
			if (!m->sent[c])
				die(111, "out of memory");
			m->cursor[c] = 0;
		}
		while (inflight[c] < conc[c] && dispatch_one(m, c, &data))
			;
		if (inflight[c] < conc[c]) {
			/* every pending recipient has a job: attempt sent */
			fifo_pop(&ready_q[c]);
			m->ready[c] = 0;
			free(m->sent[c]);
			m->sent[c] = 0;
			if (!m->busy[c])
				finish_attempt(m, c);
		}
	}
	str_free(&data);
}

/* ---------------------------------------------------- bounces, retire */

static unsigned long
isqrt(unsigned long x)
{
	unsigned long r = 0, b = 1UL << (sizeof x * 8 - 2);

	while (b > x)
		b >>= 2;
	while (b) {
		if (x >= r + b) {
			x -= r + b;
			r = (r >> 1) + b;
		} else {
			r >>= 1;
		}
		b >>= 2;
	}
	return r;
}

static int
inject(const char *sender, const char *rcpt, const str *msg)
{
	int mp[2], ep[2], status;
	str prog = STR_INIT, env = STR_INIT;
	pid_t pid;
	int ok = -1;

	if (bin_path(&prog, "moat-queue") == -1)
		return -1;
	if (pipe2(mp, O_CLOEXEC) == -1)
		goto out;
	if (pipe2(ep, O_CLOEXEC) == -1) {
		close(mp[0]);
		close(mp[1]);
		goto out;
	}
	pid = fork();
	if (pid == 0) {
		char *argv[] = {prog.s, 0};
		if (dup2(mp[0], 0) == -1 || dup2(ep[0], 1) == -1)
			_exit(120);
		unsetenv("MOAT_IDFD");
		execv(prog.s, argv);
		_exit(120);
	}
	close(mp[0]);
	close(ep[0]);
	if (pid == -1) {
		close(mp[1]);
		close(ep[1]);
		goto out;
	}
	if (str_catc(&env, 'F') == -1 || str_cats(&env, sender) == -1 ||
	    str_catc(&env, 0) == -1 || str_catc(&env, 'T') == -1 ||
	    str_cats(&env, rcpt) == -1 || str_catc(&env, 0) == -1 ||
	    str_catc(&env, 0) == -1)
		die(111, "out of memory");
	{
		size_t off = 0;
		while (off < msg->len) {
			ssize_t w = write(mp[1], msg->s + off, msg->len - off);
			if (w <= 0) {
				if (w < 0 && errno == EINTR)
					continue;
				break;
			}
			off += (size_t)w;
		}
		close(mp[1]);
		off = 0;
		if (off == 0 && write(ep[1], env.s, env.len) != (ssize_t)env.len)
			log_sys("unable to write the bounce envelope");
		close(ep[1]);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			goto out;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ok = 0;
	else
		log_msg("moat-queue failed with status %d for a bounce",
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
out:
	str_free(&prog);
	str_free(&env);
	return ok;
}

static int
sender_of(unsigned long long id, str *out)
{
	str info = STR_INIT;
	char fn[64];
	size_t k = 0;

	out->len = 0;
	qpath(fn, sizeof fn, "info", id);
	if (slurp(fn, &info) == -1)
		return -1;
	while (k < info.len) {
		size_t l = strnlen(info.s + k, info.len - k);
		if (l && info.s[k] == 'F' &&
		    str_copyb(out, info.s + k + 1, l - 1) == -1)
			die(111, "out of memory");
		k += l + 1;
	}
	str_free(&info);
	return str_0(out);
}

/* inject the bounce for m's failures; 0 sent (or dropped), -1 retry */
static int
send_bounce(struct msg *m)
{
	str data = STR_INIT, sender = STR_INIT, out = STR_INIT, from = STR_INIT,
	    to = STR_INIT;
	struct dsn_rcpt *r = 0;
	struct dsn d;
	size_t n = 0, i = 0, cap = 0;
	char fn[64], qid[32];
	int fd, ret = -1;
	const char *fields[3] = {0, 0, 0};

	qpath(fn, sizeof fn, "bounce", m->id);
	if (slurp(fn, &data) == -1) {
		m->bounce = 0;
		return errno == ENOENT ? 0 : -1;
	}
	if (sender_of(m->id, &sender) == -1)
		goto out;
	/* triples T<rcpt> S<status> D<text>; a torn tail is ignored */
	while (i < data.len) {
		size_t l = strnlen(data.s + i, data.len - i);
		const char *f = data.s + i;

		if (i + l >= data.len)
			break;
		i += l + 1;
		if (f[0] == 'T')
			fields[0] = f + 1, fields[1] = fields[2] = 0;
		else if (f[0] == 'S' && fields[0])
			fields[1] = f + 1;
		else if (f[0] == 'D' && fields[0] && fields[1]) {
			fields[2] = f + 1;
			if (n == cap) {
				struct dsn_rcpt *nr;
				cap = cap ? cap * 2 : 16;
				nr = realloc(r, cap * sizeof *r);
				if (!nr)
					die(111, "out of memory");
				r = nr;
			}
			memset(&r[n], 0, sizeof r[n]);
			r[n].addr = fields[0];
			r[n].action = DSN_FAILED;
			r[n].status = fields[1];
			r[n].diag = fields[2];
			n++;
			fields[0] = 0;
		}
	}
	if (n == 0) {
		ret = 0;
		goto done;
	}
	if (!strcmp(sender.s, "#@[]")) {
		log_msg("msg %llu: triple bounce: discarding the bounce",
			m->id);
		ret = 0;
		goto done;
	}
	if (str_copyb(&from, bouncefrom.s, bouncefrom.len) == -1 ||
	    str_catc(&from, '@') == -1 ||
	    str_catb(&from, bouncehost.s, bouncehost.len) == -1 ||
	    str_0(&from) == -1)
		die(111, "out of memory");
	if (!sender.len) {
		if (!dbto.len) {
			log_msg("msg %llu: double bounce discarded "
				"(doublebounceto is empty)",
				m->id);
			ret = 0;
			goto done;
		}
		if (str_copyb(&to, dbto.s, dbto.len) == -1 ||
		    str_catc(&to, '@') == -1 ||
		    str_catb(&to, dbhost.s, dbhost.len) == -1 ||
		    str_0(&to) == -1)
			die(111, "out of memory");
	} else if (str_copyb(&to, sender.s, sender.len + 1) == -1) {
		die(111, "out of memory");
	} else if (to.len > 5 && !strcmp(to.s + to.len - 5, "-@[]")) {
		/* a VERP sender: the bounce goes to the address made for the
		 * (first) failed recipient, as its deliveries used */
		to.len--;
		if (verp_sender(&to, r[0].addr) == -1)
			die(111, "out of memory");
	}
	snprintf(qid, sizeof qid, "%llu", m->id);
	memset(&d, 0, sizeof d);
	d.reporting_mta = me.s;
	d.from = from.s;
	d.to = to.s;
	d.arrival = m->birth;
	d.now = now;
	d.queue_id = qid;
	d.rcpts = r;
	d.nrcpt = n;
	d.cap = BOUNCE_CAP;
	qpath(fn, sizeof fn, "mess", m->id);
	fd = open(fn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		log_sys("msg %llu: unable to open the message for its bounce",
			m->id);
		goto out;
	}
	if (dsn_build(&out, &d, fd) == -1) {
		close(fd);
		log_sys("msg %llu: unable to build the bounce", m->id);
		goto out;
	}
	close(fd);
	if (inject(sender.len ? "" : "#@[]", to.s, &out) == -1)
		goto out;
	log_msg("bounce msg %llu to <%s>: %zu recipient%s", m->id, to.s, n,
		n == 1 ? "" : "s");
	ret = 0;
done:
	qpath(fn, sizeof fn, "bounce", m->id);
	if (ret == 0 && unlink(fn) == -1 && errno != ENOENT)
		log_sys("unable to remove %s", fn);
	if (ret == 0)
		m->bounce = 0;
out:
	free(r);
	str_free(&data);
	str_free(&sender);
	str_free(&out);
	str_free(&from);
	str_free(&to);
	return ret;
}

static void
retire(struct msg *m)
{
	char fn[64];
	int c;

	if (m->unsynced) {
		/* never committed: todo and intd go first, so that a crash
		 * meanwhile finds the files that say it is done; retired()
		 * comes back here when moat-clean has answered */
		m->unsynced = 0;
		m->reretire = 1;
		clean_request('T', m->id);
		m->state = M_RETIRING;
		return;
	}
	for (c = 0; c < 2; c++) {
		qpath(fn, sizeof fn, chan_dir[c], m->id);
		if (unlink(fn) == -1 && errno != ENOENT)
			log_sys("unable to remove %s", fn);
	}
	qpath(fn, sizeof fn, "error", m->id);
	if (unlink(fn) == -1 && errno != ENOENT) {
		log_sys("unable to remove %s", fn);
		return; /* before info/ goes, so it is never orphaned */
	}
	qpath(fn, sizeof fn, "info", m->id);
	if (unlink(fn) == -1 && errno != ENOENT) {
		log_sys("unable to remove %s", fn);
		return;
	}
	clean_request('M', m->id);
	log_msg("end msg %llu", m->id);
	m->state = M_RETIRING; /* forgotten when moat-clean has answered */
}

/* nothing of m is running: bounce what failed, retire it if done */
static void
settle(struct msg *m)
{
	/* a bounce waits for running deliveries only, not for recipients
	 * that merely wait for a slot or for a spawner */
	if (m->state != M_ACTIVE || m->busy[0] || m->busy[1])
		return;
	if (m->bounce && send_bounce(m) == -1) {
		m->bounce_next = now + BOUNCE_RETRY;
		heap_push(m->bounce_next, m->id, 2);
		sync_soon(m);
		return;
	}
	if (!m->pending[0] && !m->pending[1] && !m->bounce && !m->ready[0] &&
	    !m->ready[1])
		retire(m);
}

static void
finish_attempt(struct msg *m, int c)
{
	char fn[64];
	str data = STR_INIT;

	qpath(fn, sizeof fn, chan_dir[c], m->id);
	m->pending[c] = slurp(fn, &data) == 0 && count_pending(&data) > 0;
	str_free(&data);
	if (m->pending[c]) {
		unsigned long age = now > m->birth ? (unsigned long)(now - m->birth)
						   : 0;
		unsigned long k = isqrt(age) + (unsigned long)chan_c[c];
		time_t next = m->birth + (time_t)(k * k);
		struct timespec ts[2];

		sync_soon(m); /* it waits: commit it */

		if (next <= now)
			next = now + 1;
		/* the next retry survives a restart as the file's mtime */
		ts[0].tv_sec = next;
		ts[0].tv_nsec = 0;
		ts[1] = ts[0];
		if (utimensat(AT_FDCWD, fn, ts, 0) == -1)
			log_sys("unable to set the retry time of %s", fn);
		schedule(m, c, next);
	} else {
		m->next[c] = 0;
	}
	settle(m);
}

/* record one recipient's permanent failure in bounce/ */
static int
add_bounce(struct msg *m, const char *rcpt, const char *text)
{
	char fn[64], status[DSN_STATUS_SIZE];
	str rec = STR_INIT;
	int fd, r = -1;

	dsn_status(text, strlen(text), 1, status);
	if (env_add(&rec, 'T', rcpt, strlen(rcpt)) == -1 ||
	    env_add(&rec, 'S', status, strlen(status)) == -1 ||
	    env_add(&rec, 'D', text, strlen(text)) == -1)
		die(111, "out of memory");
	qpath(fn, sizeof fn, "bounce", m->id);
	fd = open(fn, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd != -1) {
		if (write(fd, rec.s, rec.len) == (ssize_t)rec.len &&
		    fsync(fd) == 0)
			r = 0;
		close(fd);
	}
	str_free(&rec);
	if (r == 0)
		m->bounce = 1;
	else
		log_sys("unable to write %s", fn);
	return r;
}

static void
handle_result(int c, struct job_result *res)
{
	struct job_slot *j;
	struct msg *m;
	char fn[64];
	size_t k, toff = 0, roff = 0;
	str errs = STR_INIT;
	int fd;

	if (res->n >= njobs || !jobs[res->n].used || jobs[res->n].chan != c)
		die(111, "result for an unknown job %lu", res->n);
	j = &jobs[res->n];
	if (res->nres != j->n)
		die(111, "job %lu: %zu results for %zu recipients", res->n,
		    res->nres, j->n);
	m = msg_find(j->id);
	if (!m)
		die(111, "job %lu: unknown message", res->n);
	qpath(fn, sizeof fn, chan_dir[c], m->id);
	fd = open(fn, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		log_sys("unable to open %s", fn);
	for (k = 0; k < j->n; k++) {
		const char *rcpt = j->rcpts.s + roff, *text = res->texts.s + toff;
		char st = res->status[k];
		str longer = STR_INIT;

		roff += strlen(rcpt) + 1;
		toff += strlen(text) + 1;
		if (st == 'Z' && lifetime && now >= m->birth + (time_t)lifetime) {
			if (str_copys(&longer, "I'm not going to try again; "
					       "this message has been in the "
					       "queue too long. Last error: ") == -1 ||
			    str_cats(&longer, text) == -1 || str_0(&longer) == -1)
				die(111, "out of memory");
			text = longer.s;
			st = 'D';
		}
		if (st != 'K' &&
		    lasterr_rec(&errs, rcpt, st == 'Z' ? 'Z' : 'D', now, text) == -1)
			die(111, "out of memory");
		if (st == 'K') {
			log_msg("delivery %lu: success: %s", res->n, text);
		} else if (st == 'Z') {
			log_msg("delivery %lu: deferral: %s", res->n, text);
		} else {
			log_msg("delivery %lu: failure: %s", res->n, text);
			if (add_bounce(m, rcpt, text) == -1) {
				str_free(&longer);
				continue; /* stays pending: tried again */
			}
		}
		str_free(&longer);
		if (st != 'Z' && fd != -1 &&
		    pwrite(fd, "D", 1, (off_t)j->off[k]) != 1)
			log_sys("unable to mark a recipient of %s done", fn);
	}
	if (fd != -1)
		close(fd);
	qpath(fn, sizeof fn, "error", m->id);
	if (lasterr_write(fn, "queue/error/tmp", &errs) == -1 &&
	    errno != ENOENT)
		log_sys("unable to record the last error in %s", fn);
	str_free(&errs);
	j->used = 0;
	free(j->off);
	j->off = 0;
	m->busy[c]--;
	inflight[c]--;
	if (!m->busy[c] && !m->ready[c])
		finish_attempt(m, c);
}

/* ------------------------------------------------------------- main */

static int sigpipe[2];
static volatile sig_atomic_t got_alrm, got_hup, got_term;

static void
on_signal(int sig)
{
	int e = errno;

	if (sig == SIGALRM)
		got_alrm = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = 1;
	(void)!write(sigpipe[1], "", 1);
	errno = e;
}

static void
read_conn(struct conn *c, int which)
{
	char buf[8192];
	ssize_t r = read(c->fd, buf, sizeof buf);
	size_t pos = 0;

	if (r == 0)
		die(111, "a helper closed its connection (fd %d)", c->fd);
	if (r < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		die_sys(111, "unable to read from a helper (fd %d)", c->fd);
	}
	if (str_catb(&c->in, buf, (size_t)r) == -1)
		die(111, "out of memory");
	if (which == 2) { /* moat-clean: "K" or "Z" replies */
		size_t i;
		char kind;
		for (i = 0; i + 1 < c->in.len + 1 && i < c->in.len;) {
			char *nul = memchr(c->in.s + i, 0, c->in.len - i);
			if (!nul)
				break;
			if (!clean_q.n)
				die(111, "moat-clean said more than asked");
			kind = (char)fifo_front(&clean_kq);
			if (c->in.s[i] != 'K')
				log_msg("moat-clean could not do %c %llu",
					kind, fifo_front(&clean_q));
			if (kind != 'P') {
				struct msg *m = msg_find(fifo_front(&clean_q));
				if (m && m->cleaning && !--m->cleaning &&
				    m->state == M_RETIRING)
					retired(m);
			}
			fifo_pop(&clean_q);
			fifo_pop(&clean_kq);
			i = (size_t)(nul - c->in.s) + 1;
		}
		str_drop(&c->in, i);
		return;
	}
	for (;;) {
		struct job_result res;
		int g;

		memset(&res, 0, sizeof res);
		g = result_get(&c->in, &pos, &res);
		if (g == 0) {
			result_free(&res);
			break;
		}
		if (g < 0)
			die(111, "malformed result from the %s spawner",
			    chan_dir[which]);
		handle_result(which, &res);
		result_free(&res);
	}
	str_drop(&c->in, pos);
	if (c->in.len > 1024 * 1024)
		die(111, "the %s spawner sends garbage", chan_dir[which]);
}

static void
drain(int fd)
{
	char buf[1024];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

/*
 * Empty the trigger fifo and say which todo/ subdirectories its bytes name
 * (QUEUE_HINT).  A byte that names none asks for all of them; so does a
 * fifo that was full, since a writer then lost its byte: a pipe holds at
 * least a page, and bytes that found it full are all read in one drain.
 */
static unsigned long long
drain_trigger(int fd)
{
	unsigned char buf[1024];
	unsigned long long which = 0;
	size_t total = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof buf)) > 0) {
		ssize_t i;

		total += (size_t)r;
		for (i = 0; i < r; i++)
			if (buf[i] >= 1 && buf[i] <= QUEUE_SPLIT)
				which |= 1ULL << (buf[i] - 1);
			else
				which = SCAN_ALL;
	}
	if (total >= 4096)
		which = SCAN_ALL;
	return which;
}

static void
timers(void)
{
	while (heap_n && heap[0].when <= now) {
		struct timer t = heap_pop();
		struct msg *m = msg_find(t.id);

		if (!m || m->state != M_ACTIVE)
			continue;
		if (t.chan == 2) {
			if (m->bounce_next == t.when) {
				m->bounce_next = 0;
				settle(m);
			}
			continue;
		}
		if (m->next[t.chan] != t.when || m->ready[t.chan])
			continue;
		schedule(m, t.chan, now);
	}
}

static void
retry_all(void)
{
	size_t i;
	int c;

	for (i = 0; i < tab_cap; i++) {
		struct msg *m = tab[i];
		if (!m || m->state != M_ACTIVE)
			continue;
		for (c = 0; c < 2; c++)
			if (m->pending[c] && !m->ready[c] && !m->busy[c])
				schedule(m, c, now);
		if (m->bounce_next) {
			m->bounce_next = 0;
			settle(m);
		}
	}
}

/* queue/info/pid, for `moat queue retry`; written after the lock */
static void
write_pid(void)
{
	str s = STR_INIT;
	int fd;

	if (str_catu(&s, (unsigned long long)getpid()) == -1 ||
	    str_catc(&s, '\n') == -1)
		die(111, "out of memory");
	if (write_file("queue/info/pid.tmp", &s, &fd) == -1 ||
	    close(fd) == -1 ||
	    rename("queue/info/pid.tmp", "queue/info/pid") == -1)
		log_sys("unable to write queue/info/pid");
	str_free(&s);
}

static void
setup_conn(struct conn *c, int fd)
{
	c->fd = fd;
	c->dead = fcntl(fd, F_GETFD) == -1;
	if (!c->dead)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

int
main(int argc, char **argv)
{
	const char *root = root_dir(0);
	time_t last_scan, last_reap, stop_deadline = 0;
	unsigned long long rescan = 0; /* todo/ subdirectories to look at */
	int trig, lockfd, c;
	struct sigaction sa;

	(void)argc;
	log_init(argv[0] ? argv[0] : "moat-send");
	if (chdir(root) == -1)
		die_sys(111, "unable to enter %s", root);
	if (paths_setup_control(".") == -1)
		die(111, "out of memory");
	umask(077);
	config();
	setup_conn(&spawner[LOCAL], FD_LOCAL);
	setup_conn(&spawner[REMOTE], FD_REMOTE);
	setup_conn(&clean, FD_CLEAN);
	if (spawner[LOCAL].dead || clean.dead)
		die(111, "started without moat-lspawn (fd 3) or moat-clean "
			 "(fd 5)");
	if (spawner[REMOTE].dead)
		log_msg("no remote spawner on fd 4: remote mail will wait");

	lockfd = open("queue/info", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (lockfd == -1)
		die_sys(111, "unable to open queue/info");
	for (c = 0; flock(lockfd, LOCK_EX | LOCK_NB) == -1; c++) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			die_sys(111, "unable to lock queue/info");
		if (c >= LOCK_WAIT * 10)
			die(111, "another moat-send is running on this queue");
		usleep(100000);
	}
	write_pid();
	trig = open("queue/lock/trigger", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (trig == -1)
		die_sys(111, "unable to open queue/lock/trigger");

	if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) == -1)
		die_sys(111, "pipe");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGALRM, &sa, 0);
	sigaction(SIGHUP, &sa, 0);
	sigaction(SIGTERM, &sa, 0);
	sigaction(SIGINT, &sa, 0);
	signal(SIGPIPE, SIG_IGN);

	now = time(0);
	read_bootid();
	scan_info();
	scan_todo(SCAN_ALL);
	scan_orphans();
	last_scan = last_reap = now;
	log_msg("started: %zu messages in the queue", tab_n);

	for (;;) {
		struct pollfd p[5];
		int timeout = -1, i, n = 0;

		now = time(0);
		if (got_hup) {
			got_hup = 0;
			config();
			log_msg("control files re-read");
		}
		if (got_alrm) {
			got_alrm = 0;
			retry_all();
		}
		if (got_term && !stop_deadline) {
			log_msg("stopping: waiting for %u deliveries",
				inflight[0] + inflight[1]);
			stop_deadline = now + STOP_WAIT;
		}
		if (stop_deadline) {
			/* commit what is waiting, so a restart does not
			 * deliver it again */
			if (!inflight[0] && !inflight[1])
				sync_due(1);
			if (!inflight[0] && !inflight[1] && !clean_q.n)
				break;
			if (now >= stop_deadline) {
				log_msg("stopping with %u deliveries unfinished",
					inflight[0] + inflight[1]);
				break;
			}
		} else {
			if (now - last_scan >= RESCAN_EVERY) {
				scan_todo(SCAN_ALL);
				last_scan = now;
				rescan = 0;
			} else if (rescan && !todo_q.n) {
				scan_todo(rescan);
				rescan = 0;
			}
			/* stale pid/ files and orphans: hourly, not only at
			 * start-up */
			if (now - last_reap >= REAP_EVERY) {
				scan_orphans();
				last_reap = now;
			}
			timers();
			for (c = 0; c < 2; c++)
				dispatch(c);
			if (todo_q.n)
				preprocess();
			for (c = 0; c < 2; c++)
				dispatch(c);
			sync_due(0);
		}
		for (c = 0; c < 2; c++)
			if (!spawner[c].dead)
				conn_write(&spawner[c]);
		conn_write(&clean);

		if (todo_q.n && !stop_deadline)
			timeout = 0;
		else if (stop_deadline)
			timeout = 1000;
		else {
			time_t t = last_scan + RESCAN_EVERY;
			if (heap_n && heap[0].when < t)
				t = heap[0].when;
			if (syncnow_q.n) {
				t = now;
			} else if (sync_q.n) {
				/* a stale front (NULL) is popped at once */
				struct msg *m = msg_find(fifo_front(&sync_q));
				time_t due = m ? m->sync_by : now;
				if (due < t)
					t = due;
			}
			timeout = t <= now ? 0 : (int)(t - now) * 1000;
		}
		p[n].fd = sigpipe[0];
		p[n++].events = POLLIN;
		p[n].fd = trig;
		p[n++].events = stop_deadline ? 0 : POLLIN;
		p[n].fd = clean.fd;
		p[n++].events = POLLIN | (clean.out.len ? POLLOUT : 0);
		for (c = 0; c < 2; c++) {
			p[n].fd = spawner[c].dead ? -1 : spawner[c].fd;
			p[n++].events = POLLIN |
					(spawner[c].out.len ? POLLOUT : 0);
		}
		if (poll(p, (nfds_t)n, timeout) == -1) {
			if (errno == EINTR)
				continue;
			die_sys(111, "poll");
		}
		now = time(0);
		if (p[0].revents)
			drain(sigpipe[0]);
		if (p[1].revents & POLLIN) {
			rescan |= drain_trigger(trig) | pre_failed;
			pre_failed = 0;
			/* with a backlog, one scan when it is done sees all
			 * that came meanwhile: no O(backlog) scan per message */
			if (!todo_q.n) {
				scan_todo(rescan);
				rescan = 0;
			}
		}
		if (p[2].revents & (POLLIN | POLLHUP | POLLERR))
			read_conn(&clean, 2);
		if (p[2].revents & POLLOUT)
			conn_write(&clean);
		for (c = 0, i = 3; c < 2; c++, i++) {
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR))
				read_conn(&spawner[c], c);
			if (p[i].revents & POLLOUT)
				conn_write(&spawner[c]);
		}
	}
	unlink("queue/info/pid");
	log_msg("stopped");
	return 0;
}
