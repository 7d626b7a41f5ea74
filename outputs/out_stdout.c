/* The stdout output: each event as one line of JSON on standard output
 * (debugging, or a container runtime that collects it). Lines of different
 * workers never interleave: one lock around each write. */
#include "lp_alloc.h"
#include "lp_config.h"
#include "lp_http.h"
#include "lp_output.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct out_stdout {
    struct lp_output base;
    pthread_mutex_t mu; /* any worker, around one line */
};

static struct lp_output *create(const struct lp_config_output *cfg, const struct lp_output_env *env,
                                char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct out_stdout *s = lp_xcalloc(1, sizeof(*s));
    s->base = (struct lp_output){&lp_output_stdout, cfg, cfg->name};
    pthread_mutex_init(&s->mu, NULL);
    lp_ready_set(env->ready, 1);
    return &s->base;
}

static int submit(struct lp_output *o, void *lane, struct lp_output_doc *d, int replay)
{
    (void)lane;
    (void)replay; /* never called for a replay: not LP_OUTPUT_SYNCED */
    struct out_stdout *s = (struct out_stdout *)o;
    pthread_mutex_lock(&s->mu);
    fwrite(d->text, 1, d->len, stdout);
    fputc('\n', stdout);
    pthread_mutex_unlock(&s->mu);
    return LP_OUTPUT_OK;
}

static void close_out(struct lp_output *o, int64_t deadline_ns)
{
    (void)deadline_ns;
    if (!o)
        return;
    struct out_stdout *s = (struct out_stdout *)o;
    fflush(stdout);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

const struct lp_output_ops lp_output_stdout = {
    .name = "stdout",
    .create = create,
    .submit = submit,
    .close = close_out,
};
