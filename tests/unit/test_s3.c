/* The S3 client's pure parts: the XML answers it reads (entities, nesting,
 * truncation), key encoding, and endpoint set-up (virtual-hosted and
 * path-style, the AWS default, refused endpoints). Requests are tested
 * against the real S3 server in tests/integration/test_s3_client.c. */
#include "lp_buf.h"
#include "lp_s3.h"
#include "lp_test.h"

#include <string.h>

static void test_xml(void)
{
    const char *x = "<R><Code>SlowDown</Code><Message>a &amp; b &lt;c&gt; &#65;&#x42; &bogus; "
                    "&#999999;</Message><Key>k1</Key><Key>k2</Key></R>";
    struct lp_buf b = LP_BUF_INIT;
    size_t pos = 0;
    CU_ASSERT(lp_s3_xml_next(x, strlen(x), &pos, "Code", &b));
    CU_ASSERT_STRING_EQUAL(b.data, "SlowDown");
    pos = 0;
    CU_ASSERT(lp_s3_xml_next(x, strlen(x), &pos, "Message", &b));
    CU_ASSERT_STRING_EQUAL(b.data, "a & b <c> AB &bogus; &#999999;");
    pos = 0;
    CU_ASSERT(lp_s3_xml_next(x, strlen(x), &pos, "Key", &b));
    CU_ASSERT_STRING_EQUAL(b.data, "k1");
    CU_ASSERT(lp_s3_xml_next(x, strlen(x), &pos, "Key", &b));
    CU_ASSERT_STRING_EQUAL(b.data, "k2");
    CU_ASSERT(!lp_s3_xml_next(x, strlen(x), &pos, "Key", &b));
    /* no close tag, a prefix of the tag, an empty input */
    const char *t = "<Key>unterminated";
    pos = 0;
    CU_ASSERT(!lp_s3_xml_next(t, strlen(t), &pos, "Key", &b));
    t = "<KeyCount>3</KeyCount>";
    pos = 0;
    CU_ASSERT(!lp_s3_xml_next(t, strlen(t), &pos, "Key", &b));
    pos = 0;
    CU_ASSERT(!lp_s3_xml_next("", 0, &pos, "Key", &b));
    lp_buf_release(&b);
}

static void test_encode(void)
{
    struct lp_buf b = LP_BUF_INIT;
    lp_s3_encode_key(&b, "a b/c+d~e_f.g-h%/\xc3\xa9", 1);
    CU_ASSERT_STRING_EQUAL(b.data, "a%20b/c%2Bd~e_f.g-h%25/%C3%A9");
    lp_buf_reset(&b);
    lp_s3_encode_key(&b, "x/y", 0);
    CU_ASSERT_STRING_EQUAL(b.data, "x%2Fy");
    lp_buf_release(&b);
}

static void test_init(void)
{
    struct lp_s3 s;
    char err[200];
    struct lp_s3_cfg c = {.bucket = "logs", .region = "eu-west-1", .tls_verify = 1};
    CU_ASSERT_EQUAL(lp_s3_init(&s, &c, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(s.base, "https://logs.s3.eu-west-1.amazonaws.com");
    CU_ASSERT_STRING_EQUAL(s.sigv4, "aws:amz:eu-west-1:s3");
    CU_ASSERT(s.part_bytes >= (size_t)5 << 20); /* the store's minimum part */
    lp_s3_release(&s);
    c.endpoint = "http://127.0.0.1:9410/";
    c.path_style = 1;
    c.region = NULL;
    CU_ASSERT_EQUAL(lp_s3_init(&s, &c, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(s.base, "http://127.0.0.1:9410");
    CU_ASSERT_STRING_EQUAL(s.sigv4, "aws:amz:us-east-1:s3");
    lp_s3_release(&s);
    const char *bad[] = {"ftp://x",           "https://",  "https://user:pw@host",
                         "https://host/path", "host:9000", NULL};
    for (int i = 0; bad[i]; i++) {
        c.endpoint = bad[i];
        CU_ASSERT_NOT_EQUAL(lp_s3_init(&s, &c, err, sizeof(err)), 0);
        CU_ASSERT(strstr(err, "endpoint") != NULL);
    }
    c.endpoint = NULL;
    c.bucket = "";
    CU_ASSERT_NOT_EQUAL(lp_s3_init(&s, &c, err, sizeof(err)), 0);
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"xml", test_xml},
        {"key encoding", test_encode},
        {"endpoints", test_init},
        {NULL, NULL},
    };
    return lp_test_run("s3", tests);
}
