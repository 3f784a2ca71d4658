/* kube: a Kubernetes Secret manifest holding certificate files, for
 * `tlsfwd-certs kube-secret ... | kubectl apply -f -`. */
#ifndef TLSFWD_CERTS_KUBE_H
#define TLSFWD_CERTS_KUBE_H

#include <stddef.h>
#include <stdio.h>

struct kube_item {
	const char *key;		/* "tls.crt" */
	const unsigned char *data;
	size_t len;
};

/** kube_name_invalid(name): NULL if name is a valid object name (an RFC 1123
 *  subdomain: lowercase letters, digits, '-' and '.', at most 253), else
 *  why not. */
const char *kube_name_invalid(const char *name);

/** kube_secret(out, name, ns, type, items, n): write the Secret manifest:
 *  apiVersion v1, kind Secret, metadata name (and namespace if ns is not
 *  NULL), the type, and each item base64-encoded under data.  Returns 0, or
 *  -1 if out of memory. */
int kube_secret(FILE *out, const char *name, const char *ns, const char *type,
    const struct kube_item *items, int n);

#endif
