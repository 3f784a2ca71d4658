/* tlsfwd-server: terminate mutual TLS, authorise the peer and hand its bytes
 * to an unmodified Fluentd in_forward. */
#include "daemon.h"
#include "server.h"

int main(int argc, char **argv)
{
	return daemon_main(&server_role, &metrics_http, argc, argv);
}
