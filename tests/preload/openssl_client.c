/* Probe: a program linked against OpenSSL making its own TLS connection.
 *   openssl_client A.B.C.D:PORT CA CERT KEY MESSAGE [A.B.C.D:PORT MESSAGE2]
 * TLS (verifying the server against CA, presenting CERT/KEY), send MESSAGE,
 * read back as many bytes (an echo server) and print "echo=REPLY".  With the
 * second pair, first send MESSAGE2 in plaintext to that address (one the shim
 * intercepts: in inline mode its wolfSSL core then runs beside OpenSSL),
 * and after the TLS exchange read its reply to EOF: "plain reply=REPLY". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "probe.h"

/* plain_send(spec, msg): connect to A.B.C.D:PORT and send msg; the fd or -1. */
static int plain_send(const char *spec, const char *msg)
{
	struct sockaddr_in sin;
	int fd;

	if (probe_addr4(spec, &sin) != 0 || (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    send(fd, msg, strlen(msg), MSG_NOSIGNAL) != (ssize_t)strlen(msg)) {
		printf("plain: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sin;
	char host[INET_ADDRSTRLEN], reply[4096];
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int fd = -1, plain = -1, rc = 1, n;
	size_t want, got = 0;

	if ((argc != 6 && argc != 8) || probe_addr4(argv[1], &sin) != 0) {
		fprintf(stderr, "usage: openssl_client A.B.C.D:PORT CA CERT KEY MESSAGE "
		    "[A.B.C.D:PORT MESSAGE2]\n");
		return 2;
	}
	inet_ntop(AF_INET, &sin.sin_addr, host, sizeof(host));
	if (argc == 8 && (plain = plain_send(argv[6], argv[7])) < 0)
		return 1;
	want = strlen(argv[5]);
	if (want >= sizeof(reply))
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stdout);
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		printf("connect: %s\n", strerror(errno));
		goto out;
	}
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1 || SSL_connect(ssl) != 1) {
		printf("handshake failed\n");
		ERR_print_errors_fp(stdout);
		goto out;
	}
	printf("handshake %s\n", SSL_get_version(ssl));
	if (SSL_write(ssl, argv[5], (int)want) != (int)want) {
		printf("write failed\n");
		goto out;
	}
	while (got < want && (n = SSL_read(ssl, reply + got, (int)(want - got))) > 0)
		got += (size_t)n;
	reply[got] = '\0';
	printf("echo=%s\n", reply);
	rc = got == want ? 0 : 1;
	SSL_shutdown(ssl);
	if (plain >= 0) {
		got = probe_read_all(plain, reply, sizeof(reply));
		printf("plain reply=%s\n", reply);
		if (got == 0)
			rc = 1;
	}
out:
	if (plain >= 0)
		close(plain);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	return rc;
}
