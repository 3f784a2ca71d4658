/* preload_sandbox: the shim lives inside someone else's program, whose
 * files, users and system calls are its own: it installs no sandbox and
 * drops no privileges.  shared/daemon.c's start-up, linked in with the rest
 * of shared/ but never run here, finds these instead of shared/sandbox.c
 * (the shim does not link libseccomp). */
#include <stdio.h>

#include "sandbox.h"

int sandbox_user(const char *spec, char *err, size_t errsz)
{
	(void)spec;
	snprintf(err, errsz, "the preload shim drops no privileges");
	return -1;
}

int sandbox_user_check(const char *spec, char *err, size_t errsz)
{
	return sandbox_user(spec, err, errsz);
}

int sandbox_enter(const struct config *cfg, const struct tunnel *t, int listen_port,
    char *err, size_t errsz)
{
	(void)cfg;
	(void)t;
	(void)listen_port;
	snprintf(err, errsz, "the preload shim installs no sandbox");
	return -1;
}
