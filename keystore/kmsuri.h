/*
 * kmsuri.h - KMS URIs as CockroachDB accepts them.
 *
 * Owns: splitting a URI (libcurl's URL API) into scheme, host, decoded
 * path and query parameters; marking parameters as consumed so that
 * leftovers are reported ("unknown KMS query parameters: A, B"); the
 * redacted form of a URI for logs (credential parameters -> "redacted").
 * Must not know: what a scheme means.
 * Thread-safety: a struct kmsuri has one owner.
 */
#ifndef KMSFS_KMSURI_H
#define KMSFS_KMSURI_H

#include <stdbool.h>
#include <stddef.h>

struct kmsuri_param {
	char *name;  /* case-sensitive, as CockroachDB's url.Values */
	char *value; /* percent-decoded; may be secret */
	bool used;
};

struct kmsuri {
	char *scheme; /* lower case */
	char *host;   /* "" when absent (the usual scheme:///path) */
	char *path;   /* percent-decoded, starts with '/' or is "" */
	struct kmsuri_param *params;
	size_t nparams;
	char *redacted; /* safe to log */
};

/* Parse.  Returns 0, -EINVAL (logged: what is malformed, with the
 * redacted URI only) or -ENOMEM.  On error *u is left empty. */
int kmsuri_parse(const char *uri, struct kmsuri *u);
/* Wipes parameter values; accepts an empty/zeroed struct. */
void kmsuri_release(struct kmsuri *u);
/* Value of a parameter (first occurrence), marking it consumed; NULL if
 * absent.  The pointer stays valid until kmsuri_release. */
const char *kmsuri_take(struct kmsuri *u, const char *name);
/* -EINVAL (logged as "unknown KMS query parameters: A, B" with the
 * redacted URI) if any parameter was not taken. */
int kmsuri_check_unused(const struct kmsuri *u);
/* Is this parameter name one whose value must never be shown? */
bool kmsuri_param_is_secret(const char *name);
/* Redact a URI string without parsing it fully (for error paths that
 * never got a struct): writes a malloc'd string or NULL. */
char *kmsuri_redact(const char *uri);

#endif
