/* client: the tlsfwd-client role (role.h), shared by the daemon and the
 * preload shim's inline mode. */
#ifndef TLSFWD_CLIENT_H
#define TLSFWD_CLIENT_H

#include "daemon.h"
#include "role.h"

extern const struct role client_role;

#endif
