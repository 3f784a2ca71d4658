/* config_file: the config file reader; config_print() (config.h) is its
 * counterpart.  Used by config.c only. */
#ifndef TLSFWD_CONFIG_FILE_H
#define TLSFWD_CONFIG_FILE_H

#include <stddef.h>

#include "config.h"

/** config_file_read(cfg, path, err, errsz): apply every "key = value" line
 *  of path to cfg.  Returns 0, or -1 with "FILE:LINE: key: reason" in err. */
int config_file_read(struct config *cfg, const char *path, char *err, size_t errsz);

#endif
