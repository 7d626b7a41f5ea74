/* The s3 output's settings as the S3 client takes them, shared with
 * logpipe-replay, which reads the bucket of an s3 output by its name. */
#ifndef OUT_S3_H
#define OUT_S3_H

#include "lp_s3.h"

struct lp_config_output;

/* The client settings of an s3 output: its keys, or AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment when
 * access_key_id is unset. Pointers borrow from o and the environment. */
void lp_s3_output_cfg(const struct lp_config_output *o, struct lp_s3_cfg *c);
/* The output's key prefix as keys start with it: "" or "<prefix>/" without
 * leading or doubled slashes (heap; the caller frees it). */
char *lp_s3_output_prefix(const struct lp_config_output *o);

#endif
