/* show: print what a certificate says; see show.h. */
#include "show.h"

#include <string.h>

#include "der.h"
#include "fp.h"
#include "text.h"

#define LABEL "%-19s "

/* "expires in 3 days", "expired 2 hours ago": the larger unit that fits. */
static void span_text(long long secs, char *buf, size_t n)
{
	if (secs >= 2 * 86400)
		snprintf(buf, n, "%lld days", secs / 86400);
	else if (secs >= 2 * 3600)
		snprintf(buf, n, "%lld hours", secs / 3600);
	else if (secs >= 120)
		snprintf(buf, n, "%lld minutes", secs / 60);
	else
		snprintf(buf, n, "%lld seconds", secs);
}

/** show_fingerprints(out, x): the "sha256:<hex>" and "spki:<hex>" lines.
 *  Returns 0 or -1. */
int show_fingerprints(FILE *out, const struct x509 *x)
{
	unsigned char d[FP_LEN];
	char t[FP_TEXT_MAX];

	if (fp_compute(x, FP_CERT, d) != 0)
		return -1;
	fprintf(out, "%s\n", fp_text(FP_CERT, d, t));
	if (fp_compute(x, FP_SPKI, d) != 0)
		return -1;
	fprintf(out, "%s\n", fp_text(FP_SPKI, d, t));
	return 0;
}

/** show_cert(out, x, now): every fact about x, one "label: value" line each.
 *  Returns 0 or -1. */
int show_cert(FILE *out, const struct x509 *x, time_t now)
{
	static const char *const ku_names[] = {
		"digitalSignature", "nonRepudiation", "keyEncipherment",
		"dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
		"encipherOnly", "decipherOnly",
	};
	char buf[2048], span[64];
	unsigned char d[FP_LEN];
	char t[FP_TEXT_MAX];
	const unsigned char *sp = x->serial.val;
	size_t sn = x->serial.len;
	struct der der;
	struct der_tlv e;
	const char *sep;
	unsigned i;

	fprintf(out, LABEL "%s\n", "subject:", text_name(&x->subject, buf, sizeof(buf)));
	fprintf(out, LABEL "%s\n", "issuer:", text_name(&x->issuer, buf, sizeof(buf)));
	while (sn > 1 && sp[0] == 0) {		/* the sign byte is not the number */
		sp++;
		sn--;
	}
	fprintf(out, LABEL "%s\n", "serial:", fp_hex(sp, sn, buf, sizeof(buf)));
	fprintf(out, LABEL "%s\n", "not-before:", x509_time_text(x->not_before, buf, sizeof(buf)));
	fprintf(out, LABEL "%s\n", "not-after:", x509_time_text(x->not_after, buf, sizeof(buf)));
	if (now < x->not_before) {
		span_text((long long)(x->not_before - now), span, sizeof(span));
		fprintf(out, LABEL "not yet valid (starts in %s)\n", "status:", span);
	} else if (now > x->not_after) {
		span_text((long long)(now - x->not_after), span, sizeof(span));
		fprintf(out, LABEL "EXPIRED %s ago\n", "status:", span);
	} else {
		span_text((long long)(x->not_after - now), span, sizeof(span));
		fprintf(out, LABEL "valid, expires in %s\n", "status:", span);
	}
	fprintf(out, LABEL "%s\n", "public-key:", x509_key_text(x, buf, sizeof(buf)));
	fprintf(out, LABEL "%s\n", "signature:", x509_sig_text(x, buf, sizeof(buf)));

	if (x->bc_present) {
		fprintf(out, LABEL "%sCA:%s", "basic-constraints:",
		    x->bc_critical ? "critical, " : "", x->is_ca ? "TRUE" : "FALSE");
		if (x->path_len >= 0)
			fprintf(out, ", pathlen:%ld", x->path_len);
		fputc('\n', out);
	}
	if (x->san_present) {
		fprintf(out, LABEL "%s", "subject-alt-names:", x->san_critical ? "critical, " : "");
		der_enter(&x->san, &der);
		sep = "";
		while (der_read(&der, &e) == 1) {
			fprintf(out, "%s%s", sep, text_gn(&e, buf, sizeof(buf)));
			sep = ", ";
		}
		fputc('\n', out);
	}
	if (x->ku_present) {
		fprintf(out, LABEL "%s", "key-usage:", x->ku_critical ? "critical, " : "");
		sep = "";
		for (i = 0; i < sizeof(ku_names) / sizeof(ku_names[0]); i++) {
			if (x->ku & (1u << i)) {
				fprintf(out, "%s%s", sep, ku_names[i]);
				sep = ", ";
			}
		}
		fputc('\n', out);
	}
	if (x->eku_present) {
		fprintf(out, LABEL "%s", "ext-key-usage:", x->eku_critical ? "critical, " : "");
		der_enter(&x->eku, &der);
		sep = "";
		while (der_read(&der, &e) == 1) {
			const char *name = x509_eku_name(&e);

			if (name == NULL)
				name = der_oid_text(e.val, e.len, buf, sizeof(buf));
			fprintf(out, "%s%s", sep, name);
			sep = ", ";
		}
		fputc('\n', out);
	}
	if (x->skid.len > 0)
		fprintf(out, LABEL "%s\n", "subject-key-id:",
		    fp_hex(x->skid.val, x->skid.len, buf, sizeof(buf)));
	if (x->akid.len > 0)
		fprintf(out, LABEL "%s\n", "authority-key-id:",
		    fp_hex(x->akid.val, x->akid.len, buf, sizeof(buf)));

	if (fp_compute(x, FP_CERT, d) != 0)
		return -1;
	fprintf(out, LABEL "%s\n", "fingerprint:", fp_text(FP_CERT, d, t));
	if (fp_compute(x, FP_SPKI, d) != 0)
		return -1;
	fprintf(out, LABEL "%s\n", "fingerprint:", fp_text(FP_SPKI, d, t));
	return 0;
}
