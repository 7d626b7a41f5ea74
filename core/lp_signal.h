/* Process signals for the daemons' main threads: SIGTERM/SIGINT (graceful
 * stop) and SIGHUP (reload) are blocked in every thread and taken
 * synchronously by the main loop; SIGPIPE is ignored. */
#ifndef LP_SIGNAL_H
#define LP_SIGNAL_H

#include <stdint.h>

/* Call first in main, before any thread starts (threads inherit the mask). */
void lp_signals_setup(void);
/* Waits up to timeout_ms for SIGTERM, SIGINT or SIGHUP. Returns the signal
 * number, or 0 on timeout. Main thread only. */
int lp_signals_wait(int64_t timeout_ms);

#endif
