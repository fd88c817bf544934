/*
 * moat-tlsd: the TLS side of one SMTP connection, in a process of its own.
 *
 * Runs as: whoever started it, which is moat-smtpd (moatd, or the `moat run`
 * user) on STARTTLS, or moat-remote (moatr) for its STARTTLS; `moat run`
 * and moat-setup run it with -g.
 *
 *   moat-tlsd -s [-t seconds] certfile
 *	Server: the network is descriptor 0 (read) and 1 (write), the
 *	plaintext side is descriptor 3, a status pipe is descriptor 4.
 *	certfile holds the certificate chain and the private key, in PEM
 *	(control/servercert.pem).  Once it is loaded, "ready\n" goes to the
 *	status pipe; after the handshake, "ok PROTOCOL CIPHER\n", and the pipe
 *	is closed.  On any failure, "error TEXT\n" and exit 1.  Then bytes are
 *	relayed both ways until both sides are done: a TLS close or EOF from
 *	the network ends the plaintext side's input (shutdown SHUT_WR); EOF on
 *	the plaintext side sends close_notify and ends.  -t bounds the
 *	handshake and any time in which nothing moves (default 1200).
 *   moat-tlsd -c [-t seconds] [servername]
 *	Client, for moat-remote after the server's 220 to STARTTLS: the same
 *	descriptors and status lines.  Opportunistic: the server's
 *	certificate is not checked (RFC 7435), servername goes out as SNI.
 *   moat-tlsd -g certfile [name]
 *	Writes a self-signed certificate for name (default: this host's name)
 *	and its P-256 key to certfile, mode 0600, through a temporary file and
 *	a rename; an existing certfile is left alone.
 *
 * moat-smtpd itself is not linked with OpenSSL: a connection that never
 * says STARTTLS costs no TLS memory, and the parser of the TLS records runs
 * in a process that holds nothing but this one connection.
 * TLS 1.2 is the oldest version offered; renegotiation and compression are
 * off.  No client certificate is asked for.  A peer that closes the TCP
 * connection without a TLS close_notify ends its side as if it had sent
 * one: SMTP's own end marks (the final dot, QUIT) say whether a message
 * is whole, so truncation cannot pass for a message.  The key must not be
 * encrypted: there is nobody to ask for a passphrase.
 *
 * Exit codes: 0 after a clean end; 1 on a failed handshake, a timeout or a
 * network error; 100 on a usage error; 111 when -g cannot write its file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "log.h"

#define NET_IN 0
#define NET_OUT 1
#define PLAIN 3
#define STATUS 4
#define BUFSIZE 16384 /* one TLS record */

static int status_fd = -1;
static long timeout = 1200;

static void
status(const char *s)
{
	size_t n = strlen(s), off = 0;

	while (status_fd != -1 && off < n) {
		ssize_t w = write(status_fd, s + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}

/* the first OpenSSL error, or what the caller says */
static const char *
ssl_why(const char *what)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return what;
	ERR_error_string_n(e, buf, sizeof buf);
	return buf;
}

static _Noreturn void
fail(const char *what, const char *why)
{
	char line[512];

	log_msg("%s: %s", what, why); /* first: moat-smtpd may end us */
	snprintf(line, sizeof line, "error %s: %s\n", what, why);
	status(line);
	_exit(1);
}

static int
nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static long
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec;
}

/* wait for one of the wanted events, at most until deadline */
static void
wait_for(struct pollfd *p, int n, long deadline)
{
	long left = deadline - now();
	int r;

	if (left <= 0)
		fail("connection", "timed out");
	r = poll(p, (nfds_t)n, left > INT_MAX / 1000 ? INT_MAX : (int)left * 1000);
	if (r < 0 && errno != EINTR)
		fail("poll", strerror(errno));
}

static int
no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

static SSL_CTX *
server_ctx(const char *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		fail("TLS", ssl_why("cannot make a context"));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				 SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* an encrypted key fails to load; it never prompts on a terminal */
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		fail(cert, ssl_why("cannot load the certificate"));
	if (SSL_CTX_use_PrivateKey_file(ctx, cert, SSL_FILETYPE_PEM) != 1)
		fail(cert, ssl_why("cannot load the private key"));
	if (SSL_CTX_check_private_key(ctx) != 1)
		fail(cert, ssl_why("the key does not match the certificate"));
	return ctx;
}

static SSL_CTX *
client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		fail("TLS", ssl_why("cannot make a context"));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
				 SSL_OP_NO_RENEGOTIATION |
				 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, 0);
	return ctx;
}

static void
handshake(SSL *ssl)
{
	long deadline = now() + timeout;
	char line[256];

	for (;;) {
		int r = SSL_do_handshake(ssl), e;
		struct pollfd p = {.fd = NET_IN, .events = POLLIN};

		if (r == 1)
			break;
		e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ)
			p.fd = NET_IN, p.events = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			p.fd = NET_OUT, p.events = POLLOUT;
		else
			fail("handshake", ssl_why(e == SSL_ERROR_SYSCALL
							 ? "connection closed"
							 : "failed"));
		wait_for(&p, 1, deadline);
	}
	snprintf(line, sizeof line, "ok %s %s\n", SSL_get_version(ssl),
		 SSL_get_cipher_name(ssl));
	status(line);
	close(status_fd);
	status_fd = -1;
}

/* after a failed SSL_read/SSL_write: note what it waits for, and return 0;
 * or return the error that ends it */
static int
want(SSL *ssl, int r, int *net_in, int *net_out)
{
	int e = SSL_get_error(ssl, r);

	if (e == SSL_ERROR_WANT_READ)
		*net_in = 1;
	else if (e == SSL_ERROR_WANT_WRITE)
		*net_out = 1;
	else
		return e;
	return 0;
}

/*
 * Relay.  dec: plaintext from the network waiting for descriptor 3;
 * enc: plaintext from descriptor 3 waiting for SSL_write, which must be
 * retried with the same bytes after WANT_READ/WANT_WRITE.
 */
static int
relay(SSL *ssl)
{
	static char dec[BUFSIZE], enc[BUFSIZE];
	size_t dec_off = 0, dec_len = 0, enc_len = 0;
	int net_eof = 0, plain_eof = 0, plain_shut = 0;
	long deadline = now() + timeout;

	for (;;) {
		struct pollfd p[3];
		int n = 0, moved = 0, net_in = 0, net_out = 0, plain_in = 0,
		    plain_out = 0;

		/* network -> plaintext side */
		if (!net_eof && dec_len == 0) {
			int r = SSL_read(ssl, dec, sizeof dec);
			if (r > 0) {
				dec_off = 0;
				dec_len = (size_t)r;
				moved = 1;
			} else {
				int e = want(ssl, r, &net_in, &net_out);
				if (e == SSL_ERROR_ZERO_RETURN)
					net_eof = moved = 1;
				else if (e)
					return -1; /* reset, or a bad record */
			}
		}
		if (dec_len) {
			ssize_t w = write(PLAIN, dec + dec_off, dec_len);
			if (w > 0) {
				dec_off += (size_t)w;
				dec_len -= (size_t)w;
				moved = 1;
			} else if (w < 0 && (errno == EAGAIN || errno == EINTR))
				plain_out = 1;
			else
				return 0; /* moat-smtpd is gone */
		}
		if (net_eof && !dec_len && !plain_shut) {
			shutdown(PLAIN, SHUT_WR);
			plain_shut = 1;
		}

		/* plaintext side -> network */
		if (!plain_eof && enc_len == 0) {
			ssize_t r = read(PLAIN, enc, sizeof enc);
			if (r > 0) {
				enc_len = (size_t)r;
				moved = 1;
			} else if (r == 0 || (errno != EAGAIN && errno != EINTR))
				plain_eof = moved = 1;
			else
				plain_in = 1;
		}
		if (enc_len) {
			int r = SSL_write(ssl, enc, (int)enc_len);
			if (r > 0) {
				memmove(enc, enc + r, enc_len - (size_t)r);
				enc_len -= (size_t)r;
				moved = 1;
			} else if (want(ssl, r, &net_in, &net_out))
				return -1;
		}
		if (plain_eof && !enc_len) {
			/* moat-smtpd said its last word: close_notify, once,
			 * waiting for the socket at most the timeout */
			alarm((unsigned)timeout);
			fcntl(NET_OUT, F_SETFL,
			      fcntl(NET_OUT, F_GETFL) & ~O_NONBLOCK);
			SSL_shutdown(ssl);
			return 0;
		}
		if (net_eof && plain_shut && plain_eof)
			return 0;
		if (moved) {
			deadline = now() + timeout;
			continue;
		}
		if (net_in)
			p[n++] = (struct pollfd){.fd = NET_IN, .events = POLLIN};
		if (net_out)
			p[n++] = (struct pollfd){.fd = NET_OUT, .events = POLLOUT};
		if (plain_in || plain_out)
			p[n++] = (struct pollfd){
				.fd = PLAIN,
				.events = (short)((plain_in ? POLLIN : 0) |
						  (plain_out ? POLLOUT : 0))};
		if (n == 0)
			return 0;
		wait_for(p, n, deadline);
	}
}

/* cert: the server's certificate file; NULL: the client, to name */
static int
serve(const char *cert, const char *name)
{
	SSL_CTX *ctx;
	SSL *ssl;
	int r;

	status_fd = STATUS;
	if (fcntl(PLAIN, F_GETFD) == -1 || fcntl(STATUS, F_GETFD) == -1)
		die(100, "descriptors 3 and 4 must be open");
	ctx = cert ? server_ctx(cert) : client_ctx();
	if (nonblock(NET_IN) == -1 || nonblock(NET_OUT) == -1 ||
	    nonblock(PLAIN) == -1)
		fail("fcntl", strerror(errno));
	if (!(ssl = SSL_new(ctx)) || SSL_set_rfd(ssl, NET_IN) != 1 ||
	    SSL_set_wfd(ssl, NET_OUT) != 1)
		fail("TLS", ssl_why("cannot make a session"));
	if (cert)
		SSL_set_accept_state(ssl);
	else {
		SSL_set_connect_state(ssl);
		/* SNI takes a host name, never an address literal */
		if (name && *name && name[0] != '[' && !strchr(name, ':') &&
		    strspn(name, "0123456789.") != strlen(name))
			SSL_set_tlsext_host_name(ssl, name);
	}
	status("ready\n");
	handshake(ssl);
	r = relay(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return r == 0 ? 0 : 1;
}

/* a self-signed certificate and its key, for `moat run` and moat-setup */
static int
generate(const char *path, const char *name)
{
	char host[256], tmp[PATH_MAX];
	EVP_PKEY *key = 0;
	X509 *x = 0;
	X509_NAME *subj;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	FILE *f = 0;
	int fd = -1, ok = 0;
	char san[300];

	if (access(path, F_OK) == 0)
		return 0;
	if (!name) {
		if (gethostname(host, sizeof host) == -1)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = 0;
		name = host;
	}
	if (strlen(name) > 253 || snprintf(tmp, sizeof tmp, "%s.tmp%ld", path,
					   (long)getpid()) >= (int)sizeof tmp)
		die(100, "name or path too long");
	snprintf(san, sizeof san, "DNS:%s", name);
	if (!(key = EVP_EC_gen("P-256")) || !(x = X509_new()))
		goto out;
	if (!X509_set_version(x, 2) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(0)) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -86400) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) ||
	    !X509_set_pubkey(x, key))
		goto out;
	subj = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
					(const unsigned char *)name, -1, -1, 0) ||
	    !X509_set_issuer_name(x, subj))
		goto out;
	X509V3_set_ctx(&v3, x, x, 0, 0, 0);
	if (!(ext = X509V3_EXT_conf_nid(0, &v3, NID_subject_alt_name, san)))
		goto out;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!ok || !X509_sign(x, key, EVP_sha256()))
		goto out;
	ok = 0;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) ==
	    -1) {
		log_sys("cannot create %s", tmp);
		goto out;
	}
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		goto out;
	}
	if (PEM_write_PrivateKey(f, key, 0, 0, 0, 0, 0) != 1 ||
	    PEM_write_X509(f, x) != 1 || fflush(f) != 0 || fsync(fd) != 0) {
		fclose(f);
		unlink(tmp);
		goto out;
	}
	if (fclose(f) != 0 || rename(tmp, path) == -1) {
		log_sys("cannot write %s", path);
		unlink(tmp);
		goto out;
	}
	ok = 1;
out:
	if (!ok)
		log_msg("cannot make a certificate in %s: %s", path,
			ssl_why("failed"));
	X509_free(x);
	EVP_PKEY_free(key);
	return ok ? 0 : 111;
}

static _Noreturn void
usage(void)
{
	die(100, "usage: moat-tlsd -s [-t seconds] certfile | "
		 "moat-tlsd -c [-t seconds] [servername] | "
		 "moat-tlsd -g certfile [name]");
}

int
main(int argc, char **argv)
{
	int opt, server = 0, client = 0, gen = 0;
	char *end;

	log_init("moat-tlsd");
	signal(SIGPIPE, SIG_IGN);
	while ((opt = getopt(argc, argv, "scgt:")) != -1) {
		switch (opt) {
		case 's':
			server = 1;
			break;
		case 'c':
			client = 1;
			break;
		case 'g':
			gen = 1;
			break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno || *end || timeout <= 0 || timeout > 86400)
				usage();
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (server + client + gen != 1 || argc > (gen ? 2 : 1) ||
	    argc < (client ? 0 : 1))
		usage();
	if (gen)
		return generate(argv[0], argc > 1 ? argv[1] : 0);
	if (client)
		return serve(0, argc ? argv[0] : 0);
	return serve(argv[0], 0);
}
