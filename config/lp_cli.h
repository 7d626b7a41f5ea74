/* Command line shared by the daemons: -c FILE (repeatable), --check-config,
 * --config-reference, --help, --version, plus daemon-specific flags. */
#ifndef LP_CLI_H
#define LP_CLI_H

#include <stddef.h>

#include <stdio.h>

struct lp_config;

/* --version: the program, logpipe's version and commit, and the versions of
 * the libraries it runs with. A daemon linking more libraries (libcurl) sets
 * lp_cli_version_extra to name theirs ("libcurl 7.88.1"). */
void lp_cli_print_version(const char *prog, FILE *out);
extern const char *(*lp_cli_version_extra)(void);

/* A daemon-specific flag: "--once" style (sets *flag = 1) or, with
 * value != NULL, "--output json" / "--output=json" style. */
struct lp_cli_flag {
    const char *name;
    int *flag;
    const char **value;
    const char *help;
};

struct lp_cli {
    const char *prog;
    const char *section; /* the daemon's own config section */
    const char **files;  /* borrowed from argv */
    size_t n_files;
    int check_config;
    int config_reference;
};

/* What lp_cli_parse and lp_cli_load return when the daemon should go on
 * (anything else is its exit status). */
#define LP_CLI_CONTINUE (-1)

/* Parses argv. Returns LP_CLI_CONTINUE to continue, or an exit status (0 after --help,
 * --version; 2 on a usage error, printed). extra may be NULL; terminated
 * by a NULL name. files is heap-allocated: lp_cli_release. */
int lp_cli_parse(struct lp_cli *cli, int argc, char **argv, const struct lp_cli_flag *extra);
void lp_cli_release(struct lp_cli *cli);

/* Loads and validates the configuration named by the command line, applies
 * log settings, and handles --check-config / --config-reference. Returns
 * LP_CLI_CONTINUE with *out set, or an exit status: 0 (check passed, or
 * reference printed) or 2 (errors printed as FILE:LINE:COL: message). */
int lp_cli_load(struct lp_cli *cli, struct lp_config **out);

/* SIGHUP in a running daemon: loads the configuration files again; when
 * valid, applies the log settings (level, format) and counts
 * logpipe_<section>_config_reloads_total{result="ok"}; otherwise logs every
 * FILE:LINE:COL error and counts result="error". Other settings need a
 * restart. 0 or LP_ECONFIG. */
struct lp_metrics;
int lp_cli_reload_log(struct lp_cli *cli, struct lp_metrics *metrics);

struct lp_http;
/* Sets logpipe_<section>_start_time_seconds and, when metrics.enabled,
 * starts the /metrics /healthz /readyz endpoint (*http; NULL when
 * disabled). 0, or LP_EINVAL after logging why it could not start. */
int lp_cli_start_metrics(const struct lp_cli *cli, const struct lp_config *cfg,
                         struct lp_metrics *metrics, struct lp_http **http);

#endif
