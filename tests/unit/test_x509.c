/* test_x509: a peer's identity from shared/x509.{h,c}.  Certificates are made
 * with openssl in a temporary directory, and every field of the identity is
 * checked against what `openssl x509` prints for the same file: subject and
 * issuer lines, serial, dates, CNs and OUs, SAN DNS names, URIs and IPs,
 * and both SHA-256 fingerprints.  Also: BMPString and UTF-8 names, escapes
 * in the one-line DN, names holding a NUL byte, one allocation per identity,
 * and input that is not a certificate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fp.h"
#include "x509.h"
#include "x509_chain.h"
#include "x509_name.h"

static char dir[] = "/tmp/test_x509.XXXXXX";

/* The output of a shell command, trailing newlines cut, malloc'd; fails the
 * test if the command fails. */
static char *sh(const char *fmt, ...)
{
	char cmd[4096], *out = NULL;
	size_t len = 0, cap = 0;
	va_list ap;
	FILE *p;
	int c;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	assert_non_null(p);
	while ((c = getc(p)) != EOF) {
		if (len + 2 > cap) {
			cap = cap ? 2 * cap : 256;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		out[len++] = (char)c;
	}
	if (out == NULL)
		out = calloc(1, 1);
	assert_non_null(out);
	out[len] = '\0';
	while (len > 0 && out[len - 1] == '\n')
		out[--len] = '\0';
	if (pclose(p) != 0)
		fail_msg("command failed: %s\n%s", cmd, out);
	return out;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* The identity of dir/name.pem (through its DER). */
static struct x509_identity *identity(const char *name)
{
	struct x509_identity *id = NULL;
	unsigned char *der;
	char path[256];
	const char *why = NULL;
	size_t len;

	free(sh("openssl x509 -in %s/%s.pem -outform DER -out %s/%s.der", dir, name, dir, name));
	snprintf(path, sizeof(path), "%s/%s.der", dir, name);
	der = read_file(path, &len);
	if (x509_identity_new(der, len, &id, &why) != 0)
		fail_msg("%s: %s", name, why);
	free(der);		/* the identity must not borrow from it */
	return id;
}

/* The value after "key=" in openssl's "key=value" line. */
static const char *after_eq(const char *s)
{
	const char *e = strchr(s, '=');

	assert_non_null(e);
	return e + 1;
}

static time_t openssl_date(const char *pem, const char *which)
{
	char *s = sh("date -u -d \"$(openssl x509 -in %s -noout -%s | cut -d= -f2)\" +%%s",
	    pem, which);
	time_t t = (time_t)strtoll(s, NULL, 10);

	free(s);
	return t;
}

/* Names of one kind ("CN=", "DNS:") from openssl's list, in order. */
static size_t collect(char *text, const char *sep, const char *prefix, char **out, size_t max)
{
	size_t n = 0, pl = strlen(prefix);
	char *save = NULL, *tok;

	for (tok = strtok_r(text, sep, &save); tok != NULL; tok = strtok_r(NULL, sep, &save)) {
		while (*tok == ' ')
			tok++;
		if (strncmp(tok, prefix, pl) == 0) {
			assert_true(n < max);
			out[n++] = tok + pl;
		}
	}
	return n;
}

static void check_list(char **want, size_t n_want, const char *const *have, size_t n_have)
{
	size_t i;

	assert_int_equal(n_have, n_want);
	for (i = 0; i < n_want; i++)
		assert_string_equal(have[i], want[i]);
}

/* Every field of id against `openssl x509` on dir/name.pem. */
static void check_against_openssl(const char *name, const struct x509_identity *id)
{
	char pem[256], *s, *names[32];
	unsigned char want[FP_LEN];
	enum fp_kind kind;
	const char *why;
	size_t n, i;

	snprintf(pem, sizeof(pem), "%s/%s.pem", dir, name);

	s = sh("openssl x509 -in %s -noout -subject -nameopt compat", pem);
	assert_string_equal(id->subject, after_eq(s));
	free(s);
	s = sh("openssl x509 -in %s -noout -issuer -nameopt compat", pem);
	assert_string_equal(id->issuer, after_eq(s));
	free(s);
	s = sh("openssl x509 -in %s -noout -serial", pem);
	assert_int_equal(strcasecmp(id->serial, after_eq(s)), 0);
	free(s);
	assert_int_equal(id->not_before, openssl_date(pem, "startdate"));
	assert_int_equal(id->not_after, openssl_date(pem, "enddate"));

	s = sh("openssl x509 -in %s -noout -subject -nameopt "
	    "sep_multiline,sname,utf8,-esc_msb,-space_eq", pem);
	n = collect(s, "\n", "CN=", names, 32);
	check_list(names, n, id->cn, id->n_cn);
	free(s);
	s = sh("openssl x509 -in %s -noout -subject -nameopt "
	    "sep_multiline,sname,utf8,-esc_msb,-space_eq", pem);
	n = collect(s, "\n", "OU=", names, 32);
	check_list(names, n, id->ou, id->n_ou);
	free(s);

	/* "DNS:a, URI:b, IP Address:c" on the line after the heading */
	s = sh("openssl x509 -in %s -noout -ext subjectAltName 2>/dev/null | tail -n +2", pem);
	n = collect(s, ",\n", "DNS:", names, 32);
	check_list(names, n, id->dns, id->n_dns);
	free(s);
	s = sh("openssl x509 -in %s -noout -ext subjectAltName 2>/dev/null | tail -n +2", pem);
	n = collect(s, ",\n", "URI:", names, 32);
	check_list(names, n, id->uri, id->n_uri);
	free(s);
	s = sh("openssl x509 -in %s -noout -ext subjectAltName 2>/dev/null | tail -n +2", pem);
	n = collect(s, ",\n", "IP Address:", names, 32);
	assert_int_equal(id->n_ip, n);
	for (i = 0; i < n; i++) {
		/* openssl spells IPv6 in full ("FD00:0:0:0:0:0:0:1"): compare bytes */
		unsigned char a[16], b[16];
		int af = strchr(names[i], ':') != NULL ? AF_INET6 : AF_INET;

		assert_int_equal(inet_pton(af, names[i], a), 1);
		assert_int_equal(inet_pton(af, id->ip[i], b), 1);
		assert_memory_equal(a, b, af == AF_INET ? 4 : 16);
	}
	free(s);

	s = sh("openssl x509 -in %s -noout -fingerprint -sha256", pem);
	assert_int_equal(fp_parse(s, &kind, want, &why), 0);
	assert_memory_equal(id->sha256, want, FP_LEN);
	free(s);
	s = sh("openssl x509 -in %s -noout -pubkey | openssl pkey -pubin -outform DER | "
	    "openssl dgst -sha256 -r | cut -d' ' -f1", pem);
	assert_int_equal(fp_parse(s, &kind, want, &why), 0);
	assert_memory_equal(id->spki_sha256, want, FP_LEN);
	free(s);
}

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	free(sh("cd %s && exec 2>&1 && "
	    /* a CA, and a leaf it signs with a serial whose top bit is set */
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes "
	    "  -keyout ca.key -out ca.pem -days 30 -subj '/C=US/O=Test CA/CN=Test Root' && "
	    "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout full.key "
	    "  -out full.csr -subj '/C=US/O=Ex Corp/OU=edge/OU=team b/CN=web-1/CN=second' && "
	    "printf 'subjectAltName=DNS:a.example.com,DNS:*.B.Example.com,"
	    "URI:spiffe://corp/edge/a,email:x@y.example,IP:10.0.0.5,IP:fd00::1,"
	    "URI:https://x.example/y?q=1,DNS:last.example.com\\n' > full.ext && "
	    "openssl x509 -req -in full.csr -CA ca.pem -CAkey ca.key -set_serial 0x80a1b2c3d4 "
	    "  -days 10 -extfile full.ext -out full.pem && "
	    /* RSA, self-signed, no CN, no SAN, serial 1 */
	    "openssl req -x509 -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.pem -days 2 "
	    "  -set_serial 1 -subj '/O=No CN Org/OU=only' && "
	    /* non-ASCII names as BMPString, then as UTF8String */
	    "printf '[req]\\ndistinguished_name=dn\\nstring_mask=pkix\\nprompt=no\\nutf8=yes\\n"
	    "[dn]\\nO=Ex\\nOU=\\303\\251quipe\\nCN=caf\\303\\251\\n' > bmp.cnf && "
	    "openssl req -x509 -config bmp.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "  -nodes -keyout bmp.key -out bmp.pem -days 3 && "
	    "sed 's/string_mask=pkix/string_mask=utf8only/' bmp.cnf > utf8.cnf && "
	    "openssl req -x509 -config utf8.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "  -nodes -keyout utf8.key -out utf8.pem -days 3 && "
	    /* '/', '+' and '\\' inside values; a multi-valued RDN */
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout slash.key "
	    "  -out slash.pem -days 3 -multivalue-rdn "
	    "  -subj '/O=a\\/b/CN=c\\\\d+UID=e\\+f/OU=g' && "
	    /* names to be patched into holding a NUL byte (nulX -> nul\\0) */
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout nul.key "
	    "  -out nul.pem -days 3 -subj '/OU=nulXou/OU=fine/CN=nulXcn' -addext "
	    "  'subjectAltName=DNS:nulXdns.example,DNS:ok.example,URI:spiffe://nulX/a,"
	    "URI:spiffe://ok/a' && "
	    "openssl x509 -in nul.pem -outform DER -out nul.der && "
	    /* a BMPString CN to be patched into a UniversalString */
	    "printf '[req]\\ndistinguished_name=dn\\nstring_mask=pkix\\nprompt=no\\nutf8=yes\\n"
	    "[dn]\\nOU=fine\\nCN=\\303\\251\\303\\251\\303\\251\\303\\251\\n' > wide.cnf && "
	    "openssl req -x509 -config wide.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "  -nodes -keyout wide.key -out wide.pem -days 3 && "
	    "openssl x509 -in wide.pem -outform DER -out wide.der", dir));
	/* keys and digests for x509_key_ok and x509_sig_ok */
	free(sh("cd %s && exec 2>&1 && "
	    "openssl req -x509 -newkey rsa:1024 -nodes -keyout r1024.key -out r1024.pem -days 2 "
	    "  -subj /CN=r1024 && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-224 -nodes -keyout p224.key "
	    "  -out p224.pem -days 2 -subj /CN=p224 && "
	    "openssl req -x509 -newkey ed25519 -nodes -keyout ed.key -out ed.pem -days 2 "
	    "  -subj /CN=ed && "
	    "openssl x509 -req -in full.csr -CA ca.pem -CAkey ca.key -days 10 -sha1 -out sha1.pem && "
	    "openssl x509 -req -in full.csr -CA rsa.pem -CAkey rsa.key -days 10 -sha256 "
	    "  -sigopt rsa_padding_mode:pss -out pss256.pem && "
	    "openssl x509 -req -in full.csr -CA rsa.pem -CAkey rsa.key -days 10 -sha1 "
	    "  -sigopt rsa_padding_mode:pss -out pss1.pem", dir));
	/* chains: root0 (pathlen:0) and root (none) <- inter <- leaf; a root
	 * without keyCertSign and a CA:FALSE one, each over a leaf */
	free(sh("cd %s && exec 2>&1 && "
	    "printf '[req]\\ndistinguished_name=dn\\n[dn]\\n"
	    "[r0]\\nbasicConstraints=critical,CA:TRUE,pathlen:0\\n"
	    "keyUsage=critical,keyCertSign,cRLSign\\nsubjectKeyIdentifier=hash\\n"
	    "[r]\\nbasicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n"
	    "subjectKeyIdentifier=hash\\n"
	    "[rnoks]\\nbasicConstraints=critical,CA:TRUE\\nkeyUsage=critical,digitalSignature\\n"
	    "[noca]\\nbasicConstraints=critical,CA:FALSE\\n"
	    "[inter]\\nbasicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n"
	    "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid\\n"
	    "[leaf]\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > ch.cnf && "
	    "for r in r0 r rnoks noca; do "
	    "  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $r.key "
	    "    -out $r.pem -days 2 -subj /CN=root-$r -config ch.cnf -extensions $r || exit 1; "
	    "done && for r in r0 r; do "
	    "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout i$r.key "
	    "    -out i$r.csr -subj /CN=inter-$r && "
	    "  openssl x509 -req -in i$r.csr -CA $r.pem -CAkey $r.key -days 2 -extfile ch.cnf "
	    "    -extensions inter -out i$r.pem && "
	    "  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout l$r.key "
	    "    -out l$r.csr -subj /CN=leaf-$r && "
	    "  openssl x509 -req -in l$r.csr -CA i$r.pem -CAkey i$r.key -days 2 -extfile ch.cnf "
	    "    -extensions leaf -out l$r.pem || exit 1; "
	    "done && for r in rnoks noca; do "
	    "  openssl x509 -req -in lr.csr -CA $r.pem -CAkey $r.key -days 2 -extfile ch.cnf "
	    "    -extensions leaf -out l$r.pem || exit 1; done", dir));
	/* name constraints: a root and leaves right under it */
	free(sh("cd %s && exec 2>&1 && "
	    "printf '[req]\\ndistinguished_name=dn\\n[dn]\\n"
	    "[rnc]\\nbasicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign\\n"
	    "nameConstraints=critical,permitted;DNS:example.com,excluded;DNS:bad.example.com,"
	    "permitted;IP:10.0.0.0/255.0.0.0,permitted;URI:.example.com,permitted;email:example.com\\n"
	    "[ok]\\nsubjectAltName=DNS:a.example.com,IP:10.1.1.1,URI:spiffe://x.example.com/a,"
	    "email:u@example.com\\n"
	    "[dns_out]\\nsubjectAltName=DNS:a.example.org\\n"
	    "[dns_excl]\\nsubjectAltName=DNS:x.bad.example.com\\n"
	    "[ip_out]\\nsubjectAltName=DNS:a.example.com,IP:11.0.0.1\\n"
	    "[uri_out]\\nsubjectAltName=URI:spiffe://example.com/a\\n"
	    "[email_out]\\nsubjectAltName=email:u@other.example.org\\n"
	    "[plain]\\nbasicConstraints=CA:FALSE\\n' > nc.cnf && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout rnc.key "
	    "  -out rnc.pem -days 2 -subj /CN=root-nc -config nc.cnf -extensions rnc && "
	    "for e in ok dns_out dns_excl ip_out uri_out email_out; do "
	    "  openssl x509 -req -in lr.csr -CA rnc.pem -CAkey rnc.key -days 2 -extfile nc.cnf "
	    "    -extensions $e -out nc_$e.pem || exit 1; done && "
	    "openssl req -new -key lr.key -subj /CN=host.other.org -out cnh.csr && "
	    "openssl x509 -req -in cnh.csr -CA rnc.pem -CAkey rnc.key -days 2 -extfile nc.cnf "
	    "  -extensions plain -out nc_cn_out.pem && "
	    "openssl req -new -key lr.key -subj '/CN=client one' -out cnp.csr && "
	    "openssl x509 -req -in cnp.csr -CA rnc.pem -CAkey rnc.key -days 2 -extfile nc.cnf "
	    "  -extensions plain -out nc_cn_plain.pem", dir));
	/* a CRL of ca.pem due in a day */
	free(sh("cd %s && exec 2>&1 && mkdir -p crlca && touch crlca/index.txt && "
	    "printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=crlca/index.txt\\n"
	    "default_md=sha256\\ncrlnumber=crlca/num\\n' > crl.cnf && echo 01 > crlca/num && "
	    "openssl ca -config crl.cnf -gencrl -cert ca.pem -keyfile ca.key -crlhours 24 "
	    "  -out day.crl && openssl crl -in day.crl -outform DER -out day.crl.der", dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(sh("rm -rf %s", dir));
	return 0;
}

static void test_ca_signed_ec_leaf(void **state)
{
	struct x509_identity *id = identity("full");

	(void)state;
	check_against_openssl("full", id);
	/* and the values themselves, so the test is not only "agrees with openssl" */
	assert_string_equal(id->subject, "/C=US/O=Ex Corp/OU=edge/OU=team b/CN=web-1/CN=second");
	assert_string_equal(id->issuer, "/C=US/O=Test CA/CN=Test Root");
	assert_string_equal(id->serial, "80a1b2c3d4");	/* the 00 sign byte dropped */
	assert_int_equal(id->n_cn, 2);
	assert_string_equal(id->cn[0], "web-1");
	assert_string_equal(id->cn[1], "second");
	assert_int_equal(id->n_ou, 2);
	assert_string_equal(id->ou[1], "team b");
	assert_int_equal(id->n_dns, 3);
	assert_string_equal(id->dns[1], "*.B.Example.com");	/* as encoded */
	assert_int_equal(id->n_uri, 2);
	assert_string_equal(id->uri[0], "spiffe://corp/edge/a");
	assert_string_equal(id->uri[1], "https://x.example/y?q=1");
	assert_int_equal(id->n_ip, 2);
	assert_string_equal(id->ip[0], "10.0.0.5");
	assert_string_equal(id->ip[1], "fd00::1");
	assert_int_equal(id->not_after - id->not_before, 10 * 86400);
	x509_identity_free(id);
}

static void test_ca_itself(void **state)
{
	struct x509_identity *id = identity("ca");

	(void)state;
	check_against_openssl("ca", id);
	assert_string_equal(id->subject, id->issuer);
	assert_int_equal(id->n_dns + id->n_uri + id->n_ip + id->n_ou, 0);
	x509_identity_free(id);
}

static void test_rsa_without_cn_or_san(void **state)
{
	struct x509_identity *id = identity("rsa");

	(void)state;
	check_against_openssl("rsa", id);
	assert_string_equal(id->subject, "/O=No CN Org/OU=only");
	assert_string_equal(id->serial, "01");
	assert_int_equal(id->n_cn, 0);
	assert_int_equal(id->n_ou, 1);
	assert_int_equal(id->n_dns + id->n_uri + id->n_ip, 0);
	x509_identity_free(id);
}

/* BMPString values come out as UTF-8, like UTF8String ones; the one-line DN
 * keeps UTF-8 (openssl's compat form would escape it, so it is not compared). */
static void test_non_ascii_names(void **state)
{
	static const char *const names[] = { "bmp", "utf8" };
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		struct x509_identity *id = identity(names[i]);
		char pem[256], *s;

		snprintf(pem, sizeof(pem), "%s/%s.pem", dir, names[i]);
		/* OU and CN (and O too for utf8only), in subject and issuer */
		s = sh("openssl asn1parse -in %s | grep -c %s", pem,
		    i == 0 ? "BMPSTRING" : "UTF8STRING");
		assert_string_equal(s, i == 0 ? "4" : "6");
		free(s);
		assert_int_equal(id->n_cn, 1);
		assert_string_equal(id->cn[0], "caf\xc3\xa9");
		assert_int_equal(id->n_ou, 1);
		assert_string_equal(id->ou[0], "\xc3\xa9quipe");
		assert_string_equal(id->subject, "/O=Ex/OU=\xc3\xa9quipe/CN=caf\xc3\xa9");
		x509_identity_free(id);
	}
}

/* A '/' or '+' in a value would forge another attribute in the one-line
 * form: they are escaped, as openssl does, and so is the escape character,
 * which openssl leaves alone.  The names stay as encoded. */
static void test_separators_escaped_in_dn_line(void **state)
{
	struct x509_identity *id = identity("slash");
	char *s;

	(void)state;
	s = sh("openssl x509 -in %s/slash.pem -noout -subject -nameopt compat", dir);
	assert_string_equal(after_eq(s), "/O=a\\/b/CN=c\\d+UID=e\\+f/OU=g");
	free(s);
	assert_string_equal(id->subject, "/O=a\\/b/CN=c\\\\d+UID=e\\+f/OU=g");
	assert_string_equal(id->cn[0], "c\\d");
	assert_string_equal(id->ou[0], "g");
	x509_identity_free(id);
}

/* A name holding a NUL byte is left out of the identity (as a C string it
 * would match truncated); the others stay. */
static void test_names_with_nul_left_out(void **state)
{
	struct x509_identity *id = NULL;
	unsigned char *der, *p;
	char path[256];
	const char *why;
	size_t len, patched = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/nul.der", dir);
	der = read_file(path, &len);
	for (p = der; (p = memmem(p, len - (size_t)(p - der), "nulX", 4)) != NULL; p += 4) {
		p[3] = '\0';
		patched++;
	}
	assert_int_equal(patched, 6);	/* OU and CN twice (issuer), DNS, URI */
	assert_int_equal(x509_identity_new(der, len, &id, &why), 0);
	assert_int_equal(id->n_cn, 0);
	assert_int_equal(id->n_ou, 1);
	assert_string_equal(id->ou[0], "fine");
	assert_int_equal(id->n_dns, 1);
	assert_string_equal(id->dns[0], "ok.example");
	assert_int_equal(id->n_uri, 1);
	assert_string_equal(id->uri[0], "spiffe://ok/a");
	/* the display line shows it escaped */
	assert_non_null(strstr(id->subject, "/CN=nul\\x00cn"));
	x509_identity_free(id);
	free(der);
}

/* A UniversalString code point beyond U+10FFFF has no UTF-8 form; written
 * as if it had (0x0110002F as the bytes of U+10002F) the name would match
 * another one.  Such a value is left out, and shown as U+FFFD. */
static void test_names_beyond_unicode_left_out(void **state)
{
	static const unsigned char bmp[] = { 0x1e, 0x08, 0x00, 0xe9, 0x00, 0xe9, 0x00, 0xe9,
	    0x00, 0xe9 };
	static const unsigned char uni[] = { 0x1c, 0x08, 0x01, 0x10, 0x00, 0x2f, 0x00, 0x00,
	    0x00, 0x41 };
	struct x509_identity *id = NULL;
	unsigned char *der, *p;
	char path[256];
	const char *why;
	size_t len, patched = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/wide.der", dir);
	der = read_file(path, &len);
	for (p = der; (p = memmem(p, len - (size_t)(p - der), bmp, sizeof(bmp))) != NULL;
	    p += sizeof(bmp)) {
		memcpy(p, uni, sizeof(uni));
		patched++;
	}
	assert_int_equal(patched, 2);	/* issuer and subject */
	assert_int_equal(x509_identity_new(der, len, &id, &why), 0);
	assert_int_equal(id->n_cn, 0);
	assert_int_equal(id->n_ou, 1);
	assert_string_equal(id->ou[0], "fine");
	assert_non_null(strstr(id->subject, "/CN=\xef\xbf\xbd" "A"));
	x509_identity_free(id);
	free(der);
}

/* Arrays and strings live in the identity's one block. */
static void test_one_allocation(void **state)
{
	struct x509_identity *id = identity("full");
	const char *lo = (const char *)id, *hi = lo + malloc_usable_size(id);
	const char *const *lists[] = { id->cn, id->ou, id->dns, id->uri, id->ip };
	const size_t counts[] = { id->n_cn, id->n_ou, id->n_dns, id->n_uri, id->n_ip };
	size_t i, k;

	(void)state;
#define INSIDE(p) assert_true((const char *)(p) >= lo && (const char *)(p) < hi)
	INSIDE(id->subject);
	INSIDE(id->issuer);
	INSIDE(id->serial);
	for (i = 0; i < 5; i++) {
		for (k = 0; k < counts[i]; k++) {
			INSIDE(&lists[i][k]);
			INSIDE(lists[i][k]);
			INSIDE(lists[i][k] + strlen(lists[i][k]));
		}
	}
#undef INSIDE
	x509_identity_free(id);
	x509_identity_free(NULL);
}

static void test_not_a_certificate(void **state)
{
	static const unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };
	struct x509_identity *id = (struct x509_identity *)1;
	unsigned char *der, *big;
	char path[256];
	const char *why = NULL;
	size_t len, cut;

	(void)state;
	assert_int_equal(x509_identity_new(junk, sizeof(junk), &id, &why), -1);
	assert_null(id);
	assert_non_null(why);
	assert_int_equal(x509_identity_new(junk, 0, &id, &why), -1);

	snprintf(path, sizeof(path), "%s/full.der", dir);
	der = read_file(path, &len);
	for (cut = 1; cut < len; cut += 37) {
		why = NULL;
		assert_int_equal(x509_identity_new(der, len - cut, &id, &why), -1);
		assert_non_null(why);
	}
	big = calloc(1, X509_ID_MAX_DER + 1);
	assert_non_null(big);
	memcpy(big, der, len);
	assert_int_equal(x509_identity_new(big, X509_ID_MAX_DER + 1, &id, &why), -1);
	assert_string_equal(why, "certificate too large");
	free(big);
	free(der);
}

/* A parsed certificate from dir/name.pem; its DER goes to *der (freed by
 * the caller after x). */
static void load(const char *name, struct x509 *x, unsigned char **der)
{
	char path[256];
	const char *why = NULL;
	size_t len;

	free(sh("openssl x509 -in %s/%s.pem -outform DER -out %s/%s.der", dir, name, dir, name));
	snprintf(path, sizeof(path), "%s/%s.der", dir, name);
	*der = read_file(path, &len);
	if (x509_parse(x, *der, len, &why) != 0)
		fail_msg("%s: %s", name, why);
}

/* check_each(cases, n, fn, what): fn(x) is non-zero exactly for the cases
 * marked ok, each loaded by name. */
struct judged {
	const char *name;
	int ok;
};

static void check_each(const struct judged *cases, size_t n, int (*fn)(const struct x509 *),
    const char *what)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct x509 x;
		unsigned char *der;

		load(cases[i].name, &x, &der);
		if (!fn(&x) != !cases[i].ok)
			fail_msg("%s: %s %d, want %d", cases[i].name, what, fn(&x), cases[i].ok);
		free(der);
	}
}

/* RSA >= 2048, EC >= 256 bits, Ed25519: strong enough; RSA 1024, P-224: not. */
static void test_key_sizes(void **state)
{
	static const struct judged cases[] = {
		{ "full", 1 }, { "ca", 1 }, { "rsa", 1 }, { "ed", 1 },
		{ "r1024", 0 }, { "p224", 0 },
	};

	(void)state;
	check_each(cases, sizeof(cases) / sizeof(cases[0]), x509_key_ok, "x509_key_ok");
}

/* SHA-1 (also as RSASSA-PSS's hash) is weak; SHA-256 and up, Ed25519 are not. */
static void test_signature_digests(void **state)
{
	static const struct judged cases[] = {
		{ "full", 1 }, { "rsa", 1 }, { "ed", 1 }, { "pss256", 1 },
		{ "sha1", 0 }, { "pss1", 0 },
	};

	(void)state;
	check_each(cases, sizeof(cases) / sizeof(cases[0]), x509_sig_ok, "x509_sig_ok");
}

/* x509_chain_check(leaf [, inter], anchor): its verdict and whether the path
 * reached the anchor. */
static const char *chain(const char *leaf, const char *inter, const char *anchor, int *anchored)
{
	struct x509 peer[2], a;
	unsigned char *d0, *d1 = NULL, *da;
	const char *why;

	load(leaf, &peer[0], &d0);
	if (inter != NULL)
		load(inter, &peer[1], &d1);
	load(anchor, &a, &da);
	why = x509_chain_check(peer, inter != NULL ? 2 : 1, &a, 1, anchored);
	free(d0);
	free(d1);
	free(da);
	return why;
}

/* What wolfSSL 5.5.4 skips: a root's pathlen (as `openssl verify` refuses
 * it), a root without keyCertSign, a CA:FALSE issuer; weak keys and digests
 * anywhere on the path. */
static void test_chain_check(void **state)
{
	int anchored;

	(void)state;
	assert_null(chain("lr", "ir", "r", &anchored));
	assert_int_equal(anchored, 1);
	assert_string_equal(chain("lr0", "ir0", "r0", &anchored), "path_length");
	assert_int_equal(anchored, 1);
	/* the peer sending the root as well changes nothing */
	{
		struct x509 peer[3], a;
		unsigned char *d[4];
		const char *why;

		load("lr0", &peer[0], &d[0]);
		load("ir0", &peer[1], &d[1]);
		load("r0", &peer[2], &d[2]);
		load("r0", &a, &d[3]);
		why = x509_chain_check(peer, 3, &a, 1, &anchored);
		assert_non_null(why);
		assert_string_equal(why, "path_length");
		for (int i = 0; i < 4; i++)
			free(d[i]);
	}
	assert_string_equal(chain("lrnoks", NULL, "rnoks", &anchored), "issuer_not_ca");
	assert_string_equal(chain("lnoca", NULL, "noca", &anchored), "issuer_not_ca");
	/* a leaf straight under root0 is fine: no intermediate below it */
	assert_null(chain("ir0", NULL, "r0", &anchored));
	/* no path to the anchor: nothing refused here, anchored 0 */
	assert_null(chain("lr", NULL, "r0", &anchored));
	assert_int_equal(anchored, 0);
	/* weak keys and digests, the leaf's or the anchor's */
	assert_string_equal(chain("sha1", NULL, "ca", &anchored), "weak_signature");
	assert_string_equal(chain("r1024", NULL, "ca", &anchored), "weak_key");
	assert_null(chain("full", NULL, "ca", &anchored));
	assert_int_equal(anchored, 1);
	/* a self-signed certificate's own digest is not judged */
	assert_null(chain("ed", NULL, "ca", &anchored));
}

/* Every name form name constraints compare, on a leaf under a constrained
 * root (wolfSSL compares DNS, email and directory names with the direct
 * issuer's constraints only, and no IP or URI). */
static void test_name_constraints(void **state)
{
	static const struct { const char *leaf; int ok; } cases[] = {
		{ "nc_ok", 1 }, { "nc_cn_plain", 1 },
		{ "nc_dns_out", 0 }, { "nc_dns_excl", 0 }, { "nc_ip_out", 0 },
		{ "nc_uri_out", 0 }, { "nc_email_out", 0 }, { "nc_cn_out", 0 },
	};
	size_t i;
	int anchored;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = chain(cases[i].leaf, NULL, "rnc", &anchored);

		assert_int_equal(anchored, 1);
		if (cases[i].ok && why != NULL)
			fail_msg("%s: refused: %s", cases[i].leaf, why);
		if (!cases[i].ok && (why == NULL || strcmp(why, "name_constraints") != 0))
			fail_msg("%s: %s, want name_constraints", cases[i].leaf, why ? why : "accepted");
	}
}

static void test_crl_next_update(void **state)
{
	char path[256];
	unsigned char *der;
	size_t len;
	struct der_tlv issuer;
	time_t next = 0;
	const char *why = NULL;
	char *s;

	(void)state;
	snprintf(path, sizeof(path), "%s/day.crl.der", dir);
	der = read_file(path, &len);
	assert_int_equal(x509_crl_parse(der, len, &issuer, &next, &why), 0);
	s = sh("date -u -d \"$(openssl crl -in %s/day.crl -noout -nextupdate | cut -d= -f2)\" +%%s",
	    dir);
	assert_int_equal((long long)next, strtoll(s, NULL, 10));
	free(s);
	{
		char name[128];

		x509_name_line(&issuer, name, sizeof(name));
		assert_string_equal(name, "/C=US/O=Test CA/CN=Test Root");
	}
	assert_int_equal(x509_crl_parse(der, len - 1, &issuer, &next, &why), -1);
	assert_non_null(why);
	free(der);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_signed_ec_leaf),
		cmocka_unit_test(test_ca_itself),
		cmocka_unit_test(test_rsa_without_cn_or_san),
		cmocka_unit_test(test_non_ascii_names),
		cmocka_unit_test(test_separators_escaped_in_dn_line),
		cmocka_unit_test(test_names_with_nul_left_out),
		cmocka_unit_test(test_names_beyond_unicode_left_out),
		cmocka_unit_test(test_one_allocation),
		cmocka_unit_test(test_not_a_certificate),
		cmocka_unit_test(test_key_sizes),
		cmocka_unit_test(test_signature_digests),
		cmocka_unit_test(test_chain_check),
		cmocka_unit_test(test_name_constraints),
		cmocka_unit_test(test_crl_next_update),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
