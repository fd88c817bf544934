/*
 * job.h: the delivery-job protocol between moat-send and the spawners
 * (moat-lspawn, moat-rspawn).
 *
 * Both directions are sequences of NUL-terminated fields, each a one-letter
 * tag and a value; an empty field (a lone NUL) ends a record.  moat-send
 * writes jobs on the spawner's fd 0 and reads results from its fd 1 (one
 * socket, in practice):
 *
 *   job:    "J<n>" "M<message id>" "F<sender>" "T<recipient>"... ""
 *   result: "J<n>" "R<K|Z|D><text>"... ""
 *
 * A job carries 1..JOB_RCPT_MAX recipients (moat-lspawn takes exactly one;
 * moat-rspawn all of one domain); the result has one R field per T field,
 * in the same order: K delivered, Z deferred (try again later), D failed
 * for good.  The text is the agent's sentence, printable ASCII only.
 * Results may come back in any order; n (a decimal number below 2^32) ties
 * them to their jobs.  Every field is bounded (JOB_FIELD_MAX); a malformed
 * record is a fatal error for the reader (it came from a trusted program
 * that has gone wrong), never undefined behaviour.
 */
#ifndef MOAT_JOB_H
#define MOAT_JOB_H

#include <stddef.h>

#include "str.h"

#define JOB_FIELD_MAX 2048
#define JOB_RCPT_MAX 1000
#define JOB_TEXT_MAX 1000

struct job {
	unsigned long n;
	unsigned long long id;
	str sender;
	str rcpts; /* nrcpt NUL-terminated addresses */
	size_t nrcpt;
};

struct job_result {
	unsigned long n;
	size_t nres;
	char status[JOB_RCPT_MAX]; /* 'K', 'Z' or 'D' */
	str texts;                 /* nres NUL-terminated texts */
};

/* append one record to out */
int job_put(str *out, unsigned long n, unsigned long long id,
	    const char *sender, const char *rcpts, size_t nrcpt);
int result_put(str *out, unsigned long n, const char *status,
	       const char *texts, size_t nres);
/* text made printable and bounded, appended with its NUL */
int job_cattext(str *out, const char *text, size_t len);

/*
 * Incremental parsing: buf holds bytes read so far, *pos is where the
 * next record starts.  Each returns 1 and moves *pos past the record when
 * a whole one is there, 0 when more bytes are needed, -1 (errno EPROTO)
 * on a malformed record.  The caller drops the records it has read from
 * buf once per read (str_drop), not once per record, which would move the
 * rest of a burst of thousands of records each time.
 */
int job_get(const str *buf, size_t *pos, struct job *out);
int result_get(const str *buf, size_t *pos, struct job_result *out);

void job_free(struct job *);
void result_free(struct job_result *);

#endif
