/* thread: what every thread the daemons start has in common. */
#ifndef TLSFWD_THREAD_H
#define TLSFWD_THREAD_H

#include <pthread.h>
#include <signal.h>

/** thread_signals_block(old): block every signal but SIGSYS in the calling
 *  thread, so that the thread it creates next takes none (signals are the
 *  main loop's) but the sandbox's report of a denied call (blocked, the
 *  kernel would kill the process instead).  *old gets the mask to put back
 *  once the thread is created. */
static inline void thread_signals_block(sigset_t *old)
{
	sigset_t all;

	sigfillset(&all);
	sigdelset(&all, SIGSYS);
	pthread_sigmask(SIG_BLOCK, &all, old);
}

#endif
