/*
 * errors.c - vhdx_strerror(): names and descriptions for every return code.
 *
 * Guarantees: total functions (any int in, a static non-NULL string out), no
 * allocation, thread-safe (no shared buffers; errno texts come from a fixed
 * table of the values the engine can produce, others get a generic text).
 */
#include "vhdx/errors.h"

#include <errno.h>
#include <stddef.h>

struct err_text {
    int code;
    const char *name;
    const char *full; /* "NAME: description" */
};

static const struct err_text vhdx_texts[] = {
#define VHDX_ERROR_TEXT_(name, text) {name, #name, #name ": " text},
    VHDX_ERROR_LIST(VHDX_ERROR_TEXT_)
#undef VHDX_ERROR_TEXT_
};

/* The errno values the block devices and the engine can return. */
static const struct err_text errno_texts[] = {
    {-EIO, "EIO", "EIO: input/output error"},
    {-ENOSPC, "ENOSPC", "ENOSPC: no space left on device"},
    {-ENOMEM, "ENOMEM", "ENOMEM: out of memory"},
    {-EINVAL, "EINVAL", "EINVAL: invalid argument"},
    {-EBADF, "EBADF", "EBADF: bad file descriptor"},
    {-EFBIG, "EFBIG", "EFBIG: file too large"},
    {-EROFS, "EROFS", "EROFS: read-only file system"},
    {-EACCES, "EACCES", "EACCES: permission denied"},
    {-EPERM, "EPERM", "EPERM: operation not permitted"},
    {-ENOENT, "ENOENT", "ENOENT: no such file or directory"},
    {-EEXIST, "EEXIST", "EEXIST: file exists"},
    {-EISDIR, "EISDIR", "EISDIR: is a directory"},
    {-EDQUOT, "EDQUOT", "EDQUOT: disk quota exceeded"},
    {-EINTR, "EINTR", "EINTR: interrupted system call"},
    {-EAGAIN, "EAGAIN", "EAGAIN: resource temporarily unavailable"},
    {-ENXIO, "ENXIO", "ENXIO: no such device or address"},
    {-EOVERFLOW, "EOVERFLOW", "EOVERFLOW: value too large"},
    {-ENOTSUP, "ENOTSUP", "ENOTSUP: operation not supported"},
};

static const struct err_text *find_text(int rc)
{
    if (rc > VHDX_E_FIRST_ && rc < VHDX_E_LAST_)
        return &vhdx_texts[rc - VHDX_E_FIRST_ - 1];
    for (size_t i = 0; i < sizeof errno_texts / sizeof errno_texts[0]; i++)
        if (errno_texts[i].code == rc)
            return &errno_texts[i];
    return NULL;
}

const char *vhdx_strerror(int rc)
{
    if (rc == 0)
        return "OK: success";
    const struct err_text *t = find_text(rc);
    if (t)
        return t->full;
    return rc < 0 ? "ERRNO: operating system error" : "UNKNOWN: not an error code";
}

const char *vhdx_errname(int rc)
{
    if (rc == 0)
        return "OK";
    const struct err_text *t = find_text(rc);
    return t ? t->name : (rc < 0 ? "ERRNO" : "UNKNOWN");
}

int vhdx_is_format_error(int rc)
{
    return rc > VHDX_E_FIRST_ && rc < VHDX_E_LAST_;
}
