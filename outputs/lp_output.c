/* The output registry: one line per output type (lp_output.h). */
#include "lp_output.h"

#include <string.h>

const struct lp_output_ops *const lp_output_registry[] = {
    &lp_output_elasticsearch, &lp_output_file, &lp_output_s3, &lp_output_stdout, NULL,
};

const struct lp_output_ops *lp_output_find(const char *type)
{
    for (size_t i = 0; type && lp_output_registry[i]; i++)
        if (strcmp(lp_output_registry[i]->name, type) == 0)
            return lp_output_registry[i];
    return NULL;
}
