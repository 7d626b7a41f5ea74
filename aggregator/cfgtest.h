/* logpipe-aggregator --test FILE: unit tests of a configuration's pipeline
 * (docs/aggregator.md, "Testing a configuration"). Each case gives log
 * lines and what the shipper knows of their file, runs them through the
 * routes, parsers, cost controls, enrichment and redaction of the loaded
 * configuration (no Kafka, no output is touched) and compares the route,
 * the verdict and the event's fields with what the case expects. Single
 * thread; for the command line. */
#ifndef AGG_CFGTEST_H
#define AGG_CFGTEST_H

struct lp_config;

/* Runs the cases of path against cfg, printing one line per case and a
 * readable difference for each failed expectation to stdout (errors in
 * the test file to stderr as FILE:LINE:COL). Returns the exit status: 0
 * every case passed, 1 some failed, 2 the test file is wrong. */
int agg_cfgtest_run(const struct lp_config *cfg, const char *path);

#endif
