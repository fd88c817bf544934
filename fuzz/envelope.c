/*
 * envelope.c: fuzz target for env_read() on memory input, with small
 * limits (the first byte picks them) so every limit is reached.  An
 * envelope that reads must obey the limits and read back the same when
 * rebuilt with env_add().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static str sender, rcpts, sender2, rcpts2, again;
	struct env_limits lim;
	size_t n, n2, i, off, l;
	io in;
	int r;

	if (size < 1)
		return 0;
	lim.addr_max = data[0] & 0x3f;
	lim.rcpt_max = (data[0] >> 6) * 3;
	lim.total_max = 64 + (size_t)data[0] * 2;
	if (data[0] == 0xff)
		lim = env_default_limits;
	io_init_mem(&in, (const char *)data + 1, size - 1);
	r = env_read(&in, &lim, &sender, &rcpts, &n);
	switch (r) {
	case QQ_OK:
		break;
	case QQ_READ:
	case QQ_FORMAT:
	case QQ_ADDRLONG:
	case QQ_NOMEM:
		return 0;
	default:
		abort(); /* memory input cannot time out */
	}
	if (!sender.s || sender.s[sender.len] || sender.len > lim.addr_max ||
	    memchr(sender.s, 0, sender.len))
		abort();
	if (n > lim.rcpt_max || (n && (!rcpts.len || rcpts.s[rcpts.len - 1])))
		abort();
	if (sender.len + 2 + rcpts.len + n + 1 > lim.total_max)
		abort();

	/* rebuild and read again */
	again.len = 0;
	if (env_add(&again, 'F', sender.s, sender.len))
		abort();
	for (i = 0, off = 0; i < n; i++) {
		if (off >= rcpts.len)
			abort();
		l = strlen(rcpts.s + off);
		if (l > lim.addr_max || env_add(&again, 'T', rcpts.s + off, l))
			abort();
		off += l + 1;
	}
	if (off != rcpts.len || str_catc(&again, 0))
		abort();
	io_init_mem(&in, again.s, again.len);
	if (env_read(&in, &lim, &sender2, &rcpts2, &n2) != QQ_OK || n2 != n ||
	    sender2.len != sender.len || memcmp(sender2.s, sender.s, sender.len) ||
	    rcpts2.len != rcpts.len || memcmp(rcpts2.s, rcpts.s, rcpts.len))
		abort();
	return 0;
}
