/* logpipe-shipper: tails container logs and delivers them to Kafka.
 * For now: loads and validates its configuration, serves /metrics, /healthz
 * and /readyz, reloads on SIGHUP and stops cleanly on SIGTERM/SIGINT. */
#include "lp_cli.h"

int main(int argc, char **argv)
{
    return lp_cli_idle_main("shipper", argc, argv);
}
