/* logpipe-retention: archives, verifies and prunes old segments and
 * indices by policy.
 *
 *   --once           one run, then exit (cron, Kubernetes CronJob); exit 1 when
 *                    something failed or was kept for inspection
 *   --dry-run        print what a run would do, change nothing (implies --once)
 *   --output json    the report as JSON instead of tables
 *   --now TIME       with --dry-run: plan as if it were TIME (RFC 3339)
 * Without --once: a daemon that runs every retention.interval, serves
 * /metrics, /healthz, /readyz, reloads its policies on SIGHUP and stops on
 * SIGTERM/SIGINT (between two actions). */
#define LP_LOG_MODULE "main"
#include "lp_buf.h"
#include "lp_cli.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_signal.h"
#include "lp_time.h"
#include "retention.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

struct sigstate {
    int stop;
    int reload;
};

static int take_signals(void *ud)
{
    struct sigstate *s = ud;
    for (int sig; (sig = lp_signals_wait(0)) != 0;) {
        if (sig == SIGTERM || sig == SIGINT)
            s->stop = 1;
        else if (sig == SIGHUP)
            s->reload = 1;
    }
    return s->stop;
}

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
    int once = 0, dry_run = 0;
    const char *output = NULL, *now_s = NULL;
    const struct lp_cli_flag flags[] = {
        {"once", &once, NULL, "one run, then exit (cron / CronJob)"},
        {"dry-run", &dry_run, NULL, "print what a run would do and change nothing"},
        {"output", NULL, &output, "report format: table (default) or json"},
        {"now", NULL, &now_s, "with --dry-run: plan as of this RFC 3339 time"},
        {NULL, NULL, NULL, NULL},
    };
    struct lp_cli cli = {.section = "retention"};
    struct lp_config *cfg = NULL;
    int rc = lp_cli_parse(&cli, argc, argv, flags);
    int64_t now = 0;
    if (rc < 0 && output && strcmp(output, "json") != 0 && strcmp(output, "table") != 0) {
        fprintf(stderr, "logpipe-retention: --output takes table or json\n");
        rc = 2;
    }
    if (rc < 0 && now_s && (!dry_run || lp_time_parse_rfc3339(now_s, strlen(now_s), &now) != 0)) {
        fprintf(stderr, "logpipe-retention: --now takes an RFC 3339 time and needs --dry-run\n");
        rc = 2;
    }
    if (rc < 0)
        rc = lp_cli_load(&cli, &cfg);
    if (rc >= 0) {
        lp_cli_release(&cli);
        return rc;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct lp_metrics *metrics = lp_metrics_new();
    struct lp_http *http = NULL;
    struct sigstate sigs = {0};
    struct lp_rt_opts o = {
        .dry_run = dry_run,
        .json = output && strcmp(output, "json") == 0,
        .now_ns = now,
        .report = stdout,
        .should_stop = take_signals,
        .ud = &sigs,
    };
    char err[512];
    struct lp_retention *r = lp_retention_new(cfg, metrics, err, sizeof(err));
    if (!r) {
        lp_log(LP_LOG_ERROR, "cannot start", "error=\"%s\"", err);
        rc = 1;
        goto out;
    }
    if (once || dry_run) {
        rc = lp_retention_run(r, &o);
        goto out;
    }
    /* daemon */
    if (lp_cli_start_metrics(&cli, cfg, metrics, &http)) {
        rc = 1;
        goto out;
    }
    if (http)
        lp_ready_set(lp_http_ready_check(http, "config"), 1);
    lp_log(LP_LOG_INFO, "started", "daemon=logpipe-retention interval_ms=%lld",
           (long long)cfg->retention.interval_ms);
    o.report = NULL; /* the log and the audit log tell */
    int64_t next = lp_time_mono_ns();
    while (!sigs.stop) {
        if (sigs.reload) {
            sigs.reload = 0;
            struct lp_buf errs = LP_BUF_INIT;
            struct lp_config *n = lp_config_load(cli.files, cli.n_files, NULL, &errs);
            struct lp_retention *nr = n ? lp_retention_new(n, metrics, err, sizeof(err)) : NULL;
            if (!nr) {
                lp_log(LP_LOG_ERROR, "reload failed; keeping the running policies", "%s", "");
                for (char *sv = NULL, *line = strtok_r(errs.data, "\n", &sv); line;
                     line = strtok_r(NULL, "\n", &sv))
                    lp_log(LP_LOG_ERROR, line, "%s", "");
                lp_config_free(n);
            } else {
                lp_retention_free(r);
                lp_config_free(cfg);
                r = nr;
                cfg = n;
                lp_cli_reload_log(&cli, metrics);
                lp_log(LP_LOG_INFO, "configuration reloaded (policies apply from the next run)",
                       "%s", "");
            }
            lp_buf_release(&errs);
        }
        int64_t t = lp_time_mono_ns();
        if (t >= next) {
            lp_retention_run(r, &o);
            next = lp_time_mono_ns() + cfg->retention.interval_ms * LP_NS_PER_MS;
            continue;
        }
        int64_t wait = (next - t) / LP_NS_PER_MS + 1;
        int sig = lp_signals_wait(wait > 1000 ? 1000 : wait);
        if (sig == SIGTERM || sig == SIGINT)
            sigs.stop = 1;
        else if (sig == SIGHUP)
            sigs.reload = 1;
    }
    lp_log(LP_LOG_INFO, "stopped", "daemon=logpipe-retention");
    rc = 0;
out:
    lp_http_stop(http);
    lp_retention_free(r);
    lp_metrics_free(metrics);
    lp_config_free(cfg);
    lp_cli_release(&cli);
    curl_global_cleanup();
    return rc;
}
