/*
 * runas.h: root working on a directory that belongs to someone else.
 *
 * Under `moat run` started by root, the run directory and its queue belong
 * to the unprivileged run account (nobody by default), and moat-send and
 * moat-clean run as that account.  A file that root put into that queue
 * would be owned by root and unreadable to them, so a program that root
 * runs against such a directory (moat-inject, sendmail -bs) first becomes
 * the queue's owner.
 */
#ifndef MOAT_RUNAS_H
#define MOAT_RUNAS_H

#include <sys/types.h>

/*
 * When the effective uid is 0 and ROOT/queue exists and belongs to another
 * uid, switch to that uid: its group and supplementary groups from the
 * password database, or the directory's group and none when the uid has no
 * entry.  Returns 1 when switched (*uid says to whom), 0 when there was
 * nothing to do, -1 on failure (errno).
 */
int runas_queue_owner(const char *root, uid_t *uid);

#endif
