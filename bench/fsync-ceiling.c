/*
 * fsync-ceiling DIR THREADS SECONDS: the disk's rate of durable small-file
 * commits, the physical limit of any MTA that fsyncs before its 250.
 *
 * Each operation is what a crash-safe queue needs at the least for one
 * message: create DIR/tmp/T.K exclusively, write 4 KiB, fsync the file,
 * close it, rename it to DIR/new/T.K and fsync DIR/new.  THREADS threads
 * (1 = single-threaded) do this in a loop for SECONDS seconds, all in the
 * same two directories, so that the filesystem may group their commits as
 * it groups concurrent SMTP sessions' commits.  The files are removed
 * afterwards (not timed).
 *
 * Prints one line: "threads N ops M seconds S rate R" with R operations per
 * second.  Exit 0, or 111 on a system error.
 *
 * Built by bench/run with `cc -O2 -pthread`; a benchmark tool, not part
 * of moat.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXTHREADS 512

static char tmpdir[4096], newdir[4096];
static atomic_int stop;
static int newfd;
static char block[4096];

struct worker {
	pthread_t t;
	int id;
	unsigned long ops;
	int err;
};

static void *
run(void *arg)
{
	struct worker *w = arg;
	char from[4200], to[4200];

	while (!atomic_load(&stop)) {
		int fd;

		snprintf(from, sizeof from, "%s/%d.%lu", tmpdir, w->id, w->ops);
		snprintf(to, sizeof to, "%s/%d.%lu", newdir, w->id, w->ops);
		fd = open(from, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd == -1 ||
		    write(fd, block, sizeof block) != (ssize_t)sizeof block ||
		    fsync(fd) == -1 || close(fd) == -1 ||
		    rename(from, to) == -1 || fsync(newfd) == -1) {
			w->err = errno ? errno : EIO;
			atomic_store(&stop, 1);
			break;
		}
		w->ops++;
	}
	return 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	static struct worker w[MAXTHREADS];
	char name[4200];
	double t0, t1, secs;
	unsigned long total = 0, k;
	int n, i;

	if (argc != 4 || (n = atoi(argv[2])) < 1 || n > MAXTHREADS ||
	    (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: fsync-ceiling DIR THREADS SECONDS\n");
		return 100;
	}
	snprintf(tmpdir, sizeof tmpdir, "%s/tmp", argv[1]);
	snprintf(newdir, sizeof newdir, "%s/new", argv[1]);
	if ((mkdir(tmpdir, 0700) == -1 && errno != EEXIST) ||
	    (mkdir(newdir, 0700) == -1 && errno != EEXIST)) {
		perror("fsync-ceiling: mkdir");
		return 111;
	}
	newfd = open(newdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (newfd == -1) {
		perror("fsync-ceiling: open");
		return 111;
	}
	memset(block, 'x', sizeof block);
	t0 = now();
	for (i = 0; i < n; i++) {
		w[i].id = i;
		if (pthread_create(&w[i].t, 0, run, &w[i]) != 0) {
			fprintf(stderr, "fsync-ceiling: pthread_create failed\n");
			return 111;
		}
	}
	while (!atomic_load(&stop) && now() - t0 < secs)
		usleep(10000);
	atomic_store(&stop, 1);
	for (i = 0; i < n; i++)
		pthread_join(w[i].t, 0);
	t1 = now();
	for (i = 0; i < n; i++) {
		if (w[i].err) {
			fprintf(stderr, "fsync-ceiling: %s\n", strerror(w[i].err));
			return 111;
		}
		total += w[i].ops;
	}
	printf("threads %d ops %lu seconds %.3f rate %.1f\n", n, total, t1 - t0,
	       (double)total / (t1 - t0));
	for (i = 0; i < n; i++)
		for (k = 0; k < w[i].ops; k++) {
			snprintf(name, sizeof name, "%s/%d.%lu", newdir, i, k);
			unlink(name);
		}
	return 0;
}
