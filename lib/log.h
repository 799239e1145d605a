/*
 * log.h - the one way kmsfs reports what happened.
 *
 * Owns: destination (stderr in the foreground and for CLI commands,
 * syslog once daemonized) and the level filter.  Callers must never pass
 * key material, passphrases, tokens or unredacted KMS URIs: redact first
 * (kmsuri_redact / ks_kms_name).
 * Thread-safety: all functions may be called from any thread; each call
 * emits one whole line.
 */
#ifndef KMSFS_LOG_H
#define KMSFS_LOG_H

#include <stdbool.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Program name used as prefix on stderr and as the syslog ident. */
void log_init(const char *ident);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
/* Switch to syslog (after daemonizing). */
void log_use_syslog(bool on);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
