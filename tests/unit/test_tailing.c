/* Shipper building blocks: file identity (short files, inode reuse,
 * truncation), checkpoint files (round trip, atomicity, corruption,
 * expiry), path metadata, Docker's config.v2.json and glob bases. */
#include "checkpoint.h"
#include "discover.h"
#include "docker_meta.h"
#include "identity.h"
#include "lp_error.h"
#include "lp_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *dir;

static int write_file(const char *name, const char *content, int append)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        CU_FAIL("write");
    close(fd);
    return open(path, O_RDONLY);
}

static void test_head(void)
{
    struct lp_head h, h2;
    int fd = write_file("short.log", "partial first li", 0);
    CU_ASSERT_EQUAL(lp_head_read(fd, &h), LP_EAGAIN); /* not identified yet */
    close(fd);
    fd = write_file("short.log", "ne\nsecond\n", 1);
    CU_ASSERT_EQUAL_FATAL(lp_head_read(fd, &h), 0);
    CU_ASSERT_EQUAL(h.len, strlen("partial first line\n"));
    CU_ASSERT(lp_head_matches(fd, &h));
    close(fd);
    /* growth does not change the fingerprint of a complete first line */
    fd = write_file("short.log", "third\n", 1);
    CU_ASSERT_EQUAL(lp_head_read(fd, &h2), 0);
    CU_ASSERT_EQUAL(h2.hash, h.hash);
    close(fd);
    /* another file with another first line */
    fd = write_file("other.log", "partial first lime\n", 0);
    CU_ASSERT(!lp_head_matches(fd, &h));
    close(fd);
    /* no newline in the first KiB: the window is capped */
    char big[2000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fd = write_file("big.log", big, 0);
    CU_ASSERT_EQUAL(lp_head_read(fd, &h), 0);
    CU_ASSERT_EQUAL(h.len, LP_HEAD_MAX);
    close(fd);
}

static void test_tail_hash(void)
{
    int fd = write_file("t.log", "aaaa\nbbbb\ncccc\n", 0);
    uint64_t a, b;
    CU_ASSERT_EQUAL(lp_tail_hash(fd, 10, &a), 0);
    CU_ASSERT_EQUAL(lp_tail_hash(fd, 10, &b), 0);
    CU_ASSERT_EQUAL(a, b);
    CU_ASSERT_EQUAL(lp_tail_hash(fd, 0, &b), 0); /* empty window at the start */
    CU_ASSERT_EQUAL(lp_tail_hash(fd, 100, &b), -ENODATA);
    close(fd);
    fd = write_file("t.log", "aaaa\nbbbX\ncccc\n", 0); /* rewritten before the offset */
    CU_ASSERT_EQUAL(lp_tail_hash(fd, 10, &b), 0);
    CU_ASSERT_NOT_EQUAL(a, b);
    close(fd);
}

static void test_checkpoint_round_trip(void)
{
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/checkpoints.json", dir);
    struct lp_ckpt c;
    CU_ASSERT_EQUAL(lp_ckpt_load(&c, path, err, sizeof(err)), 0); /* missing = empty */
    CU_ASSERT_EQUAL(c.n, 0);
    struct lp_ckpt_entry e = {.dev = 2049,
                              .ino = 77,
                              .head = {19, 0xfeedULL},
                              .generation = 3,
                              .offset = 12345,
                              .tail_hash = 0xabcdef0123456789ULL,
                              .source_id = "0123456789abcdef0123456789abcdef",
                              .path = "/var/log/pods/a \"quoted\" path.log",
                              .seen_s = 1000};
    lp_ckpt_put(&c, &e);
    e.ino = 78;
    e.prev_head = (struct lp_head){24, 0xc0ffeeULL}; /* truncated once */
    e.offset = 5;
    e.seen_s = 10;
    lp_ckpt_put(&c, &e);
    e.offset = 6; /* replace, not add */
    lp_ckpt_put(&c, &e);
    CU_ASSERT_EQUAL(c.n, 2);
    CU_ASSERT_EQUAL(lp_ckpt_save(&c, err, sizeof(err)), 0);
    lp_ckpt_release(&c);
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    CU_ASSERT_NOT_EQUAL(access(tmp, F_OK), 0); /* no temp file left */

    CU_ASSERT_EQUAL_FATAL(lp_ckpt_load(&c, path, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(c.n, 2);
    struct lp_ckpt_entry *x = lp_ckpt_find(&c, 2049, 77);
    CU_ASSERT_PTR_NOT_NULL_FATAL(x);
    CU_ASSERT_EQUAL(x->offset, 12345);
    CU_ASSERT_EQUAL(x->generation, 3);
    CU_ASSERT_EQUAL(x->head.len, 19);
    CU_ASSERT_EQUAL(x->head.hash, 0xfeedULL);
    CU_ASSERT_EQUAL(x->tail_hash, 0xabcdef0123456789ULL);
    CU_ASSERT_STRING_EQUAL(x->source_id, "0123456789abcdef0123456789abcdef");
    CU_ASSERT_STRING_EQUAL(x->path, "/var/log/pods/a \"quoted\" path.log");
    CU_ASSERT_EQUAL(x->prev_head.len, 0); /* never truncated: none saved */
    CU_ASSERT_EQUAL(lp_ckpt_find(&c, 2049, 78)->offset, 6);
    CU_ASSERT_EQUAL(lp_ckpt_find(&c, 2049, 78)->prev_head.len, 24);
    CU_ASSERT_EQUAL(lp_ckpt_find(&c, 2049, 78)->prev_head.hash, 0xc0ffeeULL);
    CU_ASSERT_EQUAL(lp_ckpt_expire(&c, 500), 1); /* ino 78 was last seen at 10 */
    CU_ASSERT_EQUAL(c.n, 1);
    CU_ASSERT_PTR_NULL(lp_ckpt_find(&c, 2049, 78));
    lp_ckpt_release(&c);
}

static void test_checkpoint_corrupt(void)
{
    char path[256], err[512];
    snprintf(path, sizeof(path), "%s/bad.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"version\":1,\"files\":[{\"dev\":1", f); /* torn by hand */
    fclose(f);
    struct lp_ckpt c;
    CU_ASSERT_EQUAL(lp_ckpt_load(&c, path, err, sizeof(err)), LP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "is corrupt"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "read again from their start"));
    CU_ASSERT_EQUAL(c.n, 0);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* moved aside, kept for inspection */
    /* saving afterwards works */
    CU_ASSERT_EQUAL(lp_ckpt_save(&c, err, sizeof(err)), 0);
    lp_ckpt_release(&c);
}

static void test_path_meta(void)
{
    struct lp_path_meta m;
    lp_path_meta(
        "/var/log/containers/"
        "web-5d8f_shop_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_name, "web-5d8f");
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "shop");
    CU_ASSERT_STRING_EQUAL(m.k8s_container_name, "nginx");
    CU_ASSERT_STRING_EQUAL(m.container_id,
                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    lp_path_meta("/var/log/pods/shop_web-5d8f_8c1f4e2a-77b1-4c3e-9a51-0d6c2f9e1b10/nginx/0.log",
                 &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "shop");
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_name, "web-5d8f");
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_uid, "8c1f4e2a-77b1-4c3e-9a51-0d6c2f9e1b10");
    CU_ASSERT_STRING_EQUAL(m.k8s_container_name, "nginx");
    lp_path_meta("/var/lib/docker/containers/abc123/abc123-json.log", &m);
    CU_ASSERT_STRING_EQUAL(m.container_id, "abc123");
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "");
    lp_path_meta("/srv/app.log", &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_name, "");
    /* kubelet's file name in any directory (a copy, a mount elsewhere) */
    lp_path_meta(
        "/data/k8s-logs/"
        "web-5d8f_shop_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_name, "web-5d8f");
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "shop");
    CU_ASSERT_STRING_EQUAL(m.k8s_container_name, "nginx");
    /* ordinary names are not taken for it: a short id, a namespace that is
     * no DNS label */
    lp_path_meta("/srv/logs/app_v2_worker-2024.log", &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_pod_name, "");
    lp_path_meta(
        "/srv/logs/a_Shop_c-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "");
    lp_path_meta(
        "/srv/logs/_shop_c-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
        &m);
    CU_ASSERT_STRING_EQUAL(m.k8s_namespace, "");
}

static void test_glob_base(void)
{
    char b[256];
    lp_glob_base("/var/log/pods/*/*/*.log", b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "/var/log/pods/");
    lp_glob_base("/var/log/containers/*.log", b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "/var/log/containers/");
    lp_glob_base("/srv/app.log", b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, "/srv/");
    lp_glob_base("*.log", b, sizeof(b));
    CU_ASSERT_STRING_EQUAL(b, ".");
}

static void test_inode_reuse_identity(void)
{
    /* A new file given the old inode: the head differs, so no resume */
    struct lp_head h1, h2;
    int fd = write_file("reuse.log", "{\"log\":\"first app\\n\"}\n", 0);
    lp_head_read(fd, &h1);
    close(fd);
    char path[256];
    snprintf(path, sizeof(path), "%s/reuse.log", dir);
    unlink(path);
    fd = write_file("reuse.log", "{\"log\":\"second app\\n\"}\n", 0);
    lp_head_read(fd, &h2);
    CU_ASSERT_NOT_EQUAL(h1.hash, h2.hash);
    CU_ASSERT(!lp_head_matches(fd, &h1));
    close(fd);
}

/* Docker metadata from a real-shaped config.v2.json (a Compose service):
 * name without the '/', image, labels normalised; never the environment;
 * read through a /var/log/containers-style symlink too; hostile files. */
static void test_docker_meta(void)
{
    size_t len;
    char *cfg = lp_test_read_source("tests/fixtures/docker/config.v2.json", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
    char cdir[256], path[512], link[512];
    snprintf(cdir, sizeof(cdir), "%s/5f1c0e7d3b2a", dir);
    CU_ASSERT_EQUAL_FATAL(mkdir(cdir, 0755), 0);
    snprintf(path, sizeof(path), "%s/config.v2.json", cdir);
    FILE *f = fopen(path, "w");
    fwrite(cfg, 1, len, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/5f1c0e7d3b2a-json.log", cdir);
    close(open(path, O_WRONLY | O_CREAT, 0644));
    snprintf(link, sizeof(link), "%s/web.log", dir);
    CU_ASSERT_EQUAL(symlink(path, link), 0);
    for (int via_link = 0; via_link < 2; via_link++) {
        struct lp_docker_meta m;
        char why[256];
        CU_ASSERT_EQUAL_FATAL(lp_docker_meta_read(via_link ? link : path, &m, why, sizeof(why)), 0);
        CU_ASSERT_STRING_EQUAL(m.name, "shop-web-1");
        CU_ASSERT_STRING_EQUAL(m.image, "nginx:1.25");
        CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&m.labels, "com_docker_compose_project"), "shop");
        CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&m.labels, "com_docker_compose_service"), "web");
        CU_ASSERT_PTR_NULL(lp_kvlist_get(&m.labels, "com.docker.compose.service"));
        for (size_t i = 0; i < m.labels.n; i++)
            CU_ASSERT_PTR_NULL(strstr(m.labels.items[i].value, "s3cr3t"));
        lp_docker_meta_release(&m);
    }
    free(cfg);
    /* no config next to the file: an error, nothing filled */
    struct lp_docker_meta m;
    char why[256];
    CU_ASSERT_EQUAL(lp_docker_meta_read("/nonexistent/x-json.log", &m, why, sizeof(why)),
                    LP_EINVAL);
    CU_ASSERT_PTR_NULL(m.name);
    /* hostile contents: wrong types, NULs, a bare "/" name, not JSON */
    const char *odd = "{\"Name\":\"/\",\"Config\":{\"Image\":7,\"Labels\":{\"a\":1,"
                      "\"b\":\"x\\u0000y\",\"c.d\":\"ok\"}}}";
    CU_ASSERT_EQUAL(lp_docker_meta_parse(odd, strlen(odd), &m, why, sizeof(why)), 0);
    CU_ASSERT_PTR_NULL(m.name);
    CU_ASSERT_PTR_NULL(m.image);
    CU_ASSERT_EQUAL(m.labels.n, 1);
    CU_ASSERT_STRING_EQUAL(lp_kvlist_get(&m.labels, "c_d"), "ok");
    lp_docker_meta_release(&m);
    CU_ASSERT_EQUAL(lp_docker_meta_parse("[1]", 3, &m, why, sizeof(why)), LP_ECORRUPT);
    CU_ASSERT_EQUAL(lp_docker_meta_parse("{", 1, &m, why, sizeof(why)), LP_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a JSON object"));
}

int main(void)
{
    dir = lp_test_tmpdir("tailing");
    static const struct lp_test tests[] = {
        {"head", test_head},
        {"tail hash", test_tail_hash},
        {"checkpoint round trip", test_checkpoint_round_trip},
        {"checkpoint corrupt", test_checkpoint_corrupt},
        {"path meta", test_path_meta},
        {"glob base", test_glob_base},
        {"inode reuse identity", test_inode_reuse_identity},
        {"docker metadata", test_docker_meta},
        {NULL, NULL},
    };
    int rc = lp_test_run("tailing", tests);
    return rc;
}
