/*
 * format.c - numbers for people (durations, counts, uptimes) and the clock the subcommands pace
 * themselves by. Everything ASCII, so a table lines up in any terminal and any locale.
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <time.h>

const char *cli_format_seconds(double seconds, char *buffer, size_t size) {
    if (seconds < 0 || isnan(seconds))
        snprintf(buffer, size, "-");
    else if (seconds == 0)
        snprintf(buffer, size, "0");
    else if (seconds < 1e-6)
        snprintf(buffer, size, "%.0fns", seconds * 1e9);
    else if (seconds < 1e-3)
        snprintf(buffer, size, "%.3gus", seconds * 1e6);
    else if (seconds < 1)
        snprintf(buffer, size, "%.3gms", seconds * 1e3);
    else
        snprintf(buffer, size, "%.3gs", seconds);
    return buffer;
}

const char *cli_format_uptime(double seconds, char *buffer, size_t size) {
    if (seconds < 60) {
        snprintf(buffer, size, "%.1fs", seconds);
        return buffer;
    }
    long whole = (long)seconds;
    if (whole < 3600)
        snprintf(buffer, size, "%ldm%02lds", whole / 60, whole % 60);
    else
        snprintf(buffer, size, "%ldh%02ldm%02lds", whole / 3600, whole / 60 % 60, whole % 60);
    return buffer;
}

const char *cli_format_count(double value, char *buffer, size_t size) {
    if (value < 0 || isnan(value))
        snprintf(buffer, size, "-");
    else if (value < 10 && value != floor(value))
        snprintf(buffer, size, "%.1f", value);
    else if (value < 10000)
        snprintf(buffer, size, "%.0f", value);
    else if (value < 1e6)
        snprintf(buffer, size, "%.1fk", value / 1e3);
    else if (value < 1e9)
        snprintf(buffer, size, "%.2fM", value / 1e6);
    else
        snprintf(buffer, size, "%.2fG", value / 1e9);
    return buffer;
}

double cli_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

void cli_sleep(double seconds, volatile sig_atomic_t *stop) {
    double until = cli_now() + seconds;
    for (;;) {
        double left = until - cli_now();
        if (left <= 0 || (stop != NULL && *stop))
            return;
        struct timespec wait = {(time_t)left, (long)((left - floor(left)) * 1e9)};
        if (nanosleep(&wait, NULL) != 0 && errno != EINTR)
            return;
    }
}
