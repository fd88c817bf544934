/*
 * moat-sendmail: the sendmail command line, for the programs that use it.
 *
 *   sendmail [-t] [-i] [-f sender] [-F name] [-v] [-bm] [--] [recipient ...]
 *   sendmail -bs        SMTP on standard input and output
 *   sendmail -bp        list the queue (as mailq)
 *   mailq               list the queue
 *   newaliases          nothing to do: moat has no aliases database
 *
 * Installed as moat-sendmail, with `sendmail`, `mailq` and `newaliases`
 * as links to it; what it does depends on the name it was called by.
 * Runs as: the caller.
 * Reads: its arguments; MOAT_ROOT (passed on).
 * Writes: nothing itself.  A message goes to moat-inject, which it runs
 * with the matching options (-t: recipients from the header, -H when there
 * are recipient arguments too, -h when not; otherwise -a and the
 * arguments; -f; -F as QMAILNAME; without -i or -oi, -d: a line with only
 * "." ends the message, as sendmail does).  -bs runs moat-smtpd for a local
 * client: RELAYCLIENT set (it may relay), TCPREMOTEIP and TCPLOCALIP
 * 127.0.0.1, TCPREMOTEHOST localhost.  moat-smtpd never runs as root: root
 * becomes the owner of the queue first (as moat-inject does) or, when the
 * queue belongs to root, is told to run it as a user.  -bp and mailq run
 * `moat queue`.
 *
 * Accepted and ignored, as sendmail's options that do not apply here:
 * -n, -U, -G, -m (no argument); -B, -N, -R, -V, -L, -X, -h, -O (an argument,
 * joined or next); -o and -A with anything joined (-oi and -o i excepted:
 * they mean -i).  -r is an old name for -f.  -bi and -I are newaliases.
 * Anything else is refused.
 *
 * Exit codes: moat-inject's (0, 100, 111) for a message; moat-smtpd's for
 * -bs; 100 for a usage error; 111 when a program cannot be run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "paths.h"
#include "runas.h"
#include "str.h"

#define MAX_ARGS 4096

static _Noreturn void
usage(const char *why)
{
	die(100, "%s\nusage: sendmail [-t] [-i] [-f sender] [-F name] [-v] "
		 "[--] [recipient ...]\n       sendmail -bs | -bp | -bm",
	    why);
}

static _Noreturn void
run(const char *prog, char **argv)
{
	str path = STR_INIT;

	if (bin_path(&path, prog) == -1)
		die_sys(111, "unable to find %s", prog);
	execv(path.s, argv);
	die_sys(111, "unable to run %s", path.s);
}

static _Noreturn void
mailq(void)
{
	char *argv[] = {"moat", "queue", 0};

	run("moat", argv);
}

static _Noreturn void
newaliases(void)
{
	printf("newaliases: moat has no aliases database to rebuild: an "
	       "alias is a .qmail file\n(see moat-dot-qmail(5)); nothing to "
	       "do\n");
	exit(fflush(stdout) == 0 ? 0 : 111);
}

static _Noreturn void
smtp(void)
{
	char *argv[] = {"moat-smtpd", 0};
	uid_t uid;
	int r;

	if (geteuid() == 0) {
		const char *root = root_dir(0);

		r = runas_queue_owner(root, &uid);
		if (r == -1)
			die_sys(111, "unable to become the owner of %s/queue",
				root);
		if (r == 0)
			die(100, "-bs: moat-smtpd does not run as root, and "
				 "%s/queue belongs to root (or does not "
				 "exist): run sendmail -bs as an unprivileged "
				 "user",
			    root);
	}
	if (setenv("RELAYCLIENT", "", 1) == -1 ||
	    setenv("TCPREMOTEIP", "127.0.0.1", 1) == -1 ||
	    setenv("TCPLOCALIP", "127.0.0.1", 1) == -1 ||
	    setenv("TCPREMOTEHOST", "localhost", 1) == -1)
		die(111, "out of memory");
	unsetenv("REMOTE_ADDR");
	run("moat-smtpd", argv);
}

/* the argument of option c: joined (rest) or the next one */
static const char *
optarg_of(int c, const char *rest, int argc, char **argv, int *i)
{
	char msg[64];

	if (*rest)
		return rest;
	if (*i + 1 >= argc) {
		snprintf(msg, sizeof msg, "option -%c needs an argument", c);
		usage(msg);
	}
	return argv[++*i];
}

static const char *
base(const char *p)
{
	const char *s = strrchr(p, '/');

	return s ? s + 1 : p;
}

int
main(int argc, char **argv)
{
	static char *iargv[MAX_ARGS + 16];
	const char *name = argc > 0 && argv[0] ? base(argv[0]) : "sendmail";
	const char *sender = 0, *fullname = 0;
	char *rcpt[MAX_ARGS];
	int nrcpt = 0, t = 0, dot = 1, verbose = 0, i, k = 0;
	char mode = 'm';

	log_init(name);
	if (!strcmp(name, "mailq"))
		mailq();
	if (!strcmp(name, "newaliases"))
		newaliases();

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *p;
		char msg[128];

		if (a[0] != '-' || !a[1]) {
			if (nrcpt >= MAX_ARGS)
				usage("too many recipient arguments");
			rcpt[nrcpt++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			while (++i < argc) {
				if (nrcpt >= MAX_ARGS)
					usage("too many recipient arguments");
				rcpt[nrcpt++] = argv[i];
			}
			break;
		}
		for (p = a + 1; *p; p++) {
			switch (*p) {
			case 't':
				t = 1;
				continue;
			case 'i':
				dot = 0;
				continue;
			case 'v':
				verbose = 1;
				continue;
			case 'n': /* no aliasing */
			case 'U': /* initial submission */
			case 'G': /* gateway */
			case 'm': /* me too */
				continue;
			case 'f':
			case 'r':
				sender = optarg_of(*p, p + 1, argc, argv, &i);
				break;
			case 'F':
				fullname = optarg_of(*p, p + 1, argc, argv, &i);
				break;
			case 'B': /* body type */
			case 'N': /* DSN notify */
			case 'R': /* DSN return */
			case 'V': /* envelope id */
			case 'L': /* syslog label */
			case 'X': /* traffic log */
			case 'h': /* hop count */
			case 'O': /* option=value */
				(void)optarg_of(*p, p + 1, argc, argv, &i);
				break;
			case 'o':
				if (!strcmp(p + 1, "i"))
					dot = 0;
				else if (!p[1] && i + 1 < argc &&
					 !strcmp(argv[i + 1], "i"))
					dot = 0, i++;
				break; /* -oem, -odb, -oQ...: ignored */
			case 'A': /* -Ac, -Am */
				break;
			case 'b':
				if (p[1] && !p[2] && strchr("mpsi", p[1])) {
					mode = p[1];
					break;
				}
				snprintf(msg, sizeof msg,
					 "-b%.20s: mode not supported (only "
					 "-bm, -bs, -bp, -bi)",
					 p + 1);
				usage(msg);
			case 'I':
				mode = 'i';
				continue;
			case 'q':
				usage("-q: moat delivers and retries on its "
				      "own; see `moat queue`");
			default:
				snprintf(msg, sizeof msg, "unknown option -%c",
					 *p);
				usage(msg);
			}
			break; /* the option took the rest of the word */
		}
	}

	switch (mode) {
	case 'p':
		mailq();
	case 'i':
		newaliases();
	case 's':
		smtp();
	default:
		break;
	}

	if (!t && !nrcpt)
		usage("no recipients given (-t reads them from the header)");
	if (fullname && setenv("QMAILNAME", fullname, 1) == -1)
		die(111, "out of memory");
	iargv[k++] = "moat-inject";
	iargv[k++] = t ? (nrcpt ? "-H" : "-h") : "-a";
	if (dot)
		iargv[k++] = "-d";
	if (verbose)
		iargv[k++] = "-v";
	if (sender) {
		iargv[k++] = "-f";
		iargv[k++] = (char *)sender;
	}
	iargv[k++] = "--";
	for (i = 0; i < nrcpt; i++)
		iargv[k++] = rcpt[i];
	iargv[k] = 0;
	run("moat-inject", iargv);
}
