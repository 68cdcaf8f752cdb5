/*
 * qemu/error-report.h (powercut shim) - error_report(): QEMU prints these
 * on stderr; the shim keeps them (the last ones and a count per open
 * image, qshim.h) and prints nothing, so a library stays quiet and a tool
 * can show them (pcqemu -v).
 */
#ifndef QSHIM_QEMU_ERROR_REPORT_H
#define QSHIM_QEMU_ERROR_REPORT_H

void error_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
