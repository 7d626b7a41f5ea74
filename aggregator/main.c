/* logpipe-aggregator: consumes batches from Kafka, parses, enriches and
 * routes them to Elasticsearch/OpenSearch, files and stdout, storing offsets
 * only for what every output made durable. The consumer runs on the main
 * thread; signals are taken between steps. */
#define LP_LOG_MODULE "main"
#include "aggregator.h"
#include "cfgtest.h"
#include "lp_cli.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_signal.h"
#include "lp_time.h"

#include <curl/curl.h>
#include <stdio.h>
#include <signal.h>

static const char *curl_version_str(void)
{
    static char v[48];
    snprintf(v, sizeof(v), "libcurl %s", curl_version_info(CURLVERSION_NOW)->version);
    return v;
}

int main(int argc, char **argv)
{
    lp_cli_version_extra = curl_version_str;
    lp_signals_setup();
    const char *test_file = NULL;
    const struct lp_cli_flag flags[] = {
        {"test", NULL, &test_file,
         "run the test cases of FILE through the configuration's pipeline (routes, parsers, "
         "cost controls, redaction) and exit: 0 all passed, 1 some failed, 2 a bad file"},
        {NULL, NULL, NULL, NULL},
    };
    struct lp_cli cli = {.section = "aggregator"};
    struct lp_config *cfg = NULL;
    int rc = lp_cli_parse(&cli, argc, argv, flags);
    if (rc < 0)
        rc = lp_cli_load(&cli, &cfg);
    if (rc < 0 && test_file) {
        rc = agg_cfgtest_run(cfg, test_file);
        lp_config_free(cfg);
    }
    if (rc >= 0) {
        lp_cli_release(&cli);
        return rc;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct lp_metrics *metrics = lp_metrics_new();
    struct lp_http *http = NULL;
    struct lp_aggregator *a = NULL;
    char err[1024];
    if (lp_cli_start_metrics(&cli, cfg, metrics, &http)) {
        rc = 1;
        goto out;
    }
    a = lp_aggregator_new(cfg, metrics, http, err, sizeof(err));
    if (!a) {
        lp_log(LP_LOG_ERROR, "cannot start", "error=\"%s\"", err);
        rc = 1;
        goto out;
    }
    for (;;) {
        lp_aggregator_step(a, 100);
        int sig = lp_signals_wait(0);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP)
            lp_cli_reload_log(&cli, metrics);
    }
    lp_log(LP_LOG_INFO, "stopping: draining outputs and committing offsets", "%s", "");
    rc = lp_aggregator_shutdown(a) == 0 ? 0 : 1;
    lp_log(LP_LOG_INFO, "aggregator stopped", "status=%d", rc);
out:
    lp_aggregator_free(a);
    lp_http_stop(http);
    lp_metrics_free(metrics);
    lp_config_free(cfg);
    lp_cli_release(&cli);
    curl_global_cleanup();
    return rc;
}
