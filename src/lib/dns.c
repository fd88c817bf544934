/*
 * dns.c: MX and address resolution through c-ares; see dns.h.
 *
 * One channel per process, made on first use.  Queries run in two rounds,
 * each driven by one poll() loop until every query has called back or the
 * call's deadline has passed (then the rest are cancelled): the MX query,
 * then the AAAA and A queries of every host at once.  The answers are
 * parsed in the callbacks into memory this module owns; nothing from the
 * answer is trusted beyond what c-ares parsed (names are only copied, the
 * caller cleans them before they reach a text).
 */
#include "dns.h"

#include <ares.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "control.h"

#define T_A 1
#define T_MX 15
#define T_AAAA 28
#define C_IN 1

#define TRY_MS 3000 /* c-ares' first try; later tries wait longer */
#define TRIES 3
#define DNS_TIMEOUT_MAX 3600

static ares_channel chan;
static int ready;                       /* 1 once the channel is made */
static unsigned long long timeout = 30; /* control/timeoutdns */
static size_t pending;                  /* queries not yet called back */
static int expired;                     /* the deadline cancelled queries */

/* ---- set-up ---- */

static int
fail_text(str *err, const char *a, const char *b)
{
	err->len = 0;
	if (str_cats(err, a) == -1 || (b && str_cats(err, b) == -1) ||
	    str_0(err) == -1)
		return -1;
	return 0;
}

/* one control/nameservers line into "ip:port" (IPv6 bracketed) */
static int
ns_item(str *csv, const char *s)
{
	unsigned char ip[IP_LEN];
	char fmt[IP_FMT];
	const char *a = s, *port = 0, *c;
	size_t alen = strlen(s);
	unsigned long p = 53;

	if (*s == '[') {
		c = strchr(s, ']');
		if (!c)
			return -1;
		a = s + 1;
		alen = (size_t)(c - a);
		if (c[1] == ':')
			port = c + 2;
		else if (c[1])
			return -1;
	} else if ((c = strchr(s, ':')) && !strchr(c + 1, ':')) {
		alen = (size_t)(c - s); /* IPv4 with a port */
		port = c + 1;
	}
	if (ip_parse(a, alen, ip) == -1)
		return -1;
	if (port) {
		char *end;

		if (*port < '0' || *port > '9')
			return -1;
		errno = 0;
		p = strtoul(port, &end, 10);
		if (*end || errno || p == 0 || p > 65535)
			return -1;
	}
	ip_fmt(fmt, ip);
	if ((csv->len && str_catc(csv, ',') == -1) ||
	    str_cats(csv, ip_is4(ip) ? "" : "[") == -1 ||
	    str_cats(csv, fmt) == -1 ||
	    str_cats(csv, ip_is4(ip) ? ":" : "]:") == -1 ||
	    str_catu(csv, p) == -1)
		return -1;
	return 0;
}

static int
setup(str *err)
{
	struct ares_options o;
	str ns = STR_INIT, csv = STR_INIT;
	size_t n, i, off = 0;
	int r = -1;

	if (ready)
		return 0;
	if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS)
		return fail_text(err, "unable to start the resolver library",
		                 0),
		       -1;
	if (ctl_num("timeoutdns", &timeout) < 0)
		return fail_text(err, "unable to read control/timeoutdns", 0),
		       -1;
	if (timeout == 0 || timeout > DNS_TIMEOUT_MAX)
		timeout = DNS_TIMEOUT_MAX;
	if (ctl_list("nameservers", &ns, &n) < 0) {
		fail_text(err, "unable to read control/nameservers", 0);
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *it = ns.s + off;

		off += strlen(it) + 1;
		if (ns_item(&csv, it) == -1) {
			fail_text(err, "bad line in control/nameservers: ", it);
			goto out;
		}
	}
	if (str_0(&csv) == -1) {
		fail_text(err, "out of memory", 0);
		goto out;
	}
	memset(&o, 0, sizeof o);
	o.timeout = TRY_MS;
	o.tries = TRIES;
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	if (ares_init_options(&chan, &o,
	                      ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	                          ARES_OPT_FLAGS) != ARES_SUCCESS) {
		fail_text(err, "unable to start the resolver", 0);
		goto out;
	}
	if (n && ares_set_servers_ports_csv(chan, csv.s) != ARES_SUCCESS) {
		ares_destroy(chan);
		fail_text(err, "unable to use control/nameservers", 0);
		goto out;
	}
	ready = 1;
	r = 0;
out:
	str_free(&ns);
	str_free(&csv);
	return r;
}

/* ---- the event loop ---- */

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* run until every query has called back or deadline (ms) has passed */
static void
run(long long deadline)
{
	while (pending) {
		ares_socket_t socks[ARES_GETSOCK_MAXNUM];
		struct pollfd p[ARES_GETSOCK_MAXNUM];
		struct timeval max, tv, *tvp;
		unsigned bits;
		int i, n = 0, r;
		long long left = deadline - now_ms(), ms;

		if (left <= 0) {
			expired = 1;
			ares_cancel(chan); /* every callback runs, cancelled */
			return;
		}
		/* the bits by hand: ares.h's macros shift a signed 1 into
		 * the sign bit */
		bits = (unsigned)ares_getsock(chan, socks, ARES_GETSOCK_MAXNUM);
		for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
			short ev = 0;

			if (bits & (1u << i))
				ev |= POLLIN;
			if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
				ev |= POLLOUT;
			if (!ev)
				continue;
			p[n].fd = socks[i];
			p[n].events = ev;
			p[n].revents = 0;
			n++;
		}
		max.tv_sec = (time_t)(left / 1000);
		max.tv_usec = (suseconds_t)(left % 1000 * 1000);
		tvp = ares_timeout(chan, &max, &tv);
		ms = (long long)tvp->tv_sec * 1000 + tvp->tv_usec / 1000 + 1;
		if (ms > left)
			ms = left;
		r = poll(p, (nfds_t)n, (int)(ms > INT_MAX ? INT_MAX : ms));
		if (r < 0 && errno != EINTR) {
			ares_cancel(chan);
			return;
		}
		if (r <= 0) {
			ares_process_fd(chan, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			continue;
		}
		for (i = 0; i < n; i++) {
			short e = p[i].revents;

			ares_process_fd(
			    chan,
			    e & (POLLIN | POLLERR | POLLHUP) ? p[i].fd
			                                     : ARES_SOCKET_BAD,
			    e & POLLOUT ? p[i].fd : ARES_SOCKET_BAD);
		}
	}
}

/* ---- statuses ---- */

enum kind { K_OK, K_NODATA, K_NXDOMAIN, K_TEMP };

static enum kind
kind(int status)
{
	switch (status) {
	case ARES_SUCCESS:
		return K_OK;
	case ARES_ENODATA:
		return K_NODATA;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:
		return K_NXDOMAIN;
	default:
		return K_TEMP;
	}
}

static const char *
reason(int status)
{
	if (status == ARES_ECANCELLED && expired)
		return "the DNS lookup timed out";
	return ares_strerror(status);
}

/* ---- the list ---- */

void
mxlist_free(struct mxlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->host[i].name);
		str_free(&l->host[i].ips);
		str_free(&l->host[i].why);
	}
	free(l->host);
	l->host = 0;
	l->n = 0;
	l->implicit = 0;
	l->literal = 0;
}

void
mxlist_drop(struct mxlist *l, size_t i)
{
	if (i >= l->n)
		return;
	free(l->host[i].name);
	str_free(&l->host[i].ips);
	str_free(&l->host[i].why);
	memmove(l->host + i, l->host + i + 1, (l->n - i - 1) * sizeof *l->host);
	l->n--;
}

int
mxlist_status(const struct mxlist *l)
{
	size_t i;
	int temp = 0;

	for (i = 0; i < l->n; i++) {
		if (l->host[i].nip)
			return DNS_OK;
		if (l->host[i].status == DNS_TEMP)
			temp = 1;
	}
	return temp ? DNS_TEMP : DNS_PERM_NOADDR;
}

/* a new host at the end of l; NULL when out of memory */
static struct mxhost *
add_host(struct mxlist *l, const char *name, size_t len, unsigned pref)
{
	struct mxhost *h;
	size_t bytes;

	if (size_mul(&bytes, l->n + 1, sizeof *l->host) == -1)
		return 0;
	h = realloc(l->host, bytes);
	if (!h)
		return 0;
	l->host = h;
	h = &l->host[l->n];
	memset(h, 0, sizeof *h);
	h->name = malloc(len + 1);
	if (!h->name)
		return 0;
	memcpy(h->name, name, len);
	h->name[len] = 0;
	h->pref = pref;
	h->status = DNS_OK;
	l->n++;
	return h;
}

/* ---- MX ---- */

struct mxq {
	struct mxlist *out;
	int status;
	size_t nnull; /* "MX 0 ." records */
	int nomem;
};

static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mxq *q = arg;
	struct ares_mx_reply *mx = 0, *m;

	(void)timeouts;
	pending--;
	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	q->status = ares_parse_mx_reply(abuf, alen, &mx);
	if (q->status != ARES_SUCCESS)
		return;
	for (m = mx; m; m = m->next) {
		const char *h = m->host ? m->host : "";

		if (!*h || !strcmp(h, ".")) {
			q->nnull++;
			continue;
		}
		if (!add_host(q->out, h, strlen(h), m->priority)) {
			q->nomem = 1;
			break;
		}
	}
	ares_free_data(mx);
}

static int
by_pref(const void *a, const void *b)
{
	const struct mxhost *x = a, *y = b;
	unsigned kx, ky;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	/* the random key was stored in nip while sorting */
	kx = (unsigned)x->nip;
	ky = (unsigned)y->nip;
	return kx < ky ? -1 : kx > ky;
}

/* sort by preference, equal ones shuffled; drop repeated names */
static void
order(struct mxlist *l)
{
	size_t i, j;

	for (i = 0; i < l->n; i++)
		l->host[i].nip = arc4random();
	qsort(l->host, l->n, sizeof *l->host, by_pref);
	for (i = 0; i < l->n; i++)
		l->host[i].nip = 0;
	for (i = 1; i < l->n;) {
		for (j = 0; j < i; j++)
			if (!strcasecmp(l->host[i].name, l->host[j].name))
				break;
		if (j < i)
			mxlist_drop(l, i); /* a worse copy of an earlier host */
		else
			i++;
	}
	while (l->n > DNS_HOST_MAX)
		mxlist_drop(l, l->n - 1);
}

/* ---- addresses ---- */

struct aq {
	struct mxhost *h;
	int type;
	int status;
	int nomem;
	str ips;
	size_t nip;
};

static int
has_ip(const str *ips, size_t n, const unsigned char *ip)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!memcmp(ips->s + i * IP_LEN, ip, IP_LEN))
			return 1;
	return 0;
}

static void
addr_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct aq *q = arg;
	struct hostent *he = 0;
	char **a;

	(void)timeouts;
	pending--;
	q->status = status;
	if (status != ARES_SUCCESS)
		return;
	if (q->type == T_A)
		q->status = ares_parse_a_reply(abuf, alen, &he, 0, 0);
	else
		q->status = ares_parse_aaaa_reply(abuf, alen, &he, 0, 0);
	if (q->status != ARES_SUCCESS)
		return;
	for (a = he->h_addr_list; a && *a && q->nip < DNS_ADDR_MAX; a++) {
		unsigned char ip[IP_LEN];

		if (q->type == T_A) {
			if (he->h_length != 4)
				break;
			memset(ip, 0, 10);
			ip[10] = ip[11] = 0xff;
			memcpy(ip + 12, *a, 4);
		} else {
			if (he->h_length != IP_LEN)
				break;
			memcpy(ip, *a, IP_LEN);
		}
		if (has_ip(&q->ips, q->nip, ip))
			continue;
		if (str_catb(&q->ips, (const char *)ip, IP_LEN) == -1) {
			q->nomem = 1;
			break;
		}
		q->nip++;
	}
	ares_free_hostent(he);
}

/* the AAAA and A records of every host in l */
static int
resolve(struct mxlist *l, long long deadline)
{
	struct aq *q;
	size_t i, k, nq;

	if (size_mul(&nq, l->n, 2) == -1)
		return -1;
	q = calloc(nq ? nq : 1, sizeof *q);
	if (!q)
		return -1;
	for (i = 0; i < nq; i++) {
		q[i].h = &l->host[i / 2];
		q[i].type = i % 2 ? T_A : T_AAAA;
		q[i].status = ARES_ECANCELLED;
	}
	for (i = 0; i < nq; i++) {
		pending++;
		ares_query(chan, q[i].h->name, C_IN, q[i].type, addr_cb, &q[i]);
	}
	run(deadline);
	for (i = 0; i < l->n; i++) {
		struct mxhost *h = &l->host[i];
		struct aq *six = &q[2 * i], *four = &q[2 * i + 1];
		enum kind k6, k4;

		if (six->nomem)
			six->status = ARES_ENOMEM;
		if (four->nomem)
			four->status = ARES_ENOMEM;
		k6 = kind(six->status);
		k4 = kind(four->status);
		for (k = 0; k < 2; k++) {
			struct aq *x = k ? four : six;
			size_t j;

			for (j = 0; j < x->nip; j++) {
				const unsigned char *ip =
				    (const unsigned char *)x->ips.s +
				    j * IP_LEN;
				if (has_ip(&h->ips, h->nip, ip))
					continue;
				if (str_catb(&h->ips, (const char *)ip,
				             IP_LEN) == -1)
					goto nomem;
				h->nip++;
			}
		}
		if (h->nip)
			h->status = DNS_OK;
		else if (k6 == K_TEMP || k4 == K_TEMP) {
			h->status = DNS_TEMP;
			if (fail_text(&h->why,
			              reason(k6 == K_TEMP ? six->status
			                                  : four->status),
			              0) == -1)
				goto nomem;
		} else if (k6 == K_NXDOMAIN && k4 == K_NXDOMAIN) {
			h->status = DNS_PERM_NXDOMAIN;
			if (fail_text(&h->why, "no such host", 0) == -1)
				goto nomem;
		} else {
			h->status = DNS_PERM_NOADDR;
			if (fail_text(&h->why, "the host has no address", 0) ==
			    -1)
				goto nomem;
		}
	}
	for (i = 0; i < nq; i++)
		str_free(&q[i].ips);
	free(q);
	return 0;
nomem:
	for (i = 0; i < nq; i++)
		str_free(&q[i].ips);
	free(q);
	return -1;
}

/* ---- entry points ---- */

int
dns_literal(const char *s, size_t n, unsigned char ip[IP_LEN])
{
	if (n < 3 || s[0] != '[' || s[n - 1] != ']')
		return -1;
	s++;
	n -= 2;
	if (n > 5 && !strncasecmp(s, "IPv6:", 5)) {
		if (ip_parse(s + 5, n - 5, ip) == -1 || ip_is4(ip))
			return -1;
		return 0;
	}
	if (memchr(s, ':', n))
		return -1; /* IPv6 only with its tag */
	return ip_parse(s, n, ip);
}

static int
literal(const char *d, struct mxlist *out, str *err)
{
	unsigned char ip[IP_LEN];
	char fmt[IP_FMT];
	struct mxhost *h;

	if (dns_literal(d, strlen(d), ip) == -1) {
		fail_text(err, "not a valid address literal", 0);
		return DNS_PERM_NXDOMAIN;
	}
	ip_fmt(fmt, ip);
	h = add_host(out, fmt, strlen(fmt), 0);
	if (!h || str_catb(&h->ips, (const char *)ip, IP_LEN) == -1) {
		fail_text(err, "out of memory", 0);
		return DNS_TEMP;
	}
	h->nip = 1;
	out->literal = 1;
	return DNS_OK;
}

static int
finish(struct mxlist *out, str *err)
{
	int r = mxlist_status(out);
	size_t i;

	if (r == DNS_OK)
		return r;
	/* the first host's reason stands for all */
	for (i = 0; i < out->n; i++)
		if (out->host[i].status == r || r == DNS_PERM_NOADDR)
			break;
	if (i < out->n && out->host[i].why.len)
		fail_text(err, out->host[i].why.s, 0);
	else
		fail_text(err, "no address found", 0);
	return r;
}

static int
begin(const char *name, struct mxlist *out, str *err, long long *deadline)
{
	mxlist_free(out);
	err->len = 0;
	if (str_0(err) == -1)
		return DNS_TEMP;
	if (name[0] == '[')
		return literal(name, out, err);
	if (setup(err) == -1)
		return DNS_TEMP;
	expired = 0;
	*deadline = now_ms() + (long long)timeout * 1000;
	return 1; /* go on */
}

int
dns_host(const char *name, struct mxlist *out, str *err)
{
	long long deadline;
	int r = begin(name, out, err, &deadline);

	if (r != 1)
		return r;
	if (!add_host(out, name, strlen(name), 0) ||
	    resolve(out, deadline) == -1) {
		fail_text(err, "out of memory", 0);
		return DNS_TEMP;
	}
	if (out->host[0].status == DNS_PERM_NXDOMAIN) {
		fail_text(err, "no such host", 0);
		return DNS_PERM_NXDOMAIN;
	}
	return finish(out, err);
}

int
dns_mx(const char *domain, struct mxlist *out, str *err)
{
	long long deadline;
	struct mxq q;
	int r = begin(domain, out, err, &deadline);

	if (r != 1)
		return r;
	memset(&q, 0, sizeof q);
	q.out = out;
	q.status = ARES_ECANCELLED;
	pending++;
	ares_query(chan, domain, C_IN, T_MX, mx_cb, &q);
	run(deadline);
	if (q.nomem) {
		fail_text(err, "out of memory", 0);
		return DNS_TEMP;
	}
	switch (kind(q.status)) {
	case K_OK:
	case K_NODATA:
		break;
	case K_NXDOMAIN:
		fail_text(err, "no such domain", 0);
		return DNS_PERM_NXDOMAIN;
	case K_TEMP:
		fail_text(err, reason(q.status), 0);
		return DNS_TEMP;
	}
	if (!out->n && q.nnull) {
		fail_text(err, "the domain accepts no mail (null MX)", 0);
		return DNS_NULLMX;
	}
	if (!out->n) {
		/* no MX records: the implicit MX, the domain itself */
		if (!add_host(out, domain, strlen(domain), 0)) {
			fail_text(err, "out of memory", 0);
			return DNS_TEMP;
		}
		out->implicit = 1;
	}
	order(out);
	if (resolve(out, deadline) == -1) {
		fail_text(err, "out of memory", 0);
		return DNS_TEMP;
	}
	if (out->implicit && out->host[0].status != DNS_OK &&
	    out->host[0].status != DNS_TEMP) {
		out->host[0].status = DNS_PERM_NOADDR;
		fail_text(&out->host[0].why, "no MX and no address records", 0);
	}
	return finish(out, err);
}
