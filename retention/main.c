/* logpipe-retention: archives and prunes old segments and indices.
 * For now: loads and validates its configuration, serves /metrics, /healthz
 * and /readyz, reloads on SIGHUP and stops cleanly on SIGTERM/SIGINT. */
#include "lp_cli.h"

int main(int argc, char **argv)
{
    return lp_cli_idle_main("retention", argc, argv);
}
