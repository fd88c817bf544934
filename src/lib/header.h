/*
 * header.h: RFC 5322 message headers and address lists.
 *
 * A header is kept as its raw bytes (lines ending in LF; the caller turns
 * CRLF into LF first) and a table of fields, each field its first line and
 * any continuation lines that start with a space or a tab.  Nothing is
 * rewritten here: callers read values, parse address lists, and splice
 * their changes in at the offsets the parser reports, so comments, folding,
 * display names and encoded words stay exactly as they were written.
 *
 * hdr_alist() parses an address list (RFC 5322 section 3.4, with the
 * obsolete forms real mail still uses: empty list elements, routes in angle
 * addresses, dots in display names, white space and comments between the
 * parts of an address) and, as qmail-inject does, a mailbox without "@host"
 * for the caller to qualify.  Groups ("undisclosed-recipients:;") yield
 * their members.  Comments nest.  Encoded words are atoms and are left
 * alone.  What does not parse is refused with a sentence saying why; a
 * caller never has to guess what an address was meant to be.
 *
 * Every size is bounded: HDR_MAX bytes of header, HDR_FIELD_MAX bytes in
 * one field, HDR_FIELDS_MAX fields, HDR_ADDRS_MAX addresses in one list.
 */
#ifndef MOAT_HEADER_H
#define MOAT_HEADER_H

#include <stddef.h>

#include "str.h"

#define HDR_MAX (1024 * 1024)     /* a whole header, bytes */
#define HDR_FIELD_MAX (64 * 1024) /* one field, continuation lines included */
#define HDR_FIELDS_MAX 10000      /* fields in a header */
#define HDR_ADDRS_MAX 10000       /* mailboxes in one address list */

/* results; hdr_alist() and hdr_add_line() also give a sentence in *why */
#define HDR_OK 0
#define HDR_SYNTAX -1  /* does not parse */
#define HDR_TOOLONG -2 /* over a size limit */
#define HDR_NOMEM -3

/* what a line of input is, seen from inside a header */
#define HDR_LINE_FIELD 1 /* "Name:" starts a field */
#define HDR_LINE_CONT 2  /* starts with a space or tab: continues a field */
#define HDR_LINE_END 3   /* empty: the header ends, the body follows */
#define HDR_LINE_OTHER 4 /* none of these: not header material */

struct hdr_field {
	size_t off;     /* first byte of the name in raw */
	size_t len;     /* through the final LF */
	size_t namelen; /* the name, without the colon */
};

struct header {
	str raw;             /* the fields, each line ending in LF */
	struct hdr_field *f; /* in order */
	size_t n, a;         /* fields used, allocated */
};

#define HEADER_INIT {STR_INIT, 0, 0, 0}

/* a line (n bytes, its LF included or not) classified as above */
int hdr_line_kind(const char *line, size_t n);
/* 1 if s (n bytes) is a field name: printable ASCII but ':', at least one */
int hdr_name_ok(const char *s, size_t n);

/*
 * Append one line (n bytes, without its LF; an LF is added) of kind
 * HDR_LINE_FIELD or HDR_LINE_CONT.  A continuation before any field, a
 * NUL, a bare CR or a limit reached gives HDR_SYNTAX or HDR_TOOLONG and
 * *why; the header is then unchanged.
 */
int hdr_add_line(struct header *, const char *line, size_t n,
		 const char **why);
/*
 * Parse the header at the start of buf (LF line ends): field and
 * continuation lines up to an empty line (consumed), a line that is not
 * header material (not consumed) or the end.  *used is set to the bytes
 * consumed.  A last line without its LF is taken as if it had one.
 */
int hdr_parse(struct header *, const char *buf, size_t len, size_t *used,
	      const char **why);
void hdr_free(struct header *);

/* field i's name and raw value (after the colon, up to its final LF) */
const char *hdr_name(const struct header *, size_t i, size_t *len);
const char *hdr_value(const struct header *, size_t i, size_t *len);
/* 1 if field i is called name (any case) */
int hdr_is(const struct header *, size_t i, const char *name);
/* index of the first field called name at or after from, or -1 */
long hdr_find(const struct header *, const char *name, size_t from);

/* the value unfolded: line breaks before white space removed, leading and
 * trailing white space trimmed; NUL-terminated */
int hdr_unfold(const char *v, size_t n, str *out);

/* one mailbox of an address list, by offsets into the parsed value */
struct hdr_mbox {
	size_t lstart, lend; /* the local part, first to last token */
	size_t dstart, dend; /* the domain, when has_domain */
	int has_domain;
	int literal;       /* the domain is an address literal [...] */
	size_t addr, alen; /* its internal form in hdr_alist.text */
	size_t llen;       /* the local part's length in the internal form */
};

struct hdr_alist {
	struct hdr_mbox *m;
	size_t n, a;
	/* each mailbox's internal form, NUL-terminated, one after another:
	 * the local part unquoted, then "@domain" with white space and
	 * comments removed (no "@" when the mailbox had no domain) */
	str text;
};

#define HDR_ALIST_INIT {0, 0, 0, STR_INIT}

/* parse the address list v (n bytes, folded or not) into out (reset
 * first); on failure *why says what is wrong */
int hdr_alist(const char *v, size_t n, struct hdr_alist *out,
	      const char **why);
void hdr_alist_free(struct hdr_alist *);

#endif
