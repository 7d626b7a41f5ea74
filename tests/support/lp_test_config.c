/* lp_test_config (lp_test.h): the load-from-text every config-driven test
 * needs, in its own object so that tests without lp_config link the kit. */
#include "lp_test.h"

#include "lp_buf.h"
#include "lp_config.h"

#include <stdio.h>

struct lp_config *lp_test_config(const char *yaml)
{
    struct lp_buf errs = LP_BUF_INIT;
    const char *names[] = {"test.yaml"};
    const char *texts[] = {yaml};
    struct lp_config *c = lp_config_load_texts(names, texts, 1, NULL, &errs);
    if (!c)
        fprintf(stderr, "config errors:\n%s", errs.data);
    lp_buf_release(&errs);
    return c;
}

char *lp_test_config_errors(const char *yaml)
{
    struct lp_buf errs = LP_BUF_INIT;
    const char *names[] = {"test.yaml"};
    const char *texts[] = {yaml};
    lp_config_free(lp_config_load_texts(names, texts, 1, NULL, &errs));
    return lp_buf_detach(&errs, NULL);
}
