/* file: reading inputs and writing outputs for tlsfwd-certs; see file.h. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "der.h"

/** file_read(path, buf, len, err, errsz): the whole of a regular file of at
 *  most FILE_MAX_INPUT bytes, NUL-terminated, in a malloc'd buffer the caller
 *  frees.  Returns 0, or -1 with "path: cause" in err. */
int file_read(const char *path, unsigned char **buf, size_t *len, char *err, size_t errsz)
{
	struct stat st;
	unsigned char *p = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		goto err0;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s: is a directory, expected a file", path);
		goto err0;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "%s: not a regular file", path);
		goto err0;
	}
	if (st.st_size > FILE_MAX_INPUT) {
		snprintf(err, errsz, "%s: too large (%lld bytes) for a certificate or key",
		    path, (long long)st.st_size);
		goto err0;
	}
	p = malloc((size_t)st.st_size + 1);
	if (p == NULL) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto err0;
	}
	while (got < (size_t)st.st_size) {
		r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errsz, "%s: %s", path, strerror(errno));
			goto err1;
		}
		if (r == 0)
			break;		/* shrank while we read: take what is there */
		got += (size_t)r;
	}
	if (got == 0) {
		snprintf(err, errsz, "%s: empty file", path);
		goto err1;
	}
	p[got] = '\0';
	close(fd);
	*buf = p;
	*len = got;
	return 0;

err1:
	free(p);
err0:
	close(fd);
	return -1;
}

/** file_read_cert(path, der, len, err, errsz): the first certificate of a
 *  PEM or DER file in a malloc'd DER buffer the caller frees.  Returns 0, or
 *  -1 with "path: cause" in err. */
int file_read_cert(const char *path, unsigned char **der, size_t *len, char *err, size_t errsz)
{
	unsigned char *buf = NULL, *out = NULL;
	size_t n;
	int r;

	if (file_read(path, &buf, &n, err, errsz) != 0)
		return -1;
	if (strstr((char *)buf, "-----BEGIN") != NULL) {
		if (strstr((char *)buf, "-----BEGIN CERTIFICATE-----") == NULL) {
			if (strstr((char *)buf, "PRIVATE KEY-----") != NULL)
				snprintf(err, errsz, "%s: holds a private key, not a "
				    "certificate", path);
			else
				snprintf(err, errsz, "%s: no \"BEGIN CERTIFICATE\" block "
				    "in the PEM file", path);
			goto err;
		}
		out = malloc(n);
		if (out == NULL) {
			snprintf(err, errsz, "%s: out of memory", path);
			goto err;
		}
		r = wc_CertPemToDer(buf, (int)n, out, (int)n, CERT_TYPE);
		if (r <= 0) {
			snprintf(err, errsz, "%s: bad PEM certificate (%s)", path,
			    wc_GetErrorString(r));
			goto err;
		}
		n = (size_t)r;
	} else {
		struct der d;
		struct der_tlv t;

		/* DER: take the first element, so a concatenation works too. */
		der_init(&d, buf, n);
		if (der_read(&d, &t) != 1 || t.tag != DER_SEQUENCE) {
			snprintf(err, errsz, "%s: neither a PEM certificate nor a DER one",
			    path);
			goto err;
		}
		n = t.rawlen;
		out = buf;
		buf = NULL;
	}
	free(buf);
	*der = out;
	*len = n;
	return 0;

err:
	free(out);
	free(buf);
	return -1;
}

/** file_exists(path): non-zero if something (even a dangling link) is there. */
int file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/** file_mkdirs(dir, err, errsz): create dir and missing parents, mode 0700.
 *  An existing directory is fine.  Returns 0, or -1 with "dir: cause". */
int file_mkdirs(const char *dir, char *err, size_t errsz)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i, n = strlen(dir);

	if (n == 0 || n >= sizeof(path)) {
		snprintf(err, errsz, "'%s': bad directory name", dir);
		return -1;
	}
	memcpy(path, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errsz, "%s: cannot create directory: %s", path,
			    strerror(errno));
			return -1;
		}
		if (i < n)
			path[i] = '/';
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "%s: exists and is not a directory", dir);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const void *data, size_t n)
{
	const unsigned char *p = data;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/** file_write(path, data, n, mode, replace, err, errsz): write a new file
 *  with exactly the given mode.  Without replace an existing path is an error;
 *  with it the file is written beside path and renamed over it.  Returns 0,
 *  or -1 with "path: cause" in err. */
int file_write(const char *path, const void *data, size_t n, mode_t mode, int replace,
    char *err, size_t errsz)
{
	char tmp[PATH_MAX];
	const char *target = path;
	int fd;

	if (replace) {
		if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
			snprintf(err, errsz, "%s: path too long", path);
			return -1;
		}
		fd = mkstemp(tmp);	/* mode 0600 from the start */
		target = tmp;
	} else {
		/*- O_EXCL: refuse whatever is there, even a link to elsewhere;
		 * 0600 at creation so a key is never readable by others, not
		 * even between open() and fchmod(). */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	}
	if (fd < 0) {
		if (errno == EEXIST)
			snprintf(err, errsz, "%s: already exists; refusing to overwrite it "
			    "(use --force to replace it)", path);
		else
			snprintf(err, errsz, "%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) != 0 || write_all(fd, data, n) != 0 || fsync(fd) != 0) {
		snprintf(err, errsz, "%s: cannot write: %s", path, strerror(errno));
		goto err;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errsz, "%s: cannot write: %s", path, strerror(errno));
		goto err;
	}
	fd = -1;
	if (replace && rename(tmp, path) != 0) {
		snprintf(err, errsz, "%s: cannot replace: %s", path, strerror(errno));
		goto err;
	}
	return 0;

err:
	if (fd >= 0)
		close(fd);
	unlink(target);
	return -1;
}

/** file_join(dir, name, buf, n): "dir/name" into buf.  Returns 0, or -1 if it
 *  does not fit. */
int file_join(const char *dir, const char *name, char *buf, size_t n)
{
	size_t dl = strlen(dir);
	int w;

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	w = snprintf(buf, n, "%.*s/%s", (int)dl, dir, name);
	return w < 0 || (size_t)w >= n ? -1 : 0;
}
