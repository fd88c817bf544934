/*
 * privs.c: the privilege tables and the installed tree; see privs.h.
 */
#include "privs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "control.h"
#include "queue.h"

/* clang-format off */
const struct priv_account priv_accounts[PA_NACCT] = {
	[PA_MOATD] = {"moatd", 0, "", "moat SMTP server"},
	[PA_MOATQ] = {"moatq", 1, "", "moat queue"},
	[PA_MOATS] = {"moats", 1, "", "moat scheduler"},
	[PA_MOATR] = {"moatr", 1, "", "moat remote delivery"},
	[PA_MOATL] = {"moatl", 0, "log", "moat logger"},
	[PA_ALIAS] = {"alias", 0, "alias", "moat alias user"},
};

const struct priv_prog priv_progs[] = {
	{"moat-tcpd", PA_MOATD, 0755, "started as root, binds, drops to -u moatd"},
	{"moat-smtpd", PA_MOATD, 0755, "inherited from moat-tcpd or systemd User="},
	{"moat-tlsd", PA_MOATD, 0755, "inherited from moat-smtpd, on STARTTLS"},
	{"moat-queue", PA_MOATQ, 04711, "setuid moatq, run by anyone"},
	{"moat-start", PA_ROOT, 0755, "systemd or the administrator"},
	{"moat-send", PA_MOATS, 0755, "moat-start switches before exec"},
	{"moat-clean", PA_MOATQ, 0755, "moat-start switches before exec"},
	{"moat-lspawn", PA_ROOT, 0755, "moat-start leaves it root, to switch to recipients"},
	{"moat-local", PA_RECIPIENT, 0755, "moat-lspawn switches before exec"},
	{"moat-rspawn", PA_MOATR, 0755, "moat-start switches before exec"},
	{"moat-remote", PA_MOATR, 0755, "inherited from moat-rspawn"},
	{"moat-log", PA_MOATL, 0, "moat-start's logger process (--log), switched"},
	{"moat-setup", PA_ROOT, 0755, "the administrator"},
	{"moat-newu", PA_ROOT, 0755, "the administrator"},
	{"moat-inject", PA_CALLER, 0755, "whoever runs it (root: the queue's owner)"},
	{"moat-sendmail", PA_CALLER, 0755, "whoever runs it, as sendmail or mailq"},
	{"moat", PA_CALLER, 0755, "whoever runs it"},
	{0, 0, 0, 0},
};

/* the tree above and beside queue/'s contents */
static const struct {
	const char *path;
	int owner, group;
	mode_t mode;
} priv_tree[] = {
	{"", PA_ROOT, PA_ROOT, 0755},
	{"bin", PA_ROOT, PA_ROOT, 0755},
	{"control", PA_ROOT, PA_ROOT, 0755},
	{"users", PA_ROOT, PA_ROOT, 0755},
	{"alias", PA_ALIAS, PA_OWN, 0755},
	{"log", PA_MOATL, PA_OWN, 0750},
	{"queue", PA_MOATQ, PA_GROUP, 0750},
};
/* clang-format on */

const struct priv_prog *
priv_prog_find(const char *name)
{
	const struct priv_prog *p;

	for (p = priv_progs; p->name; p++)
		if (!strcmp(p->name, name))
			return p;
	return 0;
}

static int
valid_name(const char *s)
{
	size_t i;

	if (!((*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return i <= PRIV_NAME_MAX;
}

static int
set_name(char *dst, const char *p, const char *name)
{
	char buf[2 * PRIV_NAME_MAX + 2];

	if (strlen(p) + strlen(name) > PRIV_NAME_MAX) {
		errno = EINVAL;
		return -1;
	}
	snprintf(buf, sizeof buf, "%s%s", p, name);
	if (!valid_name(buf)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(dst, buf, strlen(buf) + 1);
	return 0;
}

int
priv_names_default(struct priv_names *n, const char *p)
{
	int i;

	memset(n, 0, sizeof *n);
	for (i = 0; i < PA_NACCT; i++)
		if (set_name(n->acct[i], p, priv_accounts[i].name) == -1)
			return -1;
	return set_name(n->group, p, PRIV_GROUP);
}

int
priv_names_load(struct priv_names *n)
{
	str items = STR_INIT;
	size_t count, off = 0, k;
	int r, i;

	if (priv_names_default(n, "") == -1)
		return -1;
	r = ctl_list("accounts", &items, &count);
	if (r == -1)
		return -1;
	for (k = 0; k < count; k++) {
		char *line = items.s + off, *colon = strchr(line, ':');
		char *dst = 0;

		off += strlen(line) + 1;
		if (!colon)
			goto bad;
		*colon = 0;
		if (!strcmp(line, PRIV_GROUP))
			dst = n->group;
		for (i = 0; i < PA_NACCT && !dst; i++)
			if (!strcmp(line, priv_accounts[i].name))
				dst = n->acct[i];
		if (!dst || set_name(dst, "", colon + 1) == -1)
			goto bad;
	}
	str_free(&items);
	return r == CTL_FILE ? 1 : 0;
bad:
	str_free(&items);
	errno = EINVAL;
	return -1;
}

int
priv_names_format(const struct priv_names *n, str *out)
{
	int i;

	out->len = 0;
	if (str_cats(out, "# default:actual account names, written by "
	                  "moat-setup; read by moat-start\n") == -1)
		return -1;
	for (i = 0; i < PA_NACCT; i++)
		if (str_cats(out, priv_accounts[i].name) == -1 ||
		    str_catc(out, ':') == -1 ||
		    str_cats(out, n->acct[i]) == -1 ||
		    str_catc(out, '\n') == -1)
			return -1;
	if (str_cats(out, PRIV_GROUP ":") == -1 ||
	    str_cats(out, n->group) == -1 || str_catc(out, '\n') == -1)
		return -1;
	return 0;
}

const char *
priv_acct_name(const struct priv_names *n, int acct)
{
	if (acct >= 0 && acct < PA_NACCT)
		return n->acct[acct];
	return acct == PA_ROOT        ? "root"
	       : acct == PA_RECIPIENT ? "(recipient)"
	       : acct == PA_GROUP     ? n->group
	                              : "(caller)";
}

int
priv_walk(int (*fn)(const struct priv_entry *, void *), void *arg)
{
	const struct queue_dir *d;
	struct priv_entry e;
	size_t t;
	int r, i;

	e.type = 'd';
	for (t = 0; t < sizeof priv_tree / sizeof *priv_tree; t++) {
		snprintf(e.path, sizeof e.path, "%s", priv_tree[t].path);
		e.owner = priv_tree[t].owner;
		e.group = priv_tree[t].group;
		e.mode = priv_tree[t].mode;
		if ((r = fn(&e, arg)))
			return r;
	}
	e.group = PA_GROUP;
	for (d = queue_dirs; d->name; d++) {
		e.owner = d->owner == QO_QUEUE ? PA_MOATQ : PA_MOATS;
		e.mode = d->mode | (d->owner == QO_QUEUE ? S_ISGID : 0);
		snprintf(e.path, sizeof e.path, "queue/%s", d->name);
		if ((r = fn(&e, arg)))
			return r;
		for (i = 0; d->split && i < QUEUE_SPLIT; i++) {
			snprintf(e.path, sizeof e.path, "queue/%s/%d", d->name,
			         i);
			if ((r = fn(&e, arg)))
				return r;
		}
	}
	/* anyone may pull the trigger; only moat-send reads it */
	snprintf(e.path, sizeof e.path, "queue/lock/trigger");
	e.owner = PA_MOATS;
	e.mode = 0622;
	e.type = 'p';
	return fn(&e, arg);
}
