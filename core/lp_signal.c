/* Synchronous signal handling with sigtimedwait. */
#include "lp_signal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

static sigset_t handled(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGHUP);
    return s;
}

void lp_signals_setup(void)
{
    sigset_t s = handled();
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int lp_signals_wait(int64_t timeout_ms)
{
    sigset_t s = handled();
    struct timespec ts = {(time_t)(timeout_ms / 1000), (long)(timeout_ms % 1000) * 1000000L};
    for (;;) {
        int sig = sigtimedwait(&s, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno == EAGAIN)
            return 0;
        if (errno != EINTR)
            return 0;
    }
}
