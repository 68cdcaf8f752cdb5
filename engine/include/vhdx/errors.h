/*
 * errors.h - error codes of libvhdx and their names.
 *
 * Every libvhdx function that can fail returns an int: 0 on success, a
 * negative errno value (-EIO, -ENOSPC, -ENOMEM, ...) when the operating
 * system or the block device failed, or one of the VHDX_E_* codes below when
 * the on-disk format or an argument is wrong.  The VHDX_E_* codes live in a
 * reserved range far below any errno, so the two never collide.
 *
 * vhdx_strerror() returns a static string that starts with the code's name
 * ("VHDX_E_LOG_CRC: log entry checksum mismatch"), for errno values it
 * returns "errno N: <strerror text>".  It never returns NULL.
 */
#ifndef VHDX_ERRORS_H
#define VHDX_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X-macro list: name, short description.  Order fixes the numeric values. */
#define VHDX_ERROR_LIST(X)                                                     \
    X(VHDX_E_INVAL, "invalid argument")                                        \
    X(VHDX_E_RANGE, "offset or length outside the virtual disk")               \
    X(VHDX_E_READONLY, "image is open read-only")                              \
    X(VHDX_E_POISONED, "handle is unusable after an earlier I/O failure")      \
    X(VHDX_E_SHORT_IO, "short read or write from the block device")            \
    X(VHDX_E_UNSUPPORTED, "feature not supported by this engine")              \
    X(VHDX_E_FILE_SIGNATURE, "file type identifier is not \"vhdxfile\"")       \
    X(VHDX_E_HEADER_SIGNATURE, "header signature is not \"head\"")             \
    X(VHDX_E_HEADER_CHECKSUM, "header checksum mismatch")                      \
    X(VHDX_E_NO_HEADER, "no valid header (both copies bad)")                   \
    X(VHDX_E_HEADER_AMBIGUOUS, "two different valid headers with equal sequence number") \
    X(VHDX_E_HEADER_FIELD, "header field out of range")                        \
    X(VHDX_E_VERSION, "unsupported header Version")                            \
    X(VHDX_E_LOG_VERSION, "unsupported LogVersion with a log to replay")       \
    X(VHDX_E_REGION_SIGNATURE, "region table signature is not \"regi\"")      \
    X(VHDX_E_REGION_CHECKSUM, "region table checksum mismatch")                \
    X(VHDX_E_NO_REGION_TABLE, "no valid region table (both copies bad)")       \
    X(VHDX_E_REGION_FIELD, "region table entry out of range")                  \
    X(VHDX_E_REQUIRED_REGION, "unknown region marked required")                \
    X(VHDX_E_MISSING_REGION, "required region (BAT or metadata) missing")      \
    X(VHDX_E_OVERLAP, "structures overlap")                                    \
    X(VHDX_E_METADATA_SIGNATURE, "metadata table signature is not \"metadata\"") \
    X(VHDX_E_METADATA, "metadata table invalid")                               \
    X(VHDX_E_REQUIRED_ITEM, "unknown metadata item marked required")           \
    X(VHDX_E_MISSING_ITEM, "required metadata item missing")                   \
    X(VHDX_E_ITEM_VALUE, "metadata item value out of range")                   \
    X(VHDX_E_BAT, "BAT entry invalid")                                         \
    X(VHDX_E_TRUNCATED, "file is shorter than a structure it must hold")       \
    X(VHDX_E_LOG_SIGNATURE, "log entry signature is not \"loge\"")             \
    X(VHDX_E_LOG_LENGTH, "log entry length invalid")                           \
    X(VHDX_E_LOG_FIELD, "log entry header field invalid")                      \
    X(VHDX_E_LOG_GUID, "log entry LogGuid differs from the header's")          \
    X(VHDX_E_LOG_DESC_SIGNATURE, "log descriptor signature invalid")           \
    X(VHDX_E_LOG_DESC_FIELD, "log descriptor field invalid")                   \
    X(VHDX_E_LOG_DESC_SEQUENCE, "log descriptor sequence number mismatch")     \
    X(VHDX_E_LOG_DATA_SIGNATURE, "log data sector signature invalid")          \
    X(VHDX_E_LOG_DATA_SEQUENCE, "log data sector sequence number mismatch")    \
    X(VHDX_E_LOG_CRC, "log entry checksum mismatch")                           \
    X(VHDX_E_LOG_NO_SEQUENCE, "LogGuid is set but no valid log sequence exists") \
    X(VHDX_E_LOG_AMBIGUOUS, "two valid log sequences with the same head sequence number") \
    X(VHDX_E_LOG_TRUNCATED, "file is shorter than the log's FlushedFileOffset") \
    X(VHDX_E_LOG_TARGET, "log descriptor targets a place the log may not write") \
    X(VHDX_E_LOG_TOO_LARGE, "log region larger than this engine accepts")      \
    X(VHDX_E_LOG_FULL, "log update does not fit in the log")                   \
    X(VHDX_E_CHECK_FAILED, "consistency check found problems")

enum vhdx_error {
    VHDX_E_FIRST_ = -30999, /* sentinel, not an error */
#define VHDX_ERROR_ENUM_(name, text) name,
    VHDX_ERROR_LIST(VHDX_ERROR_ENUM_)
#undef VHDX_ERROR_ENUM_
    VHDX_E_LAST_ /* sentinel, not an error */
};

/* Static description of rc (0, -errno or VHDX_E_*); never NULL. */
const char *vhdx_strerror(int rc);

/* Just the symbolic name ("VHDX_E_LOG_CRC", "EIO", "OK"); never NULL. */
const char *vhdx_errname(int rc);

/* True when rc is one of the VHDX_E_* format/argument codes. */
int vhdx_is_format_error(int rc);

#ifdef __cplusplus
}
#endif
#endif /* VHDX_ERRORS_H */
