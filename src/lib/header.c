/*
 * header.c: message headers and address lists; see header.h.
 *
 * An address list is cut into tokens first (atoms, quoted strings, domain
 * literals, the specials < > @ , ; : .), white space, line folds and
 * comments dropped, then read by a small recursive-descent parser that
 * records, for every mailbox, where its local part and domain lie in the
 * original text.  Errors are sentences for a person, not codes.
 */
#include "header.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* --- the header --- */

int
hdr_name_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 32 || c >= 127 || c == ':')
			return 0;
	}
	return 1;
}

/* the name of a field line: up to the colon, white space before it
 * trimmed (RFC 5322's obsolete "Subject : x"); 0 when none */
static size_t
name_len(const char *line, size_t n, size_t *colon)
{
	const char *c = memchr(line, ':', n);
	size_t l;

	if (!c)
		return 0;
	l = (size_t)(c - line);
	*colon = l;
	while (l && (line[l - 1] == ' ' || line[l - 1] == '\t'))
		l--;
	return hdr_name_ok(line, l) ? l : 0;
}

int
hdr_line_kind(const char *line, size_t n)
{
	size_t colon;

	if (n && line[n - 1] == '\n')
		n--;
	if (n == 0)
		return HDR_LINE_END;
	if (line[0] == ' ' || line[0] == '\t')
		return HDR_LINE_CONT;
	return name_len(line, n, &colon) ? HDR_LINE_FIELD : HDR_LINE_OTHER;
}

int
hdr_add_line(struct header *h, const char *line, size_t n, const char **why)
{
	int kind = hdr_line_kind(line, n);
	size_t colon, total, namelen = 0;

	if (n && line[n - 1] == '\n')
		n--;
	if (memchr(line, 0, n)) {
		*why = "a NUL byte in the header";
		return HDR_SYNTAX;
	}
	if (memchr(line, '\r', n)) {
		*why = "a carriage return not followed by a line feed in the "
		       "header";
		return HDR_SYNTAX;
	}
	if (kind == HDR_LINE_CONT) {
		if (h->n == 0) {
			*why = "a continuation line before the first header "
			       "field";
			return HDR_SYNTAX;
		}
		if (size_add(&total, h->f[h->n - 1].len, n) == -1 ||
		    total >= HDR_FIELD_MAX) {
			*why = "a header field longer than 64 KiB";
			return HDR_TOOLONG;
		}
	} else if (kind == HDR_LINE_FIELD) {
		namelen = name_len(line, n, &colon);
		if (h->n >= HDR_FIELDS_MAX) {
			*why = "more than 10000 header fields";
			return HDR_TOOLONG;
		}
		if (n >= HDR_FIELD_MAX) {
			*why = "a header field longer than 64 KiB";
			return HDR_TOOLONG;
		}
	} else {
		*why = "not a header line";
		return HDR_SYNTAX;
	}
	if (size_add(&total, h->raw.len, n) == -1 || total >= HDR_MAX) {
		*why = "a header larger than 1 MiB";
		return HDR_TOOLONG;
	}
	if (kind == HDR_LINE_FIELD && h->n == h->a) {
		size_t na = h->a ? h->a * 2 : 32, bytes;
		struct hdr_field *nf;

		if (size_mul(&bytes, na, sizeof *nf) == -1 ||
		    !(nf = realloc(h->f, bytes))) {
			*why = "out of memory";
			return HDR_NOMEM;
		}
		h->f = nf;
		h->a = na;
	}
	if (str_readyplus(&h->raw, n + 1) == -1) {
		*why = "out of memory";
		return HDR_NOMEM;
	}
	if (kind == HDR_LINE_FIELD) {
		h->f[h->n].off = h->raw.len;
		h->f[h->n].len = 0;
		h->f[h->n].namelen = namelen;
		h->n++;
	}
	str_catb(&h->raw, line, n);
	str_catc(&h->raw, '\n');
	h->f[h->n - 1].len += n + 1;
	return HDR_OK;
}

int
hdr_parse(struct header *h, const char *buf, size_t len, size_t *used,
	  const char **why)
{
	size_t pos = 0;

	*used = 0;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		size_t next = nl ? pos + l + 1 : len;
		int kind = hdr_line_kind(buf + pos, l), r;

		if (kind == HDR_LINE_END) {
			pos = next;
			break;
		}
		if (kind == HDR_LINE_OTHER)
			break;
		r = hdr_add_line(h, buf + pos, l, why);
		if (r != HDR_OK) {
			*used = pos;
			return r;
		}
		pos = next;
	}
	*used = pos;
	return HDR_OK;
}

void
hdr_free(struct header *h)
{
	str_free(&h->raw);
	free(h->f);
	h->f = 0;
	h->n = h->a = 0;
}

const char *
hdr_name(const struct header *h, size_t i, size_t *len)
{
	*len = h->f[i].namelen;
	return h->raw.s + h->f[i].off;
}

const char *
hdr_value(const struct header *h, size_t i, size_t *len)
{
	const char *s = h->raw.s + h->f[i].off;
	const char *c = memchr(s, ':', h->f[i].len);
	size_t start = (size_t)(c - s) + 1;

	*len = h->f[i].len - start - 1; /* the final LF */
	return s + start;
}

int
hdr_is(const struct header *h, size_t i, const char *name)
{
	size_t l = strlen(name);

	return h->f[i].namelen == l &&
	       !strncasecmp(h->raw.s + h->f[i].off, name, l);
}

long
hdr_find(const struct header *h, const char *name, size_t from)
{
	size_t i;

	for (i = from; i < h->n; i++)
		if (hdr_is(h, i, name))
			return (long)i;
	return -1;
}

int
hdr_unfold(const char *v, size_t n, str *out)
{
	size_t i;

	out->len = 0;
	while (n && (*v == ' ' || *v == '\t' || *v == '\n')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\n'))
		n--;
	if (str_ready(out, n + 1) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] == '\n')
			continue;
		out->s[out->len++] = v[i];
	}
	return str_0(out);
}

/* --- address lists: tokens --- */

enum { T_ATOM, T_QUOTED, T_LITERAL, T_SPECIAL };

struct tok {
	int type;
	size_t s, e; /* [s, e) in the value; quotes and brackets included */
};

struct ps {
	const char *v;
	size_t n;
	struct tok *t;
	size_t nt, i;
	struct hdr_alist *out;
	const char *why;
};

static int
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return 1; /* RFC 6532 UTF-8, in names; refused in addresses */
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c && strchr("!#$%&'*+-/=?^_`{|}~", c) != 0;
}

/* a line break is only a fold: it must be followed by white space */
static int
fold_ok(const char *v, size_t n, size_t i)
{
	return i + 1 < n && (v[i + 1] == ' ' || v[i + 1] == '\t');
}

static int
bad_control(unsigned char c)
{
	return (c < 32 && c != '\t' && c != '\n') || c == 127;
}

/* skip white space, folds and (nested) comments from *i */
static int
skip_cfws(struct ps *p, size_t *i)
{
	const char *v = p->v;
	size_t n = p->n;

	while (*i < n) {
		unsigned char c = (unsigned char)v[*i];

		if (c == ' ' || c == '\t') {
			++*i;
		} else if (c == '\n') {
			if (!fold_ok(v, n, *i)) {
				p->why = "a line break that is not a fold";
				return -1;
			}
			++*i;
		} else if (c == '(') {
			size_t depth = 1;

			++*i;
			while (depth) {
				if (*i >= n) {
					p->why = "a comment without its "
						 "closing ')'";
					return -1;
				}
				c = (unsigned char)v[*i];
				if (c == '\\') {
					if (*i + 1 >= n) {
						p->why = "a backslash at the "
							 "end";
						return -1;
					}
					c = (unsigned char)v[*i + 1];
					if (bad_control(c) || c == '\n') {
						p->why = "a control character "
							 "in a comment";
						return -1;
					}
					*i += 2;
					continue;
				}
				if (c == '\n' && !fold_ok(v, n, *i)) {
					p->why = "a line break that is not a "
						 "fold";
					return -1;
				}
				if (bad_control(c)) {
					p->why = "a control character in a "
						 "comment";
					return -1;
				}
				if (c == '(')
					depth++;
				else if (c == ')')
					depth--;
				++*i;
			}
		} else {
			break;
		}
	}
	return 0;
}

static int
push(struct ps *p, int type, size_t s, size_t e)
{
	p->t[p->nt].type = type;
	p->t[p->nt].s = s;
	p->t[p->nt].e = e;
	p->nt++;
	return 0;
}

static int
tokenize(struct ps *p)
{
	const char *v = p->v;
	size_t n = p->n, i = 0, s;

	for (;;) {
		unsigned char c;

		if (skip_cfws(p, &i) == -1)
			return HDR_SYNTAX;
		if (i >= n)
			return HDR_OK;
		c = (unsigned char)v[i];
		s = i;
		if (c == '"') {
			for (i++;; i++) {
				if (i >= n) {
					p->why = "a quoted string without its "
						 "closing '\"'";
					return HDR_SYNTAX;
				}
				c = (unsigned char)v[i];
				if (c == '"')
					break;
				if (c == '\\') {
					if (i + 1 >= n || bad_control(
						  (unsigned char)v[i + 1]) ||
					    v[i + 1] == '\n') {
						p->why = "a bad backslash in a "
							 "quoted string";
						return HDR_SYNTAX;
					}
					i++;
				} else if (c == '\n' && !fold_ok(v, n, i)) {
					p->why = "a line break that is not a "
						 "fold";
					return HDR_SYNTAX;
				} else if (bad_control(c)) {
					p->why = "a control character in a "
						 "quoted string";
					return HDR_SYNTAX;
				}
			}
			push(p, T_QUOTED, s, ++i);
		} else if (c == '[') {
			for (i++;; i++) {
				if (i >= n) {
					p->why = "a domain literal without its "
						 "closing ']'";
					return HDR_SYNTAX;
				}
				c = (unsigned char)v[i];
				if (c == ']')
					break;
				if (c == '[' || c == '\\' || c <= 32 ||
				    c >= 127) {
					p->why = "a bad character in a domain "
						 "literal";
					return HDR_SYNTAX;
				}
			}
			push(p, T_LITERAL, s, ++i);
		} else if (strchr("<>@,;:.", c)) {
			push(p, T_SPECIAL, s, ++i);
		} else if (is_atext(c)) {
			while (i < n && is_atext((unsigned char)v[i]))
				i++;
			push(p, T_ATOM, s, i);
		} else if (c == ')') {
			p->why = "a ')' without its '('";
			return HDR_SYNTAX;
		} else if (c == ']') {
			p->why = "a ']' without its '['";
			return HDR_SYNTAX;
		} else if (c == '\\') {
			p->why = "a backslash outside quotes";
			return HDR_SYNTAX;
		} else {
			p->why = "a control character";
			return HDR_SYNTAX;
		}
	}
}

/* --- address lists: grammar --- */

static int
at_special(const struct ps *p, char c)
{
	return p->i < p->nt && p->t[p->i].type == T_SPECIAL &&
	       p->v[p->t[p->i].s] == c;
}

static int
at_word(const struct ps *p)
{
	return p->i < p->nt &&
	       (p->t[p->i].type == T_ATOM || p->t[p->i].type == T_QUOTED);
}

/* append token k's contribution to the internal form of an address */
static int
canon(struct ps *p, size_t k)
{
	const struct tok *t = &p->t[k];
	str *o = &p->out->text;
	size_t j;

	if (t->type == T_QUOTED) {
		for (j = t->s + 1; j + 1 < t->e; j++) {
			unsigned char c = (unsigned char)p->v[j];

			if (c == '\n')
				continue;
			if (c == '\\')
				c = (unsigned char)p->v[++j];
			if (c < 32 || c >= 127) {
				p->why = c >= 127 ? "a non-ASCII character in "
						    "an address"
						  : "a control character in an "
						    "address";
				return HDR_SYNTAX;
			}
			if (str_catc(o, (char)c) == -1)
				return HDR_NOMEM;
		}
		return HDR_OK;
	}
	for (j = t->s; j < t->e; j++)
		if ((unsigned char)p->v[j] >= 127) {
			p->why = "a non-ASCII character in an address";
			return HDR_SYNTAX;
		}
	return str_catb(o, p->v + t->s, t->e - t->s) == -1 ? HDR_NOMEM
							   : HDR_OK;
}

/* a dot-separated domain (atoms) or a literal; [*first, *last] tokens */
static int
domain(struct ps *p, size_t *first, size_t *last, int *literal)
{
	*literal = 0;
	if (p->i < p->nt && p->t[p->i].type == T_LITERAL) {
		*first = *last = p->i++;
		*literal = 1;
		return HDR_OK;
	}
	if (p->i >= p->nt || p->t[p->i].type != T_ATOM) {
		p->why = "no domain after '@'";
		return HDR_SYNTAX;
	}
	*first = *last = p->i++;
	while (at_special(p, '.')) {
		p->i++;
		if (p->i >= p->nt || p->t[p->i].type != T_ATOM) {
			p->why = "a domain that ends with a dot or has two "
				 "dots in a row";
			return HDR_SYNTAX;
		}
		*last = p->i++;
	}
	return HDR_OK;
}

/* local-part ["@" domain]: one mailbox recorded */
static int
addr_spec(struct ps *p)
{
	struct hdr_alist *o = p->out;
	struct hdr_mbox *m;
	size_t lfirst, llast, dfirst = 0, dlast = 0, k, start, llen;
	int literal = 0, has_domain = 0, r;

	if (!at_word(p)) {
		if (p->i >= p->nt)
			p->why = "an address is missing";
		else if (p->t[p->i].type == T_LITERAL)
			p->why = "a domain literal where an address should be";
		else if (at_special(p, '@'))
			p->why = "an address with nothing before '@'";
		else
			p->why = "an address is missing";
		return HDR_SYNTAX;
	}
	/* word *("." [word]): stray dots ("a..b", "a.") occur in the wild */
	lfirst = llast = p->i++;
	for (;;) {
		if (at_special(p, '.')) {
			llast = p->i++;
		} else if (at_word(p) && p->t[p->i - 1].type == T_SPECIAL) {
			llast = p->i++;
		} else {
			break;
		}
	}
	if (at_special(p, '@')) {
		p->i++;
		r = domain(p, &dfirst, &dlast, &literal);
		if (r != HDR_OK)
			return r;
		has_domain = 1;
	}
	if (o->n >= HDR_ADDRS_MAX) {
		p->why = "more than 10000 addresses in one list";
		return HDR_TOOLONG;
	}
	if (o->n == o->a) {
		size_t na = o->a ? o->a * 2 : 8, bytes;
		struct hdr_mbox *nm;

		if (size_mul(&bytes, na, sizeof *nm) == -1 ||
		    !(nm = realloc(o->m, bytes)))
			return HDR_NOMEM;
		o->m = nm;
		o->a = na;
	}
	start = o->text.len;
	for (k = lfirst; k <= llast; k++)
		if ((r = canon(p, k)) != HDR_OK)
			return r;
	if (o->text.len == start) {
		p->why = "an empty local part";
		return HDR_SYNTAX;
	}
	llen = o->text.len - start;
	if (has_domain) {
		if (str_catc(&o->text, '@') == -1)
			return HDR_NOMEM;
		for (k = dfirst; k <= dlast; k++)
			if ((r = canon(p, k)) != HDR_OK)
				return r;
	}
	if (str_catc(&o->text, 0) == -1)
		return HDR_NOMEM;
	m = &o->m[o->n++];
	m->lstart = p->t[lfirst].s;
	m->lend = p->t[llast].e;
	m->has_domain = has_domain;
	m->literal = literal;
	m->dstart = has_domain ? p->t[dfirst].s : 0;
	m->dend = has_domain ? p->t[dlast].e : 0;
	m->addr = start;
	m->alen = o->text.len - start - 1;
	m->llen = llen;
	return HDR_OK;
}

/* "<" [route ":"] addr-spec ">", the '<' already taken */
static int
angle(struct ps *p)
{
	size_t f, l;
	int lit, r;

	if (at_special(p, '@')) {
		/* obsolete route: "@a,@b:" is dropped */
		for (;;) {
			if (!at_special(p, '@')) {
				p->why = "a bad route in an angle address";
				return HDR_SYNTAX;
			}
			p->i++;
			if ((r = domain(p, &f, &l, &lit)) != HDR_OK)
				return r;
			while (at_special(p, ','))
				p->i++;
			if (at_special(p, ':')) {
				p->i++;
				break;
			}
		}
	}
	if (at_special(p, '>')) {
		p->why = "an empty address <>";
		return HDR_SYNTAX;
	}
	if ((r = addr_spec(p)) != HDR_OK)
		return r;
	if (!at_special(p, '>')) {
		p->why = p->i >= p->nt ? "a '<' without its closing '>'"
				       : "something other than '>' after the "
					 "address in <...>";
		return HDR_SYNTAX;
	}
	p->i++;
	return HDR_OK;
}

static int
address(struct ps *p, int in_group)
{
	size_t j = p->i;

	while (j < p->nt &&
	       (p->t[j].type == T_ATOM || p->t[j].type == T_QUOTED ||
		(p->t[j].type == T_SPECIAL && p->v[p->t[j].s] == '.')))
		j++;
	if (j < p->nt && p->t[j].type == T_SPECIAL && p->v[p->t[j].s] == '<') {
		p->i = j + 1;
		return angle(p);
	}
	if (j < p->nt && p->t[j].type == T_SPECIAL && p->v[p->t[j].s] == ':') {
		if (in_group) {
			p->why = "a group inside a group";
			return HDR_SYNTAX;
		}
		if (j == p->i) {
			p->why = "a group without a name before ':'";
			return HDR_SYNTAX;
		}
		p->i = j + 1;
		for (;;) {
			int r;

			if (p->i >= p->nt)
				return HDR_OK; /* ";" missing at the end */
			if (at_special(p, ';')) {
				p->i++;
				return HDR_OK;
			}
			if (at_special(p, ',')) {
				p->i++;
				continue;
			}
			if ((r = address(p, 1)) != HDR_OK)
				return r;
			if (p->i < p->nt && !at_special(p, ',') &&
			    !at_special(p, ';')) {
				p->why = "a word after an address (a display "
					 "name needs <angle brackets> and a "
					 "comma in a name needs quotes)";
				return HDR_SYNTAX;
			}
		}
	}
	return addr_spec(p);
}

int
hdr_alist(const char *v, size_t n, struct hdr_alist *out, const char **why)
{
	struct ps p;
	size_t bytes;
	int r;

	out->n = 0;
	out->text.len = 0;
	*why = "";
	if (n >= HDR_FIELD_MAX) {
		*why = "an address list longer than 64 KiB";
		return HDR_TOOLONG;
	}
	memset(&p, 0, sizeof p);
	p.v = v;
	p.n = n;
	p.out = out;
	p.why = "";
	if (size_mul(&bytes, n + 1, sizeof *p.t) == -1 ||
	    !(p.t = malloc(bytes))) {
		*why = "out of memory";
		return HDR_NOMEM;
	}
	r = tokenize(&p);
	while (r == HDR_OK && p.i < p.nt) {
		if (at_special(&p, ',')) {
			p.i++;
			continue;
		}
		r = address(&p, 0);
		if (r == HDR_OK && p.i < p.nt && !at_special(&p, ',')) {
			if (at_special(&p, ';'))
				p.why = "a ';' outside a group";
			else if (at_special(&p, '>'))
				p.why = "a '>' without its '<'";
			else
				p.why = "a word after an address (a display "
					"name needs <angle brackets> and a "
					"comma in a name needs quotes)";
			r = HDR_SYNTAX;
		}
	}
	free(p.t);
	if (r == HDR_NOMEM)
		p.why = "out of memory";
	*why = p.why;
	if (r != HDR_OK) {
		out->n = 0;
		out->text.len = 0;
	}
	return r;
}

void
hdr_alist_free(struct hdr_alist *a)
{
	free(a->m);
	a->m = 0;
	a->n = a->a = 0;
	str_free(&a->text);
}
