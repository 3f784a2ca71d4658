/* tlsfwd-certs: make the certificates a tlsfwd deployment needs, with the
 * extensions mutual TLS wants, and inspect them.  This file reads the
 * command line and runs one command; the work is in gen, key, x509, show,
 * text, fp, san, der_buf, kube and file. */
#include <wolfssl/options.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/wc_port.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "der.h"
#include "der_buf.h"
#include "file.h"
#include "fp.h"
#include "gen.h"
#include "key.h"
#include "kube.h"
#include "san.h"
#include "show.h"
#include "text.h"
#include "x509.h"

#define PROG "tlsfwd-certs"
#define EXIT_USAGE 2

#define DAYS_CA 3650
#define DAYS_LEAF 825
#define ERR_LEN (3 * PATH_MAX + 256)	/* room for the paths a message names */

enum opt_id {
	O_OUT, O_CN, O_DAYS, O_KEY, O_CA, O_SAN, O_KEY_PASS_ENV, O_CA_KEY_PASS_ENV,
	O_FORCE, O_PURPOSE, O_NAME, O_CERT, O_KEYFILE, O_NAMESPACE, O_TYPE, O_CHECK,
	O_HELP, O_COUNT
};

#define BIT(o) (1u << (o))

static const struct option long_opts[] = {
	{ "out", required_argument, NULL, O_OUT },
	{ "cn", required_argument, NULL, O_CN },
	{ "days", required_argument, NULL, O_DAYS },
	{ "key", required_argument, NULL, O_KEY },	/* O_KEYFILE for kube-secret */
	{ "ca", required_argument, NULL, O_CA },
	{ "san", required_argument, NULL, O_SAN },
	{ "key-pass-env", required_argument, NULL, O_KEY_PASS_ENV },
	{ "ca-key-pass-env", required_argument, NULL, O_CA_KEY_PASS_ENV },
	{ "force", no_argument, NULL, O_FORCE },
	{ "purpose", required_argument, NULL, O_PURPOSE },
	{ "name", required_argument, NULL, O_NAME },
	{ "cert", required_argument, NULL, O_CERT },
	{ "namespace", required_argument, NULL, O_NAMESPACE },
	{ "type", required_argument, NULL, O_TYPE },
	{ "check", required_argument, NULL, O_CHECK },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 }
};

struct opts {
	const char *val[O_COUNT];	/* last value of each option given */
	unsigned given;			/* BIT(opt) for each option given */
	struct der_buf san;		/* GeneralName elements from every --san */
	int nsan;
	int days;
	enum key_type key_type;
	int key_bits;
	char **args;			/* positional arguments */
	int nargs;
};

enum issue_kind { ISSUE_CA, ISSUE_SERVER, ISSUE_CLIENT, ISSUE_SELF };

struct command {
	const char *name;
	int (*run)(const struct command *cmd, struct opts *o);
	unsigned allowed;		/* BIT(opt) for each option it takes */
	unsigned required;
	int nargs;			/* positional arguments: exactly this many */
	const char *help;
};

static const char usage_text[] =
"Usage: " PROG " COMMAND [options]      (" PROG " COMMAND --help for more)\n"
"\n"
"Make the certificates for tlsfwd's mutual TLS, with the extensions right.\n"
"\n"
"Commands:\n"
"  ca           a certificate authority: ca.crt, ca.key\n"
"  server       a server certificate signed by the CA (serverAuth, SANs)\n"
"  client       a client certificate signed by the CA (clientAuth)\n"
"  self-signed  a self-signed certificate, to pin by fingerprint without a CA\n"
"  fingerprint  the sha256: and spki: fingerprints of a certificate\n"
"  show         what a certificate says: names, dates, usages, fingerprints\n"
"  kube-secret  a Kubernetes Secret manifest holding CA, certificate and key\n"
"\n"
"Example:\n"
"  " PROG " ca --out pki\n"
"  " PROG " server --ca pki --cn agg.example.com \\\n"
"      --san DNS:agg.example.com,IP:10.0.0.5 --out pki/server\n"
"  " PROG " client --ca pki --cn edge-01 --out pki/edge-01\n"
"\n"
"Options common to the commands that write keys:\n"
"  --key TYPE           ec (ECDSA P-256, the default), ec384, rsa (RSA 2048),\n"
"                       rsa3072 or rsa4096\n"
"  --days N             validity in days from now\n"
"  --key-pass-env VAR   encrypt the key with the passphrase in $VAR\n"
"  --force              replace existing files instead of refusing\n"
"  --version            print the version and wolfSSL's\n";

#define COMMON_KEY_HELP \
"  --key TYPE           ec (ECDSA P-256, the default), ec384, rsa (RSA 2048),\n" \
"                       rsa3072 or rsa4096\n" \
"  --key-pass-env VAR   write the key encrypted (PKCS#8, PBES2 AES-256-CBC)\n" \
"                       with the passphrase held in environment variable VAR\n" \
"  --force              replace existing files (the default is to refuse)\n" \
"  --help               this text\n"

#define CA_READ_HELP \
"  --ca DIR             the CA directory: DIR/ca.crt and DIR/ca.key\n" \
"                       (an encrypted ca.key is read with --key-pass-env, or\n" \
"                       with --ca-key-pass-env VAR when its passphrase differs)\n"

static const char help_ca[] =
"Usage: " PROG " ca --out DIR [--cn NAME] [--days N] [--key TYPE]\n"
"                       [--key-pass-env VAR] [--force]\n"
"\n"
"Make a certificate authority: DIR/ca.crt and DIR/ca.key (mode 0600).  Give\n"
"ca.crt to both ends as the trust anchor; keep ca.key somewhere safe.\n"
"It gets: basicConstraints critical CA:TRUE, pathlen:0 (it signs leaves\n"
"only); keyUsage critical keyCertSign, cRLSign; subject and authority key ids.\n"
"\n"
"Options:\n"
"  --out DIR            where to write (created with mode 0700 if missing)\n"
"  --cn NAME            subject common name (default \"tlsfwd CA\")\n"
"  --days N             validity in days from now (default 3650)\n"
COMMON_KEY_HELP
"\n"
"Example:\n"
"  " PROG " ca --out pki --cn \"logging CA\"\n";

static const char help_server[] =
"Usage: " PROG " server --ca DIR --cn NAME --san LIST --out DIR [--days N]\n"
"                       [--key TYPE] [--key-pass-env VAR] [--force]\n"
"\n"
"Make a server certificate signed by the CA: DIR/server.crt and DIR/server.key\n"
"(mode 0600).  It gets: extendedKeyUsage serverAuth; keyUsage critical\n"
"digitalSignature (and keyEncipherment for RSA); basicConstraints critical\n"
"CA:FALSE; the subjectAltNames given.  Clients verify the name they connect\n"
"to against the SANs, not the CN, so list every name and address in use.\n"
"\n"
"Options:\n"
CA_READ_HELP
"  --cn NAME            subject common name, e.g. the main host name\n"
"  --san LIST           comma-separated TYPE:VALUE, repeatable, at least one:\n"
"                       DNS:agg.example.com, DNS:*.example.com, IP:10.0.0.5,\n"
"                       IP:2001:db8::5, URI:spiffe://example.org/agg,\n"
"                       email:ops@example.com\n"
"  --out DIR            where to write (created with mode 0700 if missing)\n"
"  --days N             validity in days from now (default 825)\n"
COMMON_KEY_HELP
"\n"
"Example:\n"
"  " PROG " server --ca pki --cn agg.example.com \\\n"
"      --san DNS:agg.example.com,IP:10.0.0.5 --out pki/agg\n";

static const char help_client[] =
"Usage: " PROG " client --ca DIR --cn NAME --out DIR [--san LIST] [--days N]\n"
"                       [--key TYPE] [--key-pass-env VAR] [--force]\n"
"\n"
"Make a client certificate signed by the CA: DIR/client.crt and DIR/client.key\n"
"(mode 0600).  It gets: extendedKeyUsage clientAuth; keyUsage critical\n"
"digitalSignature; basicConstraints critical CA:FALSE; any SANs given (a\n"
"SPIFFE ID as URI:spiffe://..., for example).\n"
"\n"
"Options:\n"
CA_READ_HELP
"  --cn NAME            subject common name, the client's identity\n"
"  --san LIST           comma-separated TYPE:VALUE, repeatable (optional):\n"
"                       DNS:..., IP:..., URI:spiffe://..., email:...\n"
"  --out DIR            where to write (created with mode 0700 if missing)\n"
"  --days N             validity in days from now (default 825)\n"
COMMON_KEY_HELP
"\n"
"Example:\n"
"  " PROG " client --ca pki --cn edge-01 \\\n"
"      --san URI:spiffe://example.org/edge-01 --out pki/edge-01\n";

static const char help_self[] =
"Usage: " PROG " self-signed --cn NAME --out DIR [--purpose client|server]\n"
"                       [--san LIST] [--days N] [--key TYPE]\n"
"                       [--key-pass-env VAR] [--force]\n"
"\n"
"Make a self-signed certificate, for a peer pinned by fingerprint instead of\n"
"trusted through a CA: DIR/client.crt and DIR/client.key (server.* with\n"
"--purpose server).  Put the spki: fingerprint it prints in the other end's\n"
"allow-list.  It gets: extendedKeyUsage clientAuth (serverAuth with --purpose\n"
"server); keyUsage critical digitalSignature; basicConstraints critical\n"
"CA:FALSE; subject and authority key ids.\n"
"\n"
"Options:\n"
"  --cn NAME            subject common name\n"
"  --out DIR            where to write (created with mode 0700 if missing)\n"
"  --purpose P          client (default) or server\n"
"  --san LIST           comma-separated TYPE:VALUE, repeatable (optional;\n"
"                       a server needs the names clients connect to)\n"
"  --days N             validity in days from now (default 825)\n"
COMMON_KEY_HELP
"\n"
"Example:\n"
"  " PROG " self-signed --cn edge-07 --out edge-07\n";

static const char help_fingerprint[] =
"Usage: " PROG " fingerprint FILE [--check FINGERPRINT]\n"
"\n"
"Print the fingerprints of the (first) certificate in FILE, PEM or DER, in\n"
"the form the tlsfwd allow-lists take:\n"
"  sha256:<64 lowercase hex>   SHA-256 of the certificate (DER); the same\n"
"                              value as `openssl x509 -fingerprint -sha256`\n"
"  spki:<64 lowercase hex>     SHA-256 of the public key (SubjectPublicKeyInfo,\n"
"                              DER); stays the same when the certificate is\n"
"                              renewed with the same key\n"
"\n"
"Options:\n"
"  --check FP           exit 0 if the certificate matches FP, 1 if not.  FP is\n"
"                       sha256:HEX or spki:HEX; HEX may be upper or lower case\n"
"                       and colon-separated (AB:CD:...); openssl's \"sha256\n"
"                       Fingerprint=AB:CD:...\" works too; bare HEX is sha256:\n"
"  --help               this text\n";

static const char help_show[] =
"Usage: " PROG " show FILE\n"
"\n"
"Print what the (first) certificate in FILE, PEM or DER, says, one\n"
"\"label: value\" line each: subject, issuer, serial (hex), not-before and\n"
"not-after (UTC, ISO 8601), status, public key, signature algorithm, basic\n"
"constraints, subject alternative names (in --san syntax), key usage,\n"
"extended key usage, key identifiers and both fingerprints.  Extensions the\n"
"certificate does not have print no line.\n"
"\n"
"Options:\n"
"  --help               this text\n";

static const char help_kube[] =
"Usage: " PROG " kube-secret --name NAME --cert FILE --key FILE [--ca DIR|FILE]\n"
"                       [--namespace NS] [--type tls|opaque]\n"
"\n"
"Print a Kubernetes Secret manifest holding tls.crt, tls.key and ca.crt\n"
"(base64), ready for `kubectl apply -f -`.  The default type is\n"
"kubernetes.io/tls; --type opaque makes it Opaque with the same keys.\n"
"\n"
"Options:\n"
"  --name NAME          the Secret's name (lowercase, digits, '-', '.')\n"
"  --cert FILE          the certificate, stored as tls.crt\n"
"  --key FILE           the private key, stored as tls.key (as it is: an\n"
"                       encrypted key stays encrypted)\n"
"  --ca DIR|FILE        the CA certificate (DIR/ca.crt), stored as ca.crt\n"
"  --namespace NS       metadata.namespace\n"
"  --type T             tls (default) or opaque\n"
"  --help               this text\n"
"\n"
"Example:\n"
"  " PROG " kube-secret --name tlsfwd-server --ca pki \\\n"
"      --cert pki/agg/server.crt --key pki/agg/server.key | kubectl apply -f -\n";

static void fail(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
}

/* The value of the environment variable an option names, or NULL with the
 * reason in err. */
static const char *pass_from_env(const char *opt, const char *var, char *err, size_t errsz)
{
	const char *v = getenv(var);

	if (v == NULL)
		snprintf(err, errsz, "--%s %s: environment variable %s is not set", opt, var, var);
	else if (*v == '\0')
		snprintf(err, errsz, "--%s %s: environment variable %s is empty", opt, var, var);
	else
		return v;
	return NULL;
}

/* Read the CA directory: its certificate (checked to be a usable CA) and its
 * key (checked to match).  Returns 0, or -1 with the cause in err. */
static int load_ca(const char *dir, const char *pass, WC_RNG *rng, unsigned char **der,
    size_t *derlen, struct x509 *ca, struct key *ca_key, char *err, size_t errsz)
{
	char crt[PATH_MAX], keyf[PATH_MAX], tb[40];
	unsigned char spki[1024];
	const char *why;
	struct stat st;
	int n;

	if (stat(dir, &st) != 0) {
		snprintf(err, errsz, "--ca %s: %s (make one with `" PROG " ca --out %s`)",
		    dir, strerror(errno), dir);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errsz, "--ca %s: not a directory (expected the directory "
		    "holding ca.crt and ca.key)", dir);
		return -1;
	}
	if (file_join(dir, "ca.crt", crt, sizeof(crt)) != 0 ||
	    file_join(dir, "ca.key", keyf, sizeof(keyf)) != 0) {
		snprintf(err, errsz, "--ca %s: path too long", dir);
		return -1;
	}
	if (file_read_cert(crt, der, derlen, err, errsz) != 0)
		return -1;
	if (x509_parse(ca, *der, *derlen, &why) != 0) {
		snprintf(err, errsz, "%s: %s", crt, why);
		goto err0;
	}
	if (!ca->bc_present || !ca->is_ca) {
		snprintf(err, errsz, "%s: not a CA certificate (no basicConstraints "
		    "CA:TRUE)", crt);
		goto err0;
	}
	if (ca->ku_present && !(ca->ku & X509_KU_KEY_CERT_SIGN)) {
		snprintf(err, errsz, "%s: the CA's keyUsage does not allow keyCertSign", crt);
		goto err0;
	}
	if (ca->not_after < time(NULL)) {
		snprintf(err, errsz, "%s: the CA expired on %s", crt,
		    x509_time_text(ca->not_after, tb, sizeof(tb)));
		goto err0;
	}
	if (key_load(ca_key, keyf, pass, rng, err, errsz) != 0)
		goto err0;
	n = key_spki(ca_key, spki, sizeof(spki));
	if (n < 0 || (size_t)n != ca->spki.rawlen || memcmp(spki, ca->spki.raw, (size_t)n) != 0) {
		snprintf(err, errsz, "%s does not match %s (a key from another CA?)", keyf, crt);
		goto err1;
	}
	return 0;

err1:
	key_free(ca_key);
err0:
	free(*der);
	*der = NULL;
	return -1;
}

/* ca, server, client and self-signed: make a key and a certificate. */
static int run_issue(const struct command *cmd, struct opts *o)
{
	enum issue_kind kind;
	const char *base, *pass = NULL, *ca_pass = NULL, *cn, *why;
	char keyf[PATH_MAX], crtf[PATH_MAX], err[ERR_LEN], kt[32], tb[40], tb2[40];
	unsigned char *ca_der = NULL, *der = NULL;
	char *keypem = NULL, *crt_pem = NULL;
	size_t ca_derlen = 0, derlen = 0, key_pemlen = 0, crt_pemlen = 0;
	struct x509 ca, made;
	struct key key = { .type = KEY_NONE }, ca_key = { .type = KEY_NONE };
	struct gen_req req;
	WC_RNG rng;
	int force = (o->given & BIT(O_FORCE)) != 0, rng_ok = 0, key_written = 0;
	int r, ret = 1;

	if (strcmp(cmd->name, "ca") == 0)
		kind = ISSUE_CA;
	else if (strcmp(cmd->name, "server") == 0)
		kind = ISSUE_SERVER;
	else if (strcmp(cmd->name, "client") == 0)
		kind = ISSUE_CLIENT;
	else
		kind = ISSUE_SELF;

	memset(&req, 0, sizeof(req));
	req.is_ca = kind == ISSUE_CA;
	req.server_auth = kind == ISSUE_SERVER;
	req.client_auth = kind == ISSUE_CLIENT;
	if (kind == ISSUE_SELF) {
		const char *p = o->val[O_PURPOSE] != NULL ? o->val[O_PURPOSE] : "client";

		if (strcmp(p, "client") == 0) {
			req.client_auth = 1;
		} else if (strcmp(p, "server") == 0) {
			req.server_auth = 1;
		} else {
			fprintf(stderr, PROG ": --purpose '%s': expected client or server\n", p);
			return EXIT_USAGE;
		}
	}
	base = kind == ISSUE_CA ? "ca" : req.server_auth ? "server" : "client";
	cn = o->val[O_CN] != NULL ? o->val[O_CN] : "tlsfwd CA";
	if (req.server_auth && o->nsan == 0) {
		fprintf(stderr, PROG " %s: no --san; a server certificate needs at least "
		    "one name clients connect to, e.g. --san DNS:agg.example.com,IP:10.0.0.5\n",
		    cmd->name);
		return EXIT_USAGE;
	}
	req.cn = cn;
	req.days = o->days > 0 ? o->days : kind == ISSUE_CA ? DAYS_CA : DAYS_LEAF;
	req.san = o->san.p;
	req.sanlen = o->san.len;

	if (o->val[O_KEY_PASS_ENV] != NULL &&
	    (pass = pass_from_env("key-pass-env", o->val[O_KEY_PASS_ENV], err, sizeof(err))) == NULL)
		goto fail;
	ca_pass = pass;
	if (o->val[O_CA_KEY_PASS_ENV] != NULL && (ca_pass = pass_from_env("ca-key-pass-env",
	    o->val[O_CA_KEY_PASS_ENV], err, sizeof(err))) == NULL)
		goto fail;

	if (file_join(o->val[O_OUT], base, keyf, sizeof(keyf) - 4) != 0) {
		fail("--out: path too long");
		return 1;
	}
	strcpy(crtf, keyf);
	strcat(keyf, ".key");
	strcat(crtf, ".crt");
	/* Refuse before any work, naming the file; file_write() re-checks
	 * atomically with O_EXCL. */
	if (!force) {
		const char *exists = file_exists(keyf) ? keyf : file_exists(crtf) ? crtf : NULL;

		if (exists != NULL) {
			snprintf(err, sizeof(err), "%s: already exists; refusing to overwrite "
			    "it (use --force to replace %s and %s)", exists, keyf, crtf);
			goto fail;
		}
	}

	if ((r = wc_InitRng(&rng)) != 0) {
		snprintf(err, sizeof(err), "cannot start the random generator: %s",
		    wc_GetErrorString(r));
		goto fail;
	}
	rng_ok = 1;

	if (kind == ISSUE_SERVER || kind == ISSUE_CLIENT) {
		if (load_ca(o->val[O_CA], ca_pass, &rng, &ca_der, &ca_derlen, &ca, &ca_key,
		    err, sizeof(err)) != 0)
			goto fail;
		req.ca = &ca;
		req.ca_key = &ca_key;
	}
	if (file_mkdirs(o->val[O_OUT], err, sizeof(err)) != 0)
		goto fail;

	if (key_generate(&key, o->key_type, o->key_bits, &rng, err, sizeof(err)) != 0)
		goto fail;
	req.key = &key;
	if (gen_cert(&req, &rng, &der, &derlen, err, sizeof(err)) != 0)
		goto fail;
	if (x509_parse(&made, der, derlen, &why) != 0) {
		snprintf(err, sizeof(err), "internal error: the new certificate does not "
		    "parse: %s", why);
		goto fail;
	}
	if (key_pem(&key, pass, &rng, &keypem, &key_pemlen, err, sizeof(err)) != 0)
		goto fail;
	if (text_pem(der, derlen, &crt_pem, &crt_pemlen) != 0) {
		snprintf(err, sizeof(err), "cannot encode the certificate as PEM");
		goto fail;
	}
	if (file_write(keyf, keypem, key_pemlen, 0600, force, err, sizeof(err)) != 0)
		goto fail;
	key_written = 1;
	if (file_write(crtf, crt_pem, crt_pemlen, 0644, force, err, sizeof(err)) != 0)
		goto fail;

	printf("wrote %s (%s%s, mode 0600)\n", keyf, key_text(&key, kt, sizeof(kt)),
	    pass != NULL ? ", encrypted" : "");
	printf("wrote %s (CN=%s, valid until %s)\n", crtf, cn,
	    x509_time_text(made.not_after, tb, sizeof(tb)));
	show_fingerprints(stdout, &made);
	if (req.ca != NULL && made.not_after > ca.not_after)
		fprintf(stderr, PROG ": warning: %s is valid until %s but the CA only "
		    "until %s; it stops verifying then\n", crtf, tb,
		    x509_time_text(ca.not_after, tb2, sizeof(tb2)));
	ret = 0;
	goto out;

fail:
	fail(err);
	if (key_written && !force)
		unlink(keyf);	/* ours, just made: no half-written pair */
out:
	if (keypem != NULL)
		explicit_bzero(keypem, key_pemlen);
	free(keypem);
	free(crt_pem);
	free(der);
	free(ca_der);
	key_free(&key);
	key_free(&ca_key);
	if (rng_ok)
		wc_FreeRng(&rng);
	return ret;
}

static int load_parsed(const char *path, unsigned char **der, struct x509 *x)
{
	char err[ERR_LEN];
	size_t len;
	const char *why;

	if (file_read_cert(path, der, &len, err, sizeof(err)) != 0) {
		fail(err);
		return -1;
	}
	if (x509_parse(x, *der, len, &why) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", path, why);
		free(*der);
		*der = NULL;
		return -1;
	}
	return 0;
}

static int run_fingerprint(const struct command *cmd, struct opts *o)
{
	unsigned char *der = NULL, want[FP_LEN], have[FP_LEN];
	char t[FP_TEXT_MAX];
	struct x509 x;
	enum fp_kind kind;
	const char *why;
	int ret = 1;

	(void)cmd;
	if (o->val[O_CHECK] != NULL && fp_parse(o->val[O_CHECK], &kind, want, &why) != 0) {
		fprintf(stderr, PROG ": --check '%s': %s\n", o->val[O_CHECK], why);
		return EXIT_USAGE;
	}
	if (load_parsed(o->args[0], &der, &x) != 0)
		return 1;
	if (o->val[O_CHECK] == NULL) {
		ret = show_fingerprints(stdout, &x) == 0 ? 0 : 1;
	} else if (fp_compute(&x, kind, have) == 0) {
		if (memcmp(have, want, FP_LEN) == 0) {
			printf("match: %s\n", fp_text(kind, have, t));
			ret = 0;
		} else {
			fprintf(stderr, PROG ": %s: does not match %s (it is %s)\n", o->args[0],
			    o->val[O_CHECK], fp_text(kind, have, t));
		}
	}
	free(der);
	return ret;
}

static int run_show(const struct command *cmd, struct opts *o)
{
	unsigned char *der = NULL;
	struct x509 x;
	int ret;

	(void)cmd;
	if (load_parsed(o->args[0], &der, &x) != 0)
		return 1;
	ret = show_cert(stdout, &x, time(NULL)) == 0 ? 0 : 1;
	free(der);
	return ret;
}

static int run_kube_secret(const struct command *cmd, struct opts *o)
{
	const char *type = "kubernetes.io/tls", *why, *ca = o->val[O_CA];
	unsigned char *data[3] = { NULL, NULL, NULL };
	struct kube_item items[3];
	char err[ERR_LEN], cafile[PATH_MAX];
	struct stat st;
	int n = 0, i, ret = 1;

	(void)cmd;
	if ((why = kube_name_invalid(o->val[O_NAME])) != NULL) {
		fprintf(stderr, PROG ": --name '%s': not a valid Secret name: %s\n",
		    o->val[O_NAME], why);
		return EXIT_USAGE;
	}
	if (o->val[O_NAMESPACE] != NULL && (why = kube_name_invalid(o->val[O_NAMESPACE])) != NULL) {
		fprintf(stderr, PROG ": --namespace '%s': not a valid namespace: %s\n",
		    o->val[O_NAMESPACE], why);
		return EXIT_USAGE;
	}
	if (o->val[O_TYPE] != NULL) {
		if (strcmp(o->val[O_TYPE], "opaque") == 0 || strcmp(o->val[O_TYPE], "Opaque") == 0) {
			type = "Opaque";
		} else if (strcmp(o->val[O_TYPE], "tls") != 0 &&
		    strcmp(o->val[O_TYPE], "kubernetes.io/tls") != 0) {
			fprintf(stderr, PROG ": --type '%s': expected tls or opaque\n",
			    o->val[O_TYPE]);
			return EXIT_USAGE;
		}
	}
	if (ca != NULL && stat(ca, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (file_join(ca, "ca.crt", cafile, sizeof(cafile)) != 0) {
			fail("--ca: path too long");
			return 1;
		}
		ca = cafile;
	}

	items[n].key = "tls.crt";
	items[n++].data = NULL;
	items[n].key = "tls.key";
	items[n++].data = NULL;
	if (ca != NULL) {
		items[n].key = "ca.crt";
		items[n++].data = NULL;
	}
	for (i = 0; i < n; i++) {
		const char *path = i == 0 ? o->val[O_CERT] : i == 1 ? o->val[O_KEYFILE] : ca;

		if (file_read(path, &data[i], &items[i].len, err, sizeof(err)) != 0) {
			fail(err);
			goto out;
		}
		items[i].data = data[i];
		/* Catch swapped arguments before they reach a cluster. */
		if (i != 1 && strstr((char *)data[i], "-----BEGIN CERTIFICATE-----") == NULL) {
			fprintf(stderr, PROG ": %s: no PEM certificate in it (expected "
			    "\"-----BEGIN CERTIFICATE-----\")\n", path);
			goto out;
		}
		if (i == 1 && strstr((char *)data[i], "PRIVATE KEY-----") == NULL) {
			fprintf(stderr, PROG ": %s: no PEM private key in it (expected "
			    "\"-----BEGIN ... PRIVATE KEY-----\")\n", path);
			goto out;
		}
	}
	if (kube_secret(stdout, o->val[O_NAME], o->val[O_NAMESPACE], type, items, n) != 0) {
		fail("out of memory");
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < n; i++) {
		if (data[i] != NULL)
			explicit_bzero(data[i], items[i].len);
		free(data[i]);
	}
	return ret;
}

#define ISSUE_OPTS (BIT(O_OUT) | BIT(O_CN) | BIT(O_DAYS) | BIT(O_KEY) | \
	BIT(O_KEY_PASS_ENV) | BIT(O_FORCE) | BIT(O_HELP))

static const struct command commands[] = {
	{ "ca", run_issue, ISSUE_OPTS, BIT(O_OUT), 0, help_ca },
	{ "server", run_issue, ISSUE_OPTS | BIT(O_CA) | BIT(O_SAN) | BIT(O_CA_KEY_PASS_ENV),
	  BIT(O_CA) | BIT(O_CN) | BIT(O_SAN) | BIT(O_OUT), 0, help_server },
	{ "client", run_issue, ISSUE_OPTS | BIT(O_CA) | BIT(O_SAN) | BIT(O_CA_KEY_PASS_ENV),
	  BIT(O_CA) | BIT(O_CN) | BIT(O_OUT), 0, help_client },
	{ "self-signed", run_issue, ISSUE_OPTS | BIT(O_SAN) | BIT(O_PURPOSE),
	  BIT(O_CN) | BIT(O_OUT), 0, help_self },
	{ "fingerprint", run_fingerprint, BIT(O_CHECK) | BIT(O_HELP), 0, 1, help_fingerprint },
	{ "show", run_show, BIT(O_HELP), 0, 1, help_show },
	{ "kube-secret", run_kube_secret, BIT(O_NAME) | BIT(O_CA) | BIT(O_CERT) | BIT(O_KEYFILE) |
	  BIT(O_NAMESPACE) | BIT(O_TYPE) | BIT(O_HELP),
	  BIT(O_NAME) | BIT(O_CERT) | BIT(O_KEYFILE), 0, help_kube },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const char *opt_name(int id)
{
	const struct option *lo;

	if (id == O_KEYFILE)
		return "key";
	for (lo = long_opts; lo->name != NULL; lo++)
		if (lo->val == id)
			return lo->name;
	return "?";
}

/* Read the options of cmd from argv into o.  Returns 0, 1 after --help, or
 * EXIT_USAGE after printing why. */
static int parse_opts(const struct command *cmd, int argc, char **argv, struct opts *o)
{
	char err[ERR_LEN];
	unsigned missing;
	int c, i;

	memset(o, 0, sizeof(*o));
	o->key_type = KEY_EC;
	o->key_bits = 256;
	opterr = 0;
	optind = 1;
	for (;;) {
		c = getopt_long(argc, argv, ":", long_opts, NULL);
		if (c == -1)
			break;
		if (c == '?' || c == ':') {
			const char *arg = argv[optind - 1];

			if (c == ':')
				fprintf(stderr, PROG " %s: %s needs a value\n", cmd->name, arg);
			else
				fprintf(stderr, PROG " %s: unknown option %s (see " PROG " %s "
				    "--help)\n", cmd->name, arg, cmd->name);
			return EXIT_USAGE;
		}
		if (c == O_KEY && strcmp(cmd->name, "kube-secret") == 0)
			c = O_KEYFILE;
		if (!(cmd->allowed & BIT(c))) {
			fprintf(stderr, PROG " %s: --%s is not an option of this command "
			    "(see " PROG " %s --help)\n", cmd->name, opt_name(c), cmd->name);
			return EXIT_USAGE;
		}
		o->given |= BIT(c);
		o->val[c] = optarg;
		switch (c) {
		case O_HELP:
			fputs(cmd->help, stdout);
			return 1;
		case O_SAN:
			if (san_parse(optarg, &o->san, &o->nsan, err, sizeof(err)) != 0) {
				fail(err);
				return EXIT_USAGE;
			}
			break;
		case O_DAYS: {
			char *end;
			long d;

			errno = 0;
			d = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || errno != 0 || d < 1 || d > 36500) {
				fprintf(stderr, PROG ": --days '%s': expected a number of days "
				    "from 1 to 36500\n", optarg);
				return EXIT_USAGE;
			}
			o->days = (int)d;
			break;
		}
		case O_KEY: {
			const char *why;

			if (key_parse_spec(optarg, &o->key_type, &o->key_bits, &why) != 0) {
				fprintf(stderr, PROG ": --key '%s': %s\n", optarg, why);
				return EXIT_USAGE;
			}
			break;
		}
		case O_CN:
			if (strlen(optarg) == 0 || strlen(optarg) >= CTC_NAME_SIZE) {
				fprintf(stderr, PROG ": --cn '%s': must be 1 to %d bytes\n",
				    optarg, CTC_NAME_SIZE - 1);
				return EXIT_USAGE;
			}
			break;
		case O_OUT:
		case O_CA:
		case O_NAME:
		case O_CERT:
		case O_KEYFILE:
			if (*optarg == '\0') {
				fprintf(stderr, PROG ": --%s: empty value\n", opt_name(c));
				return EXIT_USAGE;
			}
			break;
		default:
			break;
		}
	}
	missing = cmd->required & ~o->given;
	if (missing != 0) {
		for (i = 0; i < O_COUNT; i++)
			if (missing & BIT(i))
				break;
		fprintf(stderr, PROG " %s: --%s is required (see " PROG " %s --help)\n",
		    cmd->name, opt_name(i), cmd->name);
		return EXIT_USAGE;
	}
	o->args = argv + optind;
	o->nargs = argc - optind;
	if (o->nargs != cmd->nargs) {
		if (cmd->nargs == 0)
			fprintf(stderr, PROG " %s: unexpected argument '%s' (see " PROG
			    " %s --help)\n", cmd->name, o->args[0], cmd->name);
		else
			fprintf(stderr, PROG " %s: expected one FILE (see " PROG " %s --help)\n",
			    cmd->name, cmd->name);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct opts o;
	size_t i;
	int r;

	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2) {
			for (i = 0; i < NCOMMANDS; i++) {
				if (strcmp(argv[2], commands[i].name) == 0) {
					fputs(commands[i].help, stdout);
					return 0;
				}
			}
		}
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf(PROG " (tlsfwd), wolfSSL %s\n", LIBWOLFSSL_VERSION_STRING);
		return 0;
	}
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			cmd = &commands[i];
	if (cmd == NULL) {
		fprintf(stderr, PROG ": unknown command '%s' (commands: ca, server, client, "
		    "self-signed, fingerprint, show, kube-secret)\n", argv[1]);
		return EXIT_USAGE;
	}

	r = parse_opts(cmd, argc - 1, argv + 1, &o);
	if (r != 0) {
		der_buf_free(&o.san);
		return r == 1 ? 0 : r;
	}
	if (wolfCrypt_Init() != 0) {
		fail("cannot initialise wolfCrypt");
		der_buf_free(&o.san);
		return 1;
	}
	r = cmd->run(cmd, &o);
	der_buf_free(&o.san);
	wolfCrypt_Cleanup();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write to standard output: %s\n", strerror(errno));
		return 1;
	}
	return r;
}
