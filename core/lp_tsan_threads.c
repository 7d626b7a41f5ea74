/* ThreadSanitizer builds only (-DLP_SANITIZE=thread): librdkafka starts its
 * threads with C11 thrd_create, which glibc implements without going
 * through pthread_create, so TSan never sees them start and crashes on
 * their first allocation (its per-thread state is missing). These
 * definitions in the program take precedence over glibc's for librdkafka
 * (the dynamic linker resolves its references to the executable first) and
 * route its threads through the pthread calls TSan intercepts. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

/* glibc's thrd_create reports a failed allocation as thrd_nomem: so does
 * this stand-in (lp_banned.h's rule is for logpipe's own code). */
#undef malloc

struct tramp {
    thrd_start_t fn;
    void *arg;
};

static void *start(void *p)
{
    struct tramp t = *(struct tramp *)p;
    free(p);
    return (void *)(intptr_t)t.fn(t.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    struct tramp *t = malloc(sizeof(*t));
    if (!t)
        return thrd_nomem;
    t->fn = fn;
    t->arg = arg;
    if (pthread_create((pthread_t *)thr, NULL, start, t) != 0) {
        free(t);
        return thrd_error;
    }
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret;
    if (pthread_join((pthread_t)thr, &ret) != 0)
        return thrd_error;
    if (res)
        *res = (int)(intptr_t)ret;
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return pthread_detach((pthread_t)thr) == 0 ? thrd_success : thrd_error;
}

/* Its mutexes and condition variables likewise: glibc's mtx_t and cnd_t
 * are pthread_mutex_t and pthread_cond_t underneath (same size, initialised
 * by the pthread functions), but the C11 calls reach them without the
 * intercepted entry points, so TSan would not see librdkafka hand memory
 * from one thread to another and would report every such hand-over. */
_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread mutex");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread cond");

static int c11(int rc)
{
    return rc == 0 ? thrd_success : thrd_error;
}

int mtx_init(mtx_t *m, int type)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    int rc = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return c11(rc);
}

int mtx_lock(mtx_t *m)
{
    return c11(pthread_mutex_lock((pthread_mutex_t *)m));
}

int mtx_trylock(mtx_t *m)
{
    int rc = pthread_mutex_trylock((pthread_mutex_t *)m);
    return rc == 0 ? thrd_success : rc == EBUSY ? thrd_busy : thrd_error;
}

int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    int rc = pthread_mutex_timedlock((pthread_mutex_t *)m, ts);
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

int mtx_unlock(mtx_t *m)
{
    return c11(pthread_mutex_unlock((pthread_mutex_t *)m));
}

void mtx_destroy(mtx_t *m)
{
    pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c)
{
    return c11(pthread_cond_init((pthread_cond_t *)c, NULL));
}

int cnd_signal(cnd_t *c)
{
    return c11(pthread_cond_signal((pthread_cond_t *)c));
}

int cnd_broadcast(cnd_t *c)
{
    return c11(pthread_cond_broadcast((pthread_cond_t *)c));
}

int cnd_wait(cnd_t *c, mtx_t *m)
{
    return c11(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m));
}

int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict ts)
{
    int rc = pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, ts);
    return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t *c)
{
    pthread_cond_destroy((pthread_cond_t *)c);
}
