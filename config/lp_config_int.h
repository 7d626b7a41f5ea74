/* What the configuration engine's files share (lp_config.c: units, values,
 * loading; lp_config_check.c: validation; lp_kubeconfig.c; lp_config_doc.c:
 * dump and reference). Not for other modules. */
#ifndef LP_CONFIG_INT_H
#define LP_CONFIG_INT_H

#include "lp_buf.h"
#include "lp_config.h"
#include "lp_fields.h"
#include "lp_node.h"

#include <stddef.h>
#include <stdint.h>

#define FIELD(base, f, type) ((type *)((char *)(base) + (f)->offset))
#define CFIELD(base, f, type) ((const type *)((const char *)(base) + (f)->offset))

/* One load: where its errors go. */
struct ctx {
    struct lp_buf *errs;
};

/* The LP_F_OUT_* bit of each output kind. */
extern const unsigned lp_cfg_output_kind_flag[LP_OUTPUT_KINDS];

/* Values as the configuration writes them: "5s", "64MiB", "10%", and a
 * bound of f in f's unit. */
void lp_cfg_format_duration(int64_t ms, char *out, size_t n);
void lp_cfg_format_size(int64_t b, char *out, size_t n);
void lp_cfg_format_ratio(int64_t ppm, char *out, size_t n);
void lp_cfg_format_bound(const struct lp_field *f, int64_t v, char *out, size_t n);
/* How a value of f is written ("a duration (e.g. 250ms, 5s, 1h, 30d)"). */
const char *lp_cfg_kind_hint(const struct lp_field *f);
/* Checks everything a field table cannot (cross-key, cross-section, names,
 * patterns) and resolves the kubeconfig; errors at their positions. */
void lp_cfg_validate(struct ctx *c, struct lp_config *cfg, const struct lp_node *root);
/* shipper.kubernetes.kubeconfig into k->conn (errors at the file's
 * positions). */
void lp_cfg_resolve_kubeconfig(struct ctx *c, struct lp_config_kubernetes *k);

#endif
