/*
 * header.c: fuzz target for hdr_parse() and hdr_alist().
 *
 * The input is parsed both as a header and as an address list.  A header
 * that parses must consist of valid field names, each field ending in LF,
 * within the limits.  An address list that parses must report offsets in
 * order and inside the input, internal forms of printable ASCII; and the
 * way moat-inject rewrites a list (a host spliced in after each bare local
 * part, each domain replaced) must give a list that parses again to the
 * same mailboxes with the new hosts: a rewrite never mangles a field.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_header(const char *s, size_t size)
{
	static struct header h;
	const char *why;
	size_t used, i, total = 0;
	int r;

	h.raw.len = 0;
	h.n = 0;
	r = hdr_parse(&h, s, size, &used, &why);
	if (r != HDR_OK && r != HDR_SYNTAX && r != HDR_TOOLONG &&
	    r != HDR_NOMEM)
		abort();
	if (used > size || h.raw.len >= HDR_MAX || h.n > HDR_FIELDS_MAX)
		abort();
	for (i = 0; i < h.n; i++) {
		const char *name, *v;
		size_t nl, vl;

		if (h.f[i].off != total || h.f[i].len >= HDR_FIELD_MAX + 1)
			abort();
		total += h.f[i].len;
		name = hdr_name(&h, i, &nl);
		if (!hdr_name_ok(name, nl))
			abort();
		v = hdr_value(&h, i, &vl);
		if (v < name + nl || v + vl + 1 != name + h.f[i].len ||
		    v[vl] != '\n')
			abort();
	}
	if (total != h.raw.len)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hdr_alist al, al2;
	static str fixed;
	const char *s = (const char *)data, *why;
	size_t i, pos = 0, prev = 0;
	int r;

	check_header(s, size);

	r = hdr_alist(s, size, &al, &why);
	if (r != HDR_OK) {
		if (r != HDR_SYNTAX && r != HDR_TOOLONG && r != HDR_NOMEM)
			abort();
		if (!why || !*why)
			abort(); /* every refusal says why */
		return 0;
	}
	if (al.n > HDR_ADDRS_MAX)
		abort();
	fixed.len = 0;
	for (i = 0; i < al.n; i++) {
		const struct hdr_mbox *m = &al.m[i];
		const char *a = al.text.s + m->addr;
		size_t k;

		if (m->lstart < prev || m->lstart >= m->lend || m->lend > size)
			abort();
		if (m->has_domain &&
		    (m->dstart < m->lend || m->dstart >= m->dend ||
		     m->dend > size))
			abort();
		prev = m->has_domain ? m->dend : m->lend;
		if (strlen(a) != m->alen || m->llen == 0 ||
		    m->llen > m->alen ||
		    (m->has_domain ? a[m->llen] != '@' : m->llen != m->alen))
			abort();
		for (k = 0; k < m->alen; k++)
			if ((unsigned char)a[k] < 32 ||
			    (unsigned char)a[k] > 126)
				abort();
		if (m->has_domain && !memchr(a, '@', m->alen))
			abort();
		/* moat-inject's rewrite */
		if (!m->has_domain) {
			str_catb(&fixed, s + pos, m->lend - pos);
			str_cats(&fixed, "@q.example");
			pos = m->lend;
		} else {
			str_catb(&fixed, s + pos, m->dstart - pos);
			str_cats(&fixed, "d.example");
			pos = m->dend;
		}
	}
	str_catb(&fixed, s + pos, size - pos);
	r = hdr_alist(fixed.s, fixed.len, &al2, &why);
	if (r == HDR_TOOLONG)
		return 0; /* the additions may pass the limit */
	if (r != HDR_OK || al2.n != al.n)
		abort();
	for (i = 0; i < al.n; i++) {
		const char *a = al.text.s + al.m[i].addr;
		const char *b = al2.text.s + al2.m[i].addr;
		size_t ll = al.m[i].llen;

		if (!al2.m[i].has_domain || strncmp(a, b, ll) || b[ll] != '@' ||
		    strcmp(b + ll + 1,
			   al.m[i].has_domain ? "d.example" : "q.example"))
			abort();
	}
	return 0;
}
