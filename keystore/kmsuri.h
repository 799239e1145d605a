/*
 * kmsuri.h - KMS URIs as CockroachDB accepts them.
 *
 * Owns: splitting a URI (libcurl's URL API) into scheme, host, decoded
 * path and query parameters; marking parameters as consumed so that
 * leftovers are reported ("unknown KMS query parameters: A, B"); the one
 * list of query parameters the providers take, and which of them carry
 * credentials; the redacted form of a URI for logs.
 *
 * Redaction: the value of a credential parameter, and of any parameter
 * not on the list (it may be a misspelt credential), is "redacted".  A
 * value holding an unencoded '&' is split by it, so the name of an
 * unknown parameter that follows a redacted value may be the tail of that
 * value: such a name is not shown either (the whole pair is "redacted").
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
	bool hidden; /* name not to be shown (see above) */
};

/* What a query parameter is, by the list (names matched ignoring case,
 * so that a mis-cased credential is still treated as one).  Ordered from
 * least to most sensitive. */
enum kmsuri_pclass {
	KMSURI_PLAIN,	 /* AUTH, REGION, ...: shown */
	KMSURI_IDENTITY, /* AWS_ACCESS_KEY_ID: shown, but half a credential */
	KMSURI_UNKNOWN,	 /* on no list: value never shown */
	KMSURI_SECRET,	 /* AWS_SECRET_ACCESS_KEY, ...: value never shown */
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
/* The class of a (decoded) parameter name.  Every name a provider takes
 * with kmsuri_take must be on the list (kmsuri_take asserts it). */
enum kmsuri_pclass kmsuri_param_class(const char *name);
/* Is this parameter name one whose value must never be shown (a secret
 * or an unknown one)? */
bool kmsuri_param_is_secret(const char *name);
/* The most sensitive class among the query parameters of the raw string
 * uri, KMSURI_SECRET if its authority holds a password, KMSURI_PLAIN if
 * it has neither.  Never fails, never logs: for URIs given where others
 * can read them (argv). */
enum kmsuri_pclass kmsuri_uri_class(const char *uri);
/* Redact a URI string without parsing it fully (for error paths that
 * never got a struct): writes a malloc'd string or NULL. */
char *kmsuri_redact(const char *uri);

#endif
