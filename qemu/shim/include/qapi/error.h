/*
 * qapi/error.h (powercut shim) - QEMU's error objects, as the driver uses
 * them: a function that fails stores a new Error in *errp when errp is not
 * NULL (storing over an Error already there is a bug of the caller:
 * QEMU asserts, the shim aborts with a message); error_propagate moves
 * one up; error_setg_errno appends ": <strerror>" like QEMU.  The message
 * of the Error that ends an open is the subject's last_error.
 */
#ifndef QSHIM_QAPI_ERROR_H
#define QSHIM_QAPI_ERROR_H

#include <stdarg.h>

struct Error {
    char *msg;  /* the message (malloc'd) */
    char *hint; /* appended hints, or NULL (malloc'd) */
    int os_errno; /* error_setg_errno's errno, else 0 */
};

void error_setg_internal(Error **errp, const char *src, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void error_setg_errno_internal(Error **errp, const char *src, int line, const char *func, int os_errno,
                               const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define error_setg(errp, ...) error_setg_internal((errp), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define error_setg_errno(errp, os_errno, ...) \
    error_setg_errno_internal((errp), __FILE__, __LINE__, __func__, (os_errno), __VA_ARGS__)
void error_append_hint(Error *const *errp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void error_propagate(Error **dst_errp, Error *local_err);
void error_free(Error *err);
const char *error_get_pretty(const Error *err);

#endif
