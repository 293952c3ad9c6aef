/*
 * shiftclock: an LD_PRELOAD shim that moves the wall clock, and only the wall clock.
 *
 * Why not libfaketime: Debian's libfaketime 0.9.10 also shifts the clocks behind
 * time.sleep and threading.Event.wait, which hangs this test suite. carbongate's
 * tests only need "what time is it" to answer differently, so this shim adds a fixed
 * offset (SHIFTED_CLOCK_OFFSET_S, whole seconds, may be negative; not CARBONGATE_-prefixed, since
 * tests strip those from the environments of the processes they start) to
 * clock_gettime(CLOCK_REALTIME*), time() and gettimeofday(), and leaves every
 * monotonic clock, sleep and timed wait alone. Every process of a run reads the same
 * offset from its environment, so servers, clients and databases agree on the time.
 *
 * Built and used by scripts/shifted-clock/run (see docs/reliability.md).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);

static long long offset_s(void) {
    static int read = 0;
    static long long value = 0;
    if (!read) {
        const char *text = getenv("SHIFTED_CLOCK_OFFSET_S");
        value = text ? atoll(text) : 0;
        read = 1;
    }
    return value;
}

static int is_wall(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE
#ifdef CLOCK_TAI
        || clock == CLOCK_TAI
#endif
        ;
}

int clock_gettime(clockid_t clock, struct timespec *now) {
    static clock_gettime_fn real = NULL;
    if (!real) real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    int result = real(clock, now);
    if (result == 0 && is_wall(clock)) now->tv_sec += offset_s();
    return result;
}

int gettimeofday(struct timeval *now, void *zone) {
    static gettimeofday_fn real = NULL;
    if (!real) real = (gettimeofday_fn)dlsym(RTLD_NEXT, "gettimeofday");
    int result = real(now, zone);
    if (result == 0) now->tv_sec += offset_s();
    return result;
}

time_t time(time_t *out) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}
