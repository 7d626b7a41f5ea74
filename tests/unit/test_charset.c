/* Legacy encodings to UTF-8 (core/lp_charset.h): the code pages of old
 * applications, bytes the encoding does not have, and the names refused. */
#include "lp_buf.h"
#include "lp_charset.h"
#include "lp_test.h"

#include <string.h>

static void expect(const char *enc, const char *in, size_t n, const char *want, int replaced)
{
    struct lp_charset *cs = lp_charset_open(enc);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
    struct lp_buf out = LP_BUF_INIT;
    CU_ASSERT_EQUAL(lp_charset_to_utf8(cs, in, n, &out), replaced);
    CU_ASSERT_EQUAL(out.len, strlen(want));
    CU_ASSERT_STRING_EQUAL(out.data, want);
    /* a second line converts from the initial state too */
    CU_ASSERT_EQUAL(lp_charset_to_utf8(cs, in, n, &out), replaced);
    CU_ASSERT_STRING_EQUAL(out.data, want);
    lp_buf_release(&out);
    lp_charset_close(cs);
}

static void test_code_pages(void)
{
    expect("GBK", "\xd6\xd0\xce\xc4 ok", 7, "\xe4\xb8\xad\xe6\x96\x87 ok", 0);
    expect("GB18030", "\xa2\xe3", 2, "\xe2\x82\xac", 0);
    expect("BIG5", "\xa4\xa4\xa4\xe5", 4, "\xe4\xb8\xad\xe6\x96\x87", 0);
    expect("SHIFT_JIS", "\x93\xfa\x96\x7b", 4, "\xe6\x97\xa5\xe6\x9c\xac", 0);
    expect("EUC-KR", "\xc7\xd1\xb1\xb9", 4, "\xed\x95\x9c\xea\xb5\xad", 0);
    expect("WINDOWS-1252", "caf\xe9 \x80", 6, "caf\xc3\xa9 \xe2\x82\xac", 0);
    expect("windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", 6,
           "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", 0);
    expect("CP866", "\x8f\xe0\xa8", 3, "\xd0\x9f\xd1\x80\xd0\xb8", 0);
    expect("GBK", "", 0, "", 0);
}

static void test_bytes_it_does_not_have(void)
{
    /* a lead byte cut at the end of the line, and one in the middle */
    expect("GBK", "ab\x81", 3, "ab\xef\xbf\xbd", 1);
    expect("SHIFT_JIS", "a\xa0z", 3, "a\xef\xbf\xbdz", 1);
}

static void test_names(void)
{
    CU_ASSERT_PTR_NULL(lp_charset_check(NULL));
    CU_ASSERT_PTR_NULL(lp_charset_check(""));
    CU_ASSERT_PTR_NULL(lp_charset_check("utf-8"));
    CU_ASSERT_PTR_NULL(lp_charset_check("gbk"));
    CU_ASSERT_PTR_NULL(lp_charset_open("UTF-8")); /* nothing to convert */
    CU_ASSERT_PTR_NOT_NULL(strstr(lp_charset_check("UTF-16LE"), "UTF-16"));
    CU_ASSERT_PTR_NOT_NULL(strstr(lp_charset_check("utf32"), "UTF-16 and UTF-32"));
    CU_ASSERT_PTR_NOT_NULL(strstr(lp_charset_check("klingon"), "iconv"));
    const char *ebcdic = lp_charset_check("IBM037"); /* EBCDIC: its newline is not 0x0A */
    CU_ASSERT_PTR_NOT_NULL_FATAL(ebcdic);
    CU_ASSERT_PTR_NOT_NULL(strstr(ebcdic, "newline"));
    CU_ASSERT_PTR_NULL(lp_charset_open("klingon"));
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"code pages to UTF-8", test_code_pages},
        {"bytes the encoding does not have", test_bytes_it_does_not_have},
        {"names", test_names},
        {NULL, NULL},
    };
    return lp_test_run("charset", tests);
}
