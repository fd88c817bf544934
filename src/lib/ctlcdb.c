/*
 * ctlcdb.c: control files kept as constant databases (morercpthosts.cdb).
 *
 * Apart from control.c so that the programs that never look a key up
 * (moat-queue, moat-local) do not need tinycdb and can be linked statically.
 */
#include "control.h"

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int
ctl_cdb_has(const char *name, const char *key, size_t len)
{
	str p = STR_INIT;
	unsigned dlen;
	int fd, r;

	if (len > 0xffffffffu)
		return 0;
	if (ctl_path(&p, name, ".cdb") == -1)
		return -1;
	fd = open(p.s, O_RDONLY | O_CLOEXEC);
	str_free(&p);
	if (fd == -1)
		return errno == ENOENT ? 0 : -1;
	r = cdb_seek(fd, key, (unsigned)len, &dlen);
	close(fd);
	return r > 0 ? 1 : r == 0 ? 0 : -1;
}
