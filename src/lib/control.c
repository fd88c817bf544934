/*
 * control.c: reading control files through the one declared table.
 *
 * Reads are bounded (CTL_MAXBYTES) so a control file pointed at something
 * endless fails instead of eating memory.  Nothing is cached: programs read
 * what they need at start, or again after SIGHUP.
 */
#include "control.h"
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define CTL_MAXBYTES (64u * 1024 * 1024)

/* clang-format off */
const struct ctl_def ctl_table[] = {
	{"me", CTL_LINE, "", "this host's fully qualified name (default: the host name)"},
	{"defaultdomain", CTL_LINE, "=me", "domain added to host names without a dot"},
	{"defaulthost", CTL_LINE, "=me", "host added to addresses without one"},
	{"plusdomain", CTL_LINE, "=me", "domain added to a host name ending in +"},
	{"idhost", CTL_LINE, "=me", "host name used in Message-IDs"},
	{"locals", CTL_LIST, "=me", "domains delivered on this host"},
	{"rcpthosts", CTL_LIST, "=locals", "domains accepted from the network (.suffix matches subdomains)"},
	{"morercpthosts", CTL_CDB, 0, "more rcpthosts, as the constant database morercpthosts.cdb"},
	{"virtualdomains", CTL_LIST, 0, "domain:prepend lines for virtual domains"},
	{"smtproutes", CTL_LIST, 0, "domain:relay[:port] lines overriding MX"},
	{"percenthack", CTL_LIST, 0, "domains where user%host@domain means user@host"},
	{"envnoathost", CTL_LINE, "=me", "domain added to recipients without @"},
	{"defaultdelivery", CTL_LINE, "./Maildir/", "delivery instructions for a user without a .qmail file"},
	{"accounts", CTL_LIST, 0, "account names moat-setup chose, as default:actual lines (moatd:moatd, ...; see privs.h)"},
	{"localiphost", CTL_LINE, "=me", "name that replaces this host's [IP] literals"},
	{"concurrencylocal", CTL_NUM, "10", "simultaneous local deliveries"},
	{"concurrencyremote", CTL_NUM, "20", "simultaneous remote deliveries"},
	{"maxrcptremote", CTL_NUM, "100", "most recipients in one remote SMTP transaction"},
	{"concurrencydomain", CTL_NUM, "10", "simultaneous remote deliveries to one domain"},
	{"downhostperiod", CTL_NUM, "3600", "seconds remote deliveries skip an address whose connection timed out (0: never)"},
	{"concurrencyincoming", CTL_NUM, "200", "simultaneous SMTP connections"},
	{"concurrencyperip", CTL_NUM, "50", "simultaneous SMTP connections from one address (relay clients exempt)"},
	{"databytes", CTL_NUM, "10485760", "largest message accepted by SMTP, in bytes (0: no limit)"},
	{"maxrcpt", CTL_NUM, "1000", "most recipients per SMTP message"},
	{"rcptcheck", CTL_NUM, "1", "1: refuse unknown local recipients at RCPT time (550 5.1.1); 0: accept and bounce later"},
	{"queuelifetime", CTL_NUM, "604800", "seconds a message may stay in the queue"},
	{"timeoutconnect", CTL_NUM, "60", "seconds to wait for a remote connection"},
	{"timeoutremote", CTL_NUM, "1200", "seconds to wait for a remote server"},
	{"timeoutsmtpd", CTL_NUM, "1200", "seconds moat-smtpd waits for a client"},
	{"bouncefrom", CTL_LINE, "MAILER-DAEMON", "sender name of bounces"},
	{"bouncehost", CTL_LINE, "=me", "sender host of bounces"},
	{"doublebounceto", CTL_LINE, "postmaster", "recipient of double bounces"},
	{"doublebouncehost", CTL_LINE, "=me", "host of doublebounceto"},
	{"helohost", CTL_LINE, "=me", "name moat-remote gives in EHLO"},
	{"smtpgreeting", CTL_LINE, "=me", "text after 220 in the SMTP greeting"},
	{"badmailfrom", CTL_LIST, 0, "senders refused by SMTP: address or @domain"},
	{"relayclients", CTL_LIST, 0, "client addresses or prefixes allowed to relay (IPv4, IPv6, /len)"},
	{"nameservers", CTL_LIST, 0, "DNS servers (ip or ip:port) instead of the system's"},
	{"timeoutdns", CTL_NUM, "30", "seconds moat-remote may spend on the DNS lookups of one delivery"},
	{"outgoingip", CTL_LINE, 0, "source address for remote deliveries"},
	{"tlsremote", CTL_NUM, "1", "1: moat-remote uses STARTTLS when a server offers it (certificates not checked); 0: never"},
	{"smtpusers", CTL_PRESENT, 0, "user:crypt-hash lines of the accounts that may AUTH after STARTTLS and then relay"},
	{"servercert.pem", CTL_PRESENT, 0, "certificate chain and private key (PEM) for STARTTLS; none: no STARTTLS"},
	{0, 0, 0, 0},
};
/* clang-format on */

static const char *dir = "control";

void
ctl_setdir(const char *d)
{
	dir = d;
}

const char *
ctl_dir(void)
{
	return dir;
}

const struct ctl_def *
ctl_find(const char *name)
{
	const struct ctl_def *d;

	for (d = ctl_table; d->name; d++)
		if (!strcmp(d->name, name))
			return d;
	return 0;
}

int
ctl_path(str *p, const char *name, const char *suffix)
{
	p->len = 0;
	if (str_cats(p, dir) == -1 || str_catc(p, '/') == -1 ||
	    str_cats(p, name) == -1 || str_cats(p, suffix) == -1 ||
	    str_0(p) == -1)
		return -1;
	return 0;
}

/* whole file into out: 1 read, 0 no such file, -1 error */
static int
slurp(const char *name, str *out)
{
	str p = STR_INIT;
	int r, e;

	out->len = 0;
	if (ctl_path(&p, name, "") == -1)
		return -1;
	r = io_readfile(p.s, out, CTL_MAXBYTES, 0);
	e = errno;
	str_free(&p);
	errno = e;
	if (r == -1)
		return errno == ENOENT ? 0 : -1;
	return 1;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* the default of a LINE control, following "=name" */
static int
line_default(const struct ctl_def *d, str *out, int depth)
{
	out->len = 0;
	if (d->def && d->def[0] == '=' && depth < 4) {
		const struct ctl_def *o = ctl_find(d->def + 1);
		str tmp = STR_INIT;
		int r;

		if (!o)
			return -1;
		if (o->kind == CTL_LIST) {
			size_t n;
			r = ctl_list(o->name, &tmp, &n);
			if (r >= 0)
				r = str_copys(out, n ? tmp.s : "");
		} else {
			r = ctl_line(o->name, &tmp);
			if (r >= 0)
				r = str_copyb(out, tmp.s, tmp.len);
		}
		str_free(&tmp);
		if (r < 0)
			return -1;
	} else if (!strcmp(d->name, "me")) {
		char host[256];

		if (gethostname(host, sizeof host - 1) == -1)
			strcpy(host, "localhost");
		host[sizeof host - 1] = 0;
		if (str_copys(out, host) == -1)
			return -1;
	} else if (d->def && str_copys(out, d->def) == -1) {
		return -1;
	}
	return str_0(out) == -1 ? -1 : CTL_DEFAULT;
}

int
ctl_line(const char *name, str *out)
{
	const struct ctl_def *d = ctl_find(name);
	int r;
	char *nl;

	if (!d) {
		errno = ENOENT;
		return -1;
	}
	r = slurp(name, out);
	if (r == -1)
		return -1;
	if (r == 1) {
		nl = out->len ? memchr(out->s, '\n', out->len) : 0;
		if (nl)
			out->len = (size_t)(nl - out->s);
		while (out->len && is_space(out->s[out->len - 1]))
			out->len--;
		/* an empty line means the default, except where qmail gives
		 * it a meaning: an empty doublebounceto discards double
		 * bounces */
		if (out->len || d->kind == CTL_NUM ||
		    !strcmp(name, "doublebounceto"))
			return str_0(out) == -1 ? -1 : CTL_FILE;
	}
	return line_default(d, out, 0);
}

int
ctl_num(const char *name, unsigned long long *v)
{
	str s = STR_INIT;
	size_t i = 0;
	int r = ctl_line(name, &s);

	if (r < 0) {
		str_free(&s);
		return -1;
	}
	while (i < s.len && is_space(s.s[i]))
		i++;
	if (i == s.len) {
		str_free(&s);
		errno = EINVAL;
		return -1;
	}
	*v = 0;
	for (; i < s.len; i++) {
		if (s.s[i] < '0' || s.s[i] > '9' ||
		    __builtin_mul_overflow(*v, 10, v) ||
		    __builtin_add_overflow(*v, (unsigned)(s.s[i] - '0'), v)) {
			str_free(&s);
			errno = EINVAL;
			return -1;
		}
	}
	str_free(&s);
	return r;
}

int
ctl_list(const char *name, str *out, size_t *n)
{
	const struct ctl_def *d = ctl_find(name);
	str raw = STR_INIT;
	size_t i = 0;
	int r;

	*n = 0;
	out->len = 0;
	if (!d) {
		errno = ENOENT;
		return -1;
	}
	r = slurp(name, &raw);
	if (r == -1)
		goto fail;
	if (r == 0) {
		str_free(&raw);
		if (!d->def)
			return CTL_DEFAULT;
		if (d->def[0] == '=') {
			const struct ctl_def *o = ctl_find(d->def + 1);
			if (!o)
				return -1;
			if (o->kind == CTL_LIST) {
				r = ctl_list(o->name, out, n);
				return r < 0 ? -1 : CTL_DEFAULT;
			}
			if (ctl_line(o->name, out) < 0)
				return -1;
			out->len++; /* keep the NUL: one item */
			*n = 1;
			return CTL_DEFAULT;
		}
		if (str_copys(out, d->def) == -1 || str_catc(out, 0) == -1)
			return -1;
		*n = 1;
		return CTL_DEFAULT;
	}
	while (i < raw.len) {
		char *s = raw.s + i, *nl = memchr(s, '\n', raw.len - i);
		size_t l = nl ? (size_t)(nl - s) : raw.len - i;

		i += l + 1;
		while (l && is_space(s[l - 1]))
			l--;
		while (l && (*s == ' ' || *s == '\t')) {
			s++;
			l--;
		}
		if (!l || *s == '#')
			continue;
		if (memchr(s, 0, l))
			continue; /* a NUL would split the item */
		if (str_catb(out, s, l) == -1 || str_catc(out, 0) == -1)
			goto fail;
		++*n;
	}
	str_free(&raw);
	return CTL_FILE;
fail:
	str_free(&raw);
	return -1;
}

int
ctl_domain_match(const str *items, size_t n, const char *dom, size_t len)
{
	size_t off = 0, i;

	for (i = 0; i < n; i++) {
		const char *it = items->s + off;
		size_t l = strlen(it);

		off += l + 1;
		if (l == len && !strncasecmp(it, dom, len))
			return 1;
		if (l > 1 && it[0] == '.' && len > l &&
		    !strncasecmp(it, dom + len - l, l))
			return 1;
	}
	return 0;
}
