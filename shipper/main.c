/* logpipe-shipper: tails container logs and delivers them to Kafka.
 * The loop runs on the main thread; signals are taken between steps. */
#define LP_LOG_MODULE "main"
#include "lp_cli.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_signal.h"
#include "lp_time.h"
#include "shipper.h"

#include <signal.h>
#include <sys/resource.h>

/* A node can have thousands of container log files open at once: the soft
 * limit on open files (often 1024) goes up to the hard one. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        lp_log(LP_LOG_INFO, "open file limit raised", "from=%llu to=%llu", (unsigned long long)was,
               (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    lp_signals_setup();
    struct lp_cli cli = {.section = "shipper"};
    struct lp_config *cfg = NULL;
    int rc = lp_cli_parse(&cli, argc, argv, NULL);
    if (rc < 0)
        rc = lp_cli_load(&cli, &cfg);
    if (rc >= 0) {
        lp_cli_release(&cli);
        return rc;
    }
    raise_fd_limit();
    struct lp_metrics *metrics = lp_metrics_new();
    struct lp_http *http = NULL;
    char err[1024];
    if (lp_cli_start_metrics(&cli, cfg, metrics, &http)) {
        rc = 1;
        goto out;
    }
    struct lp_ready *kafka_ready = http ? lp_http_ready_check(http, "kafka") : NULL;
    struct lp_shipper *s = lp_shipper_new(cfg, metrics, kafka_ready, err, sizeof(err));
    if (!s) {
        lp_log(LP_LOG_ERROR, "cannot start", "error=\"%s\"", err);
        rc = 1;
        goto out;
    }
    for (;;) {
        lp_shipper_step(s, 100);
        int sig = lp_signals_wait(0);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            lp_cli_reload_log(&cli, metrics);
    }
    lp_log(LP_LOG_INFO, "stopping: flushing batches and saving checkpoints", "%s", "");
    rc = lp_shipper_shutdown(s, 30000) == 0 ? 0 : 1;
    lp_shipper_free(s);
out:
    lp_http_stop(http);
    lp_metrics_free(metrics);
    lp_config_free(cfg);
    lp_cli_release(&cli);
    return rc;
}
