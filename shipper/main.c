/* logpipe-shipper: tails container logs and delivers them to Kafka.
 * For now: loads and validates its configuration, serves /metrics, /healthz
 * and /readyz, reloads on SIGHUP and stops cleanly on SIGTERM/SIGINT. */
#include "lp_cli.h"
#include "lp_config.h"
#include "lp_signal.h"

int main(int argc, char **argv)
{
    lp_signals_setup();
    struct lp_cli cli = {.section = "shipper"};
    int rc = lp_cli_parse(&cli, argc, argv, NULL);
    if (rc >= 0)
        goto out;
    struct lp_config *cfg;
    rc = lp_cli_load(&cli, &cfg);
    if (rc >= 0)
        goto out;
    rc = lp_cli_idle_loop(&cli, cfg);
out:
    lp_cli_release(&cli);
    return rc;
}
