/* tlsfwd-client: accept plaintext forward-protocol connections on loopback and
 * carry each over mutual TLS to a tlsfwd-server (or a TLS forward input). */
#include "client.h"

int main(int argc, char **argv)
{
	return daemon_main(&client_role, &metrics_http, argc, argv);
}
