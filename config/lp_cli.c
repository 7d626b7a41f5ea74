/* Shared daemon command line and start-up: flags, config loading,
 * --check-config and --config-reference, log set-up, the log-level part of a
 * SIGHUP reload (lp_cli_reload_log) and the metrics endpoint. Signals
 * themselves are core/lp_signal's; each daemon runs its own loop. */
#define LP_LOG_MODULE "main"
#include "lp_cli.h"
#include "lp_error.h"
#include "lp_node.h"

#include "lp_alloc.h"
#include "lp_buf.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_log.h"
#include "lp_metrics.h"
#include "lp_signal.h"
#include "lp_time.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <signal.h>
#include <stdio.h>
#include <xxhash.h>
#include <yaml.h>
#include <zlib.h>
#include <zstd.h>
#include <stdlib.h>
#include <string.h>

static void usage(const struct lp_cli *cli, const struct lp_cli_flag *extra, FILE *to)
{
    fprintf(to,
            "usage: %s [-c FILE]... [--check-config] [options]\n"
            "  -c, --config FILE     configuration (repeatable; later files override earlier)\n"
            "      --check-config    validate, print the effective config (secrets redacted)\n"
            "                        and exit: 0 valid, 2 invalid\n"
            "      --config-reference  print the Markdown reference of every config key\n"
            "  -h, --help            this help\n"
            "      --version         print the version\n",
            cli->prog);
    for (const struct lp_cli_flag *f = extra; f && f->name; f++)
        fprintf(to, "      --%s%s  %s\n", f->name, f->value ? " VALUE" : "", f->help);
    fprintf(to, "Without -c the embedded defaults are used (everything on loopback).\n");
}

#ifndef LP_COMMIT
#define LP_COMMIT "unknown"
#endif

const char *(*lp_cli_version_extra)(void);

/* Library versions are the ones loaded at run time (what the binary really
 * uses), except where a library only states the version it was built with. */
void lp_cli_print_version(const char *prog, FILE *out)
{
    char pcre[32] = "";
    pcre2_config(PCRE2_CONFIG_VERSION, pcre);
    unsigned xx = XXH_versionNumber();
    fprintf(out, "%s %s (commit %s)\n", prog, LP_VERSION, LP_COMMIT);
    fprintf(out,
            "librdkafka %s, jansson %s, zstd %s, zlib %s, PCRE2 %s, libyaml %s, "
            "libmicrohttpd %s, xxHash %u.%u.%u%s%s\n",
            rd_kafka_version_str(), jansson_version_str(), ZSTD_versionString(), zlibVersion(),
            pcre, yaml_get_version_string(), MHD_get_version(), xx / 10000, xx / 100 % 100,
            xx % 100, lp_cli_version_extra ? ", " : "",
            lp_cli_version_extra ? lp_cli_version_extra() : "");
}

int lp_cli_parse(struct lp_cli *cli, int argc, char **argv, const struct lp_cli_flag *extra)
{
    const char *slash = strrchr(argv[0], '/');
    cli->prog = slash ? slash + 1 : argv[0];
    cli->files = lp_xcalloc((size_t)argc, sizeof(char *));
    cli->n_files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: %s needs a file name\n", cli->prog, a);
                return 2;
            }
            cli->files[cli->n_files++] = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            cli->files[cli->n_files++] = a + 9;
        } else if (!strcmp(a, "--check-config")) {
            cli->check_config = 1;
        } else if (!strcmp(a, "--config-reference")) {
            cli->config_reference = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(cli, extra, stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            lp_cli_print_version(cli->prog, stdout);
            return 0;
        } else {
            const struct lp_cli_flag *f = NULL;
            const char *eq = NULL;
            if (!strncmp(a, "--", 2)) {
                for (f = extra; f && f->name; f++) {
                    size_t nl = strlen(f->name);
                    if (!strncmp(a + 2, f->name, nl) && (a[2 + nl] == '\0' || a[2 + nl] == '=')) {
                        eq = a[2 + nl] == '=' ? a + 3 + nl : NULL;
                        break;
                    }
                }
            }
            if (!f || !f->name) {
                fprintf(stderr, "%s: unknown option '%s'\n", cli->prog, a);
                usage(cli, extra, stderr);
                return 2;
            }
            if (f->value) {
                if (!eq && i + 1 >= argc) {
                    fprintf(stderr, "%s: --%s needs a value\n", cli->prog, f->name);
                    return 2;
                }
                *f->value = eq ? eq : argv[++i];
            } else if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", cli->prog, f->name);
                return 2;
            } else {
                *f->flag = 1;
            }
        }
    }
    return LP_CLI_CONTINUE;
}

void lp_cli_release(struct lp_cli *cli)
{
    free(cli->files);
    cli->files = NULL;
}

static void apply_log(const struct lp_config *cfg)
{
    lp_log_setup((enum lp_log_level)lp_log_level_parse(cfg->log.level),
                 strcmp(cfg->log.format, "json") == 0 ? LP_LOG_JSON : LP_LOG_LOGFMT);
}

int lp_cli_load(struct lp_cli *cli, struct lp_config **out)
{
    *out = NULL;
    if (cli->config_reference) {
        struct lp_buf b = LP_BUF_INIT;
        lp_config_reference(&b);
        fwrite(b.data, 1, b.len, stdout);
        lp_buf_release(&b);
        return 0;
    }
    /* each daemon resolves only its own sections' secrets and variables
     * (retention reads the aggregator's outputs: its policies name them) */
    static const char *const shipper[] = {"kafka", "shipper", "metrics", "log", NULL};
    static const char *const aggregator[] = {"kafka", "aggregator", "metrics", "log", NULL};
    static const char *const retention[] = {"kafka",   "aggregator", "retention",
                                            "metrics", "log",        NULL};
    lp_node_set_used_sections(strcmp(cli->section, "shipper") == 0      ? shipper
                              : strcmp(cli->section, "aggregator") == 0 ? aggregator
                              : strcmp(cli->section, "retention") == 0  ? retention
                                                                        : NULL);
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *cfg = lp_config_load(cli->files, cli->n_files, NULL, &errs);
    if (!cfg) {
        fputs(errs.data, stderr);
        fprintf(stderr, "%s: invalid configuration, not starting\n", cli->prog);
        lp_buf_release(&errs);
        return 2;
    }
    lp_buf_release(&errs);
    if (cli->check_config) {
        struct lp_buf b = LP_BUF_INIT;
        lp_buf_appendf(&b, "# effective configuration of %s (secrets redacted)\n", cli->prog);
        lp_config_dump(cfg, NULL, 1, &b);
        fwrite(b.data, 1, b.len, stdout);
        lp_buf_reset(&b);
        if (lp_config_warnings(cfg, &b))
            fputs(b.data, stderr);
        lp_buf_release(&b);
        fprintf(stderr, "%s: configuration OK\n", cli->prog);
        lp_config_free(cfg);
        return 0;
    }
    apply_log(cfg);
    *out = cfg;
    return LP_CLI_CONTINUE;
}

int lp_cli_reload_log(struct lp_cli *cli, struct lp_metrics *metrics)
{
    char name[128];
    snprintf(name, sizeof(name), "logpipe_%s_config_reloads_total", cli->section);
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *n = lp_config_load(cli->files, cli->n_files, NULL, &errs);
    int rc = 0;
    if (!n) {
        lp_counter_inc(
            lp_metrics_counter(metrics, name, "SIGHUP configuration reloads.", "result=\"error\""));
        lp_log(LP_LOG_ERROR, "reload failed; keeping the running configuration", "%s", "");
        for (char *sv = NULL, *line = strtok_r(errs.data, "\n", &sv); line;
             line = strtok_r(NULL, "\n", &sv))
            lp_log(LP_LOG_ERROR, line, "%s", "");
        rc = LP_ECONFIG;
    } else {
        lp_counter_inc(
            lp_metrics_counter(metrics, name, "SIGHUP configuration reloads.", "result=\"ok\""));
        apply_log(n);
        lp_config_free(n);
        lp_log(LP_LOG_INFO,
               "configuration reloaded: log settings applied; other changes need a restart", "%s",
               "");
    }
    lp_buf_release(&errs);
    return rc;
}

int lp_cli_start_metrics(const struct lp_cli *cli, const struct lp_config *cfg,
                         struct lp_metrics *metrics, struct lp_http **http)
{
    char name[128];
    snprintf(name, sizeof(name), "logpipe_%s_start_time_seconds", cli->section);
    lp_gauge_set(lp_metrics_gauge(metrics, name, "Start time (unix seconds).", NULL),
                 lp_time_real_ns() / LP_NS_PER_SEC);
    *http = NULL;
    if (!cfg->metrics.enabled)
        return 0;
    char err[512];
    const char *addr = cfg->metrics.listen;
    if (!addr || !*addr) /* one file for every daemon: each its own default port */
        addr = strcmp(cli->section, "shipper") == 0     ? "127.0.0.1:9464"
               : strcmp(cli->section, "retention") == 0 ? "127.0.0.1:9465"
                                                        : "127.0.0.1:9466";
    *http = lp_http_start(addr, metrics, err, sizeof(err));
    if (!*http) {
        lp_log(LP_LOG_ERROR, "cannot start the metrics endpoint", "error=\"%s\"", err);
        return LP_EINVAL;
    }
    return 0;
}
