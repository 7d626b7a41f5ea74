/* Event and source ids are stable: vectors computed independently with
 * python-xxhash (xxh3_128 over the documented byte layout). */
#include "lp_eventid.h"
#include "lp_test.h"

#include <string.h>

#define SID "3f2a9c1e5b7d4f60a1b2c3d4e5f60718"

static void test_event_id_vectors(void)
{
    char id[LP_ID_HEX_LEN + 1];
    lp_event_id(SID, strlen(SID), 0, id);
    CU_ASSERT_STRING_EQUAL(id, "e9cc0a349479a35e9f0fb5bac711b5ac");
    lp_event_id(SID, strlen(SID), 1234, id);
    CU_ASSERT_STRING_EQUAL(id, "606bee2e8ed83454452310c4301bdd20");
    lp_event_id(SID, strlen(SID), 1ULL << 40, id);
    CU_ASSERT_STRING_EQUAL(id, "3552c604b4dde58de4acdf7857260150");
}

static void test_event_id_long_source(void)
{
    /* > 256 bytes takes the streaming path; must equal the one-shot hash */
    char sid[300], id1[LP_ID_HEX_LEN + 1], id2[LP_ID_HEX_LEN + 1];
    memset(sid, 'x', sizeof(sid));
    lp_event_id(sid, 300, 42, id1);
    lp_event_id(sid, 300, 42, id2);
    CU_ASSERT_STRING_EQUAL(id1, id2);
    lp_event_id(sid, 299, 42, id2);
    CU_ASSERT_STRING_NOT_EQUAL(id1, id2);
    CU_ASSERT_EQUAL(strlen(id1), LP_ID_HEX_LEN);
}

static void test_source_id_vectors(void)
{
    char sid[LP_ID_HEX_LEN + 1];
    lp_source_id("node-1", 2049, 1048577, 0x0123456789abcdefULL, 0, sid);
    CU_ASSERT_STRING_EQUAL(sid, "7f2745c1e83bcc4f2b0c19f87a854e17");
    lp_source_id("node-1", 2049, 1048577, 0x0123456789abcdefULL, 1, sid);
    CU_ASSERT_STRING_EQUAL(sid, "ac58587ff66278396b3714a87a42905c"); /* new generation */
}

static void test_offsets_differ(void)
{
    char a[LP_ID_HEX_LEN + 1], b[LP_ID_HEX_LEN + 1];
    for (uint64_t off = 0; off < 1000; off++) {
        lp_event_id(SID, strlen(SID), off, a);
        lp_event_id(SID, strlen(SID), off + 1, b);
        CU_ASSERT_STRING_NOT_EQUAL(a, b);
    }
}

int main(void)
{
    static const struct lp_test tests[] = {
        {"event id vectors", test_event_id_vectors},
        {"event id long source", test_event_id_long_source},
        {"source id vectors", test_source_id_vectors},
        {"offsets differ", test_offsets_differ},
        {NULL, NULL},
    };
    return lp_test_run("eventid", tests);
}
