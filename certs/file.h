/* file: reading inputs and writing outputs for tlsfwd-certs, with the error
 * text naming the file and the cause. */
#ifndef TLSFWD_CERTS_FILE_H
#define TLSFWD_CERTS_FILE_H

#include <stddef.h>
#include <sys/types.h>

#define FILE_MAX_INPUT (1024 * 1024)	/* no certificate or key is larger */

/** file_read(path, buf, len, err, errsz): the whole of a regular file of at
 *  most FILE_MAX_INPUT bytes, NUL-terminated, in a malloc'd buffer the caller
 *  frees.  Returns 0, or -1 with "path: cause" in err. */
int file_read(const char *path, unsigned char **buf, size_t *len, char *err, size_t errsz);

/** file_read_cert(path, der, len, err, errsz): the first certificate of a
 *  PEM or DER file in a malloc'd DER buffer the caller frees.  Returns 0, or
 *  -1 with "path: cause" in err. */
int file_read_cert(const char *path, unsigned char **der, size_t *len, char *err, size_t errsz);

/** file_exists(path): non-zero if something (even a dangling link) is there. */
int file_exists(const char *path);

/** file_mkdirs(dir, err, errsz): create dir and missing parents, mode 0700.
 *  An existing directory is fine.  Returns 0, or -1 with "dir: cause". */
int file_mkdirs(const char *dir, char *err, size_t errsz);

/** file_write(path, data, n, mode, replace, err, errsz): write a new file
 *  with exactly the given mode.  Without replace an existing path is an error
 *  (O_EXCL: never follows or truncates what is there); with it the file is
 *  written beside path and renamed over it, so readers see old or new.
 *  Returns 0, or -1 with "path: cause" in err. */
int file_write(const char *path, const void *data, size_t n, mode_t mode, int replace,
    char *err, size_t errsz);

/** file_join(dir, name, buf, n): "dir/name" into buf.  Returns 0, or -1 if it
 *  does not fit. */
int file_join(const char *dir, const char *name, char *buf, size_t n);

#endif
