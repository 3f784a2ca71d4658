/* fwd_stamp: what the forward reader adds to a connection's records and
 * tags, made once from its verified identity (see fwd.h, README "Identity
 * stamping" for the field names). */
#include "fwd.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "fp.h"
#include "sock.h"
#include "x509_identity.h"

static const char *const vars[] = { "cn", "dns", "uri", "fp", "ou" };

/* tag_char(ch): a byte a tag may hold. */
static int tag_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	    ch == '_' || ch == '-' || ch == '.';
}

int fwd_tag_value(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || v[0] == '.' || v[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++)
		if (!tag_char((unsigned char)v[i]) || (v[i] == '.' && v[i + 1] == '.'))
			return 0;
	return 1;
}

int fwd_template_check(const char *tmpl, int tag, char *why, size_t whysz)
{
	const char *p;
	size_t i;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p == '{') {
			const char *end = strchr(p, '}');

			for (i = 0; end != NULL && i < sizeof(vars) / sizeof(vars[0]); i++)
				if ((size_t)(end - p - 1) == strlen(vars[i]) &&
				    strncmp(p + 1, vars[i], strlen(vars[i])) == 0)
					break;
			if (end == NULL || i == sizeof(vars) / sizeof(vars[0])) {
				snprintf(why, whysz, "unknown placeholder (known: {cn}, {dns}, {uri}, "
				    "{fp}, {ou})");
				return -1;
			}
			p = end;
		} else if (*p == '}' || (tag && !tag_char((unsigned char)*p))) {
			snprintf(why, whysz, tag ? "a tag holds letters, digits, _ - . and "
			    "placeholders only" : "a } without its {");
			return -1;
		}
	}
	if (tag && strlen(tmpl) > FWD_TAG_MAX / 2) {
		snprintf(why, whysz, "longer than %d bytes", FWD_TAG_MAX / 2);
		return -1;
	}
	return 0;
}

const char *fwd_template_value(const struct x509_identity *id, const char *name, size_t len,
    char fp[2 * X509_SHA256_LEN + 1])
{
	if (len == 2 && strncmp(name, "cn", 2) == 0)
		return id->n_cn > 0 ? id->cn[0] : NULL;
	if (len == 3 && strncmp(name, "dns", 3) == 0)
		return id->n_dns > 0 ? id->dns[0] : NULL;
	if (len == 3 && strncmp(name, "uri", 3) == 0)
		return id->n_uri > 0 ? id->uri[0] : NULL;
	if (len == 2 && strncmp(name, "ou", 2) == 0)
		return id->n_ou > 0 ? id->ou[0] : NULL;
	if (len == 2 && strncmp(name, "fp", 2) == 0)
		return fp_hex(id->sha256, X509_SHA256_LEN, fp, 2 * X509_SHA256_LEN + 1);
	return NULL;
}

/*-
 * render(tmpl, id, tag, out, outsz): tmpl with its placeholders replaced by
 * id's values.  With tag, every value must be tag_value() (else -1: refused
 * at the handshake, never mangled); without, a missing value is empty.
 * 0, or -1.
 */
static int render(const char *tmpl, const struct x509_identity *id, int tag, char *out,
    size_t outsz)
{
	char fp[2 * X509_SHA256_LEN + 1];
	size_t n = 0, l;
	const char *p, *v;

	for (p = tmpl; *p != '\0'; p++) {
		if (*p == '{') {
			const char *end = strchr(p, '}');

			if (end == NULL)
				return -1;
			v = id != NULL ? fwd_template_value(id, p + 1, (size_t)(end - p - 1), fp) : NULL;
			if (v == NULL)
				v = "";
			if (tag && !fwd_tag_value(v))
				return -1;
			l = strlen(v);
			p = end;
		} else {
			v = p;
			l = 1;
		}
		if (n + l >= outsz)
			return -1;
		memcpy(out + n, v, l);
		n += l;
	}
	out[n] = '\0';
	return 0;
}

static int sbuf_write(void *data, const char *buf, size_t len)
{
	return msgpack_sbuffer_write(data, buf, len);
}

/* pack_str(pk, s): s as a msgpack str ("" for NULL). */
static int pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	return msgpack_pack_str_with_body(pk, s != NULL ? s : "", n);
}

/* pack_strs(pk, v, n): an array of n strings. */
static int pack_strs(msgpack_packer *pk, const char *const *v, size_t n)
{
	size_t i;

	if (msgpack_pack_array(pk, n) < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (pack_str(pk, v[i]) < 0)
			return -1;
	return 0;
}

/* upper(s): s in upper case, in place. */
static char *upper(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	return s;
}

/* date(t, buf): t as ISO 8601 UTC ("2027-01-31T12:00:00Z"). */
static const char *date(time_t t, char buf[32])
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		buf[0] = '\0';
	return buf;
}

/*-
 * pack_identity(pk, id, rule, host, port): the --stamp-key map:
 *
 *   { "client": { "subject", "issuer", "not_before", "not_after",
 *                 "hash": { "sha256" },
 *                 "x509": { "subject": { "distinguished_name", "common_name": [],
 *                                        "organizational_unit": [] },
 *                           "issuer": { "distinguished_name" },
 *                           "alternative_names": [], "serial_number",
 *                           "not_before", "not_after" } },
 *     "address", "ip", "port",
 *     "tlsfwd": { "rule", "spki_sha256" } }
 *
 * "client" is ECS's tls.client.*, address/ip/port its client.*; what ECS has
 * no field for is under "tlsfwd".
 */
static int pack_identity(msgpack_packer *pk, const struct x509_identity *id, const char *rule,
    const char *host, long port)
{
	char hex[2 * X509_SHA256_LEN + 1], spki[2 * X509_SHA256_LEN + 1], serial[128];
	char after[32], before[32];
	const char *sans[192];
	size_t nsans = 0, i;

	if (msgpack_pack_map(pk, 5) < 0 || pack_str(pk, "client") < 0)
		return -1;
	if (id == NULL) {
		if (msgpack_pack_map(pk, 0) < 0)
			return -1;
	} else {
		fp_hex(id->sha256, X509_SHA256_LEN, hex, sizeof(hex));
		fp_hex(id->spki_sha256, X509_SHA256_LEN, spki, sizeof(spki));
		snprintf(serial, sizeof(serial), "%s", id->serial != NULL ? id->serial : "");
		for (i = 0; i < id->n_dns && nsans < 192; i++)
			sans[nsans++] = id->dns[i];
		for (i = 0; i < id->n_uri && nsans < 192; i++)
			sans[nsans++] = id->uri[i];
		for (i = 0; i < id->n_ip && nsans < 192; i++)
			sans[nsans++] = id->ip[i];
		date(id->not_after, after);
		date(id->not_before, before);
		if (msgpack_pack_map(pk, 6) < 0 ||
		    pack_str(pk, "subject") < 0 || pack_str(pk, id->subject) < 0 ||
		    pack_str(pk, "issuer") < 0 || pack_str(pk, id->issuer) < 0 ||
		    pack_str(pk, "not_before") < 0 || pack_str(pk, before) < 0 ||
		    pack_str(pk, "not_after") < 0 || pack_str(pk, after) < 0 ||
		    pack_str(pk, "hash") < 0 || msgpack_pack_map(pk, 1) < 0 ||
		    pack_str(pk, "sha256") < 0 || pack_str(pk, upper(hex)) < 0 ||
		    pack_str(pk, "x509") < 0 || msgpack_pack_map(pk, 6) < 0 ||
		    pack_str(pk, "subject") < 0 || msgpack_pack_map(pk, 3) < 0 ||
		    pack_str(pk, "distinguished_name") < 0 || pack_str(pk, id->subject) < 0 ||
		    pack_str(pk, "common_name") < 0 || pack_strs(pk, id->cn, id->n_cn) < 0 ||
		    pack_str(pk, "organizational_unit") < 0 || pack_strs(pk, id->ou, id->n_ou) < 0 ||
		    pack_str(pk, "issuer") < 0 || msgpack_pack_map(pk, 1) < 0 ||
		    pack_str(pk, "distinguished_name") < 0 || pack_str(pk, id->issuer) < 0 ||
		    pack_str(pk, "alternative_names") < 0 || pack_strs(pk, sans, nsans) < 0 ||
		    pack_str(pk, "serial_number") < 0 || pack_str(pk, upper(serial)) < 0 ||
		    pack_str(pk, "not_before") < 0 || pack_str(pk, before) < 0 ||
		    pack_str(pk, "not_after") < 0 || pack_str(pk, after) < 0)
			return -1;
	}
	if (pack_str(pk, "address") < 0 || pack_str(pk, host) < 0 ||
	    pack_str(pk, "ip") < 0 || pack_str(pk, host) < 0 ||
	    pack_str(pk, "port") < 0 || msgpack_pack_long(pk, port) < 0 ||
	    pack_str(pk, "tlsfwd") < 0 || msgpack_pack_map(pk, id != NULL ? 2 : 1) < 0 ||
	    pack_str(pk, "rule") < 0 || (rule != NULL ? pack_str(pk, rule) : msgpack_pack_nil(pk)) < 0)
		return -1;
	if (id != NULL && (pack_str(pk, "spki_sha256") < 0 || pack_str(pk, spki) < 0))
		return -1;
	return 0;
}

int fwd_stamp_new(const struct fwd_opts *o, const struct x509_identity *id, const char *rule,
    const struct sock_addr *peer, struct fwd_stamp **out, const char **why)
{
	struct fwd_stamp *s;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char host[NI_MAXHOST] = "", serv[NI_MAXSERV] = "0", text[FWD_TAG_MAX];

	*out = NULL;
	*why = "out_of_memory";
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -1;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, sbuf_write);
	if (peer != NULL && getnameinfo((const struct sockaddr *)&peer->ss, peer->len, host,
	    sizeof(host), serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		host[0] = '\0';
	if (o->tag_prefix != NULL) {
		if (render(o->tag_prefix, id, 1, text, FWD_TAG_MAX / 2 + 1) < 0) {
			*why = "identity_not_a_tag";
			goto fail;
		}
		if ((s->prefix = strdup(text)) == NULL)
			goto fail;
	}
	if (o->stamp_key != NULL) {
		if ((s->keys[s->n++] = strdup(o->stamp_key)) == NULL || pack_str(&pk, o->stamp_key) < 0)
			goto fail;
		if (o->stamp_format != NULL) {
			if (render(o->stamp_format, id, 0, text, sizeof(text)) < 0) {
				*why = "stamp_too_long";
				goto fail;
			}
			if (pack_str(&pk, text) < 0)
				goto fail;
		} else if (pack_identity(&pk, id, rule, host, strtol(serv, NULL, 10)) < 0) {
			goto fail;
		}
	}
	if (o->address_key != NULL &&
	    ((s->keys[s->n++] = strdup(o->address_key)) == NULL || pack_str(&pk, o->address_key) < 0 ||
	    pack_str(&pk, host) < 0))
		goto fail;
	s->kv = (unsigned char *)sb.data;
	s->kv_len = sb.size;
	*out = s;
	*why = NULL;
	return 0;
fail:
	msgpack_sbuffer_destroy(&sb);
	fwd_stamp_free(s);
	return -1;
}

void fwd_stamp_free(struct fwd_stamp *s)
{
	unsigned i;

	if (s == NULL)
		return;
	for (i = 0; i < 3; i++)
		free(s->keys[i]);
	free(s->kv);
	free(s->prefix);
	free(s);
}
