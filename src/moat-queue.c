/*
 * moat-queue: the only way into the queue.
 *
 * Runs as: setuid moatq when installed; the invoking user under `moat run`.
 * Reads: the message on fd 0, then the envelope on fd 1, exactly as
 * qmail-queue does ('F' sender NUL, 'T' recipient NUL ..., a final NUL).
 * Writes: queue/pid/, mess/N/, intd/N/, todo/N/ and one byte to
 * lock/trigger.  With MOAT_IDFD=n in the environment it also writes the new
 * message's id and a newline to descriptor n once the message is committed
 * (moat-smtpd names it in its 250 reply).
 *
 * The message is written crash-safely: pid/P/PID.T.N is created exclusively
 * and its inode number becomes the id; it is linked to mess/N/id and the
 * message written through it, a Received line first; the envelope goes to
 * intd/N/id; both files are fsynced, then the directory mess/N; the link of
 * intd/N/id to todo/N/id is the commit point, and todo/N is fsynced before
 * the exit status says so.  Until that link the message does not exist for
 * moat-send; any failure before it removes what was written, and a process
 * killed at any instant leaves only pid/, mess/ or intd/ files, which
 * moat-send reaps later.  A message is queued if and only if the exit code
 * is 0.
 *
 * Exit codes (qmail-queue's): 0 queued; 11 address too long; 51 out of
 * memory; 52 timeout; 53 write error or disk full; 54 cannot read the
 * message or envelope (EOF before the final NUL included); 55 cannot read
 * a control file; 61 cannot enter the root; 62 cannot enter the queue;
 * 63 queue/pid; 64 queue/mess; 65 queue/intd; 66 queue/todo; 81 internal
 * bug; 91 envelope format error (bad tag, too many recipients, too large).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "date.h"
#include "envelope.h"
#include "io.h"
#include "log.h"
#include "paths.h"
#include "queue.h"
#include "str.h"

#define INJECT_TIMEOUT 86400 /* seconds an injection may take in all */

/* names to remove on failure; fixed buffers so the signal handler can */
static char pidfn[64], messfn[64], intdfn[64], todofn[64];
static int have_pid, have_mess, have_intd, have_todo;

static void
cleanup(void)
{
	if (have_todo)
		unlink(todofn);
	if (have_intd)
		unlink(intdfn);
	if (have_mess)
		unlink(messfn);
	if (have_pid)
		unlink(pidfn);
}

static _Noreturn void
fail(int code, const char *what)
{
	int e = errno;

	cleanup();
	errno = e;
	if (e)
		die_sys(code, "%s", what);
	die(code, "%s", what);
}

static void
on_alarm(int sig)
{
	(void)sig;
	cleanup();
	_exit(QQ_TIMEOUT);
}

static void
name(char *buf, size_t size, const char *dir, unsigned long long id)
{
	snprintf(buf, size, "%s/%llu/%llu", dir, id % QUEUE_SPLIT, id);
}

/*
 * create pid/P/PID.T.N exclusively (P = PID % QUEUE_SPLIT, so that new
 * files are spread like the rest of the queue; pid/PID.T.N in a queue made
 * before pid/ was split); its inode is the message id
 */
static int
pid_open(void)
{
	char sub[32];
	int fd, i;

	snprintf(sub, sizeof sub, "pid/%ld", (long)getpid() % QUEUE_SPLIT);
	for (i = 0; i < 5; i++) {
		snprintf(pidfn, sizeof pidfn, "%s/%ld.%lld.%d", sub,
			 (long)getpid(), (long long)time(0), i);
		fd = open(pidfn,
			  O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			  0640);
		if (fd != -1) {
			have_pid = 1;
			return fd;
		}
		if (errno == ENOENT && strcmp(sub, "pid")) {
			snprintf(sub, sizeof sub, "pid"); /* not split */
			i--;
			continue;
		}
		if (errno != EEXIST)
			break;
	}
	return -1;
}

static void
copy_message(int out)
{
	static char buf[65536];
	char date[64], head[256];
	int n;

	date_rfc5322(date, sizeof date, time(0));
	n = snprintf(head, sizeof head,
		     "Received: (moat %ld invoked by uid %ld); %s\n",
		     (long)getpid(), (long)getuid(), date);
	if (io_writeall(out, head, (size_t)n, 0) == -1)
		fail(QQ_WRITE, "unable to write the message");
	for (;;) {
		ssize_t r = read(0, buf, sizeof buf);

		if (r == 0)
			return;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail(QQ_READ, "unable to read the message");
		}
		if (io_writeall(out, buf, (size_t)r, 0) == -1)
			fail(QQ_WRITE, "unable to write the message");
	}
}

static void
write_envelope(int fd, const str *sender, const str *rcpts, size_t n)
{
	str e = STR_INIT;
	size_t off = 0, i;
	char num[32];
	int l;

	l = snprintf(num, sizeof num, "%ld", (long)getuid());
	if (env_add(&e, 'u', num, (size_t)l) == -1)
		fail(QQ_NOMEM, "out of memory");
	l = snprintf(num, sizeof num, "%ld", (long)getpid());
	if (env_add(&e, 'p', num, (size_t)l) == -1 ||
	    env_add(&e, 'F', sender->s, sender->len) == -1)
		fail(QQ_NOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		size_t len = strlen(rcpts->s + off);

		if (env_add(&e, 'T', rcpts->s + off, len) == -1)
			fail(QQ_NOMEM, "out of memory");
		off += len + 1;
	}
	if (io_writeall(fd, e.s, e.len, 0) == -1)
		fail(QQ_WRITE, "unable to write the envelope");
	str_free(&e);
}

static void
report_id(unsigned long long id)
{
	const char *v = getenv("MOAT_IDFD");
	char buf[32];
	int fd, n;

	if (!v || !*v)
		return;
	fd = atoi(v);
	if (fd < 3)
		return;
	n = snprintf(buf, sizeof buf, "%llu\n", id);
	(void)!write(fd, buf, (size_t)n);
}

/* the byte says which todo/N to look at: N + 1 (queue.h, QUEUE_HINT) */
static void
trigger(unsigned long long id)
{
	int fd = open("lock/trigger", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	char c = (char)QUEUE_HINT(id);

	if (fd == -1)
		return; /* moat-send is not running; it scans todo/ at start */
	(void)!write(fd, &c, 1);
	close(fd);
}

int
main(int argc, char **argv)
{
	int setid = getuid() != geteuid() || getgid() != getegid();
	const char *root = root_dir(setid);
	char envbuf[4096], dir[32];
	str sender = STR_INIT, rcpts = STR_INIT;
	struct stat st;
	unsigned long long id;
	size_t nrcpt;
	int messfd, intdfd, r;
	io env;

	(void)argc;
	log_init(argc > 0 && argv[0] ? argv[0] : "moat-queue");
	umask(027);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(INJECT_TIMEOUT);

	if (chdir(root) == -1)
		die_sys(QQ_HOME, "unable to enter %s", root);
	if (chdir("queue") == -1)
		die_sys(QQ_QUEUEDIR, "unable to enter %s/queue", root);

	messfd = pid_open();
	if (messfd == -1)
		fail(QQ_PID, "unable to create a file in queue/pid");
	if (fstat(messfd, &st) == -1)
		fail(QQ_PID, "unable to stat the pid file");
	id = (unsigned long long)st.st_ino;
	name(messfn, sizeof messfn, "mess", id);
	name(intdfn, sizeof intdfn, "intd", id);
	name(todofn, sizeof todofn, "todo", id);
	have_mess = 1; /* set first: the alarm may strike at any instant */
	if (link(pidfn, messfn) == -1) {
		have_mess = 0;
		fail(QQ_MESS, "unable to link the message into queue/mess");
	}

	copy_message(messfd);

	io_init(&env, 1, envbuf, sizeof envbuf, 0);
	errno = 0;
	r = env_read(&env, &env_default_limits, &sender, &rcpts, &nrcpt);
	if (r != QQ_OK) {
		const char *why = r == QQ_ADDRLONG ? "address too long"
				  : r == QQ_FORMAT ? "envelope format error"
				  : r == QQ_NOMEM  ? "out of memory"
				  : r == QQ_TIMEOUT
				      ? "timeout reading the envelope"
				      : "unable to read the envelope";
		if (r != QQ_READ && r != QQ_TIMEOUT)
			errno = 0;
		fail(r, why);
	}

	have_intd = 1;
	intdfd = open(intdfn,
		      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0640);
	if (intdfd == -1) {
		have_intd = 0;
		fail(QQ_INTD, "unable to create a file in queue/intd");
	}
	write_envelope(intdfd, &sender, &rcpts, nrcpt);
	str_free(&sender);
	str_free(&rcpts);

	if (fsync(messfd) == -1 || fsync(intdfd) == -1)
		fail(QQ_WRITE, "unable to sync the message to disk");
	if (close(messfd) == -1 || close(intdfd) == -1)
		fail(QQ_WRITE, "unable to close the message");
	/* mess/N's new entry must survive a crash; intd/N's need not: once
	 * todo/N/id exists it names the same inode */
	snprintf(dir, sizeof dir, "mess/%llu", id % QUEUE_SPLIT);
	if (queue_fsync_dir(dir) == -1)
		fail(QQ_WRITE, "unable to sync queue/mess");

	/* no timeout may undo the commit once the link exists */
	alarm(0);
	have_todo = 1;
	if (link(intdfn, todofn) == -1) {
		have_todo = 0;
		fail(QQ_TODO, "unable to link the envelope into queue/todo");
	}
	snprintf(dir, sizeof dir, "todo/%llu", id % QUEUE_SPLIT);
	if (queue_fsync_dir(dir) == -1)
		fail(QQ_WRITE, "unable to sync queue/todo");

	/* committed: from here on the message must be delivered */
	report_id(id);
	trigger(id);
	unlink(pidfn);
	return 0;
}
