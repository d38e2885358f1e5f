/* Redis's INCRBYFLOAT arithmetic, in C because it is `long double` arithmetic (x87 80-bit on
 * x86-64, binary128 on aarch64) that Rust has no type for. Redis users see its results
 * digit for digit ("0.1" + "0.2" is "0.3" here, not "0.30000000000000004"), so rudis does the
 * same computation with the same C library: string2ld, an addition, ld2string(LD_STR_HUMAN),
 * copied from Redis 7.0's util.c. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        /* A NUL inside the argument ends strtold's reading early: not a number. */
        (size_t)(eptr - buf) != slen ||
        ((errno == ERANGE) &&
         (value == HUGE_VALL || value == -HUGE_VALL || fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

/* ld2string(LD_STR_HUMAN); returns the length, 0 when it does not fit (Redis then stores an
 * empty string, and so do we). */
static size_t ld2string_human(char *buf, size_t len, long double value) {
    size_t l = 0;
    if (isinf(value)) {
        if (value > 0) {
            memcpy(buf, "inf", 3);
            l = 3;
        } else {
            memcpy(buf, "-inf", 4);
            l = 4;
        }
    } else {
        int n = snprintf(buf, len, "%.17Lf", value);
        if (n < 0 || (size_t)n + 1 > len) {
            buf[0] = '\0';
            return 0;
        }
        l = (size_t)n;
        if (strchr(buf, '.') != NULL) {
            char *p = buf + l - 1;
            while (*p == '0') {
                p--;
                l--;
            }
            if (*p == '.') l--;
        }
        if (l == 2 && buf[0] == '-' && buf[1] == '0') {
            buf[0] = '0';
            l = 1;
        }
    }
    buf[l] = '\0';
    return l;
}

/* cur (NULL when the key is absent: 0) + incr, written to out (MAX_LONG_DOUBLE_CHARS bytes).
 * Returns the length written, -1 if either is not a valid float, -2 if the sum is NaN or
 * infinite. */
long rudis_incrbyfloat(const char *cur, size_t curlen, const char *incr, size_t incrlen,
                       char *out) {
    long double value = 0, by;
    if (cur != NULL && !string2ld(cur, curlen, &value)) return -1;
    if (!string2ld(incr, incrlen, &by)) return -1;
    value += by;
    if (isnan(value) || isinf(value)) return -2;
    return (long)ld2string_human(out, MAX_LONG_DOUBLE_CHARS, value);
}

/* A blocking command's timeout in milliseconds, as Redis 7.0's getTimeoutFromObjectOrReply
 * computes it: (long long) ceill(seconds * 1000.0), in long double (-0.001 gives 0 there, -1 in
 * a double). Returns 0 when the text is not a float (string2ld), else 1. The cast is clamped
 * where C's would be undefined. */
int rudis_timeout_ms(const char *s, size_t slen, long long *ms) {
    long double v;
    if (!string2ld(s, slen, &v)) return 0;
    long double t = ceill(v * 1000.0L);
    if (t >= 9.2e18L) *ms = 9200000000000000000LL;
    else if (t <= -9.2e18L) *ms = -9200000000000000000LL;
    else *ms = (long long)t;
    return 1;
}
