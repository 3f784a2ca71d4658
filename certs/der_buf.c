/* der_buf: a growing DER output buffer; see der_buf.h. */
#include "der_buf.h"

#include <stdlib.h>
#include <string.h>

/** der_buf_put(b, data, n): append n raw bytes. */
void der_buf_put(struct der_buf *b, const void *data, size_t n)
{
	if (b->err)
		return;
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		unsigned char *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->err = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

/** der_buf_tlv(b, tag, val, n): append one element with n bytes of contents. */
void der_buf_tlv(struct der_buf *b, unsigned tag, const void *val, size_t n)
{
	unsigned char hdr[6];
	size_t h = 0;

	hdr[h++] = (unsigned char)tag;
	if (n < 0x80) {
		hdr[h++] = (unsigned char)n;
	} else if (n <= 0xff) {
		hdr[h++] = 0x81;
		hdr[h++] = (unsigned char)n;
	} else if (n <= 0xffff) {
		hdr[h++] = 0x82;
		hdr[h++] = (unsigned char)(n >> 8);
		hdr[h++] = (unsigned char)n;
	} else if (n <= 0xffffff) {
		hdr[h++] = 0x83;
		hdr[h++] = (unsigned char)(n >> 16);
		hdr[h++] = (unsigned char)(n >> 8);
		hdr[h++] = (unsigned char)n;
	} else {
		b->err = 1;
		return;
	}
	der_buf_put(b, hdr, h);
	if (n > 0)
		der_buf_put(b, val, n);
}

/** der_buf_free(b): free the buffer and reset b to empty. */
void der_buf_free(struct der_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}
