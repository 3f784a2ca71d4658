/* fuzz.h: what the libFuzzer targets in tests/fuzz share.  A failed
 * invariant aborts with the line and a message, so libFuzzer saves the input
 * as a crash. */
#ifndef TLSFWD_FUZZ_H
#define TLSFWD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* CHECK(cond, ...): abort with a message when an invariant does not hold. */
#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		abort(); \
	} \
} while (0)

/* fuzz_str(data, size): the input as a malloc'd C string (cut at a NUL byte,
 * as every caller of a string parser sees it).  Aborts when out of memory. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	CHECK(s != NULL, "out of memory");
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* fuzz_file(data, size, path, n): the input in an anonymous memory file,
 * whose name (/proc/self/fd/N) goes to path.  Returns the fd to close. */
static inline int fuzz_file(const uint8_t *data, size_t size, char *path, size_t n)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	CHECK(fd >= 0, "memfd_create failed");
	CHECK(size == 0 || write(fd, data, size) == (ssize_t)size, "short write");
	snprintf(path, n, "/proc/self/fd/%d", fd);
	return fd;
}

/* fuzz_cstr_in(s, n): non-zero if a NUL ends s within its n bytes. */
static inline int fuzz_cstr_in(const char *s, size_t n)
{
	return memchr(s, '\0', n) != NULL;
}

#endif
