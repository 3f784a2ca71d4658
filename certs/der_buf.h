/* der_buf: a growing DER output buffer, for re-encoding a to-be-signed body
 * and building SAN and extension lists (tlsfwd-certs only). */
#ifndef TLSFWD_CERTS_DER_BUF_H
#define TLSFWD_CERTS_DER_BUF_H

#include <stddef.h>

/* A growing output buffer.  A failed allocation sets err and later calls do
 * nothing, so a sequence of writes is checked once at the end. */
struct der_buf {
	unsigned char *p;
	size_t len, cap;
	int err;
};

/** der_buf_put(b, data, n): append n raw bytes. */
void der_buf_put(struct der_buf *b, const void *data, size_t n);

/** der_buf_tlv(b, tag, val, n): append one element with n bytes of contents. */
void der_buf_tlv(struct der_buf *b, unsigned tag, const void *val, size_t n);

/** der_buf_free(b): free the buffer and reset b to empty. */
void der_buf_free(struct der_buf *b);

#endif
