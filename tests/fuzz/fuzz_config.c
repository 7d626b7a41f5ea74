/* libFuzzer: the config loader (YAML, substitution, field tables) on
 * arbitrary text; errors must be well-formed FILE:LINE:COL lines. */
#include "lp_buf.h"
#include "lp_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *env(const char *name)
{
    return strcmp(name, "SET") == 0 ? "value" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    const char *names[] = {"fuzz.yaml"};
    const char *texts[] = {text};
    struct lp_buf errs = LP_BUF_INIT;
    struct lp_config *c = lp_config_load_texts(names, texts, 1, env, &errs);
    if (c) {
        struct lp_buf dump = LP_BUF_INIT;
        lp_config_dump(c, NULL, 1, &dump);
        lp_buf_release(&dump);
        lp_config_free(c);
    } else if (!errs.data || strncmp(errs.data, "fuzz.yaml:", 10) != 0) {
        __builtin_trap(); /* a failure always says where */
    }
    lp_buf_release(&errs);
    free(text);
    return 0;
}
