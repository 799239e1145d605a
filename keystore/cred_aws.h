/*
 * cred_aws.h - AWS credentials for the KMS provider, as CockroachDB's
 * AWS SDK finds them.
 *
 * Owns: AUTH=specified (the URI's keys) and AUTH=implicit (the standard
 * chain: environment, web identity, shared credentials and config files,
 * ECS/EKS container endpoint, EC2 IMDSv2), the ASSUME_ROLE chain through
 * STS AssumeRole, and refreshing temporary credentials 5 minutes before
 * they expire.
 * Must not know: KMS operations, URIs (the provider hands over values).
 * STS (where it is, AssumeRole, AssumeRoleWithWebIdentity) is
 * cred_aws_sts.c's.
 *
 * Thread-safety: a struct aws_cred has one user at a time (keystore.c
 * serialises calls into one KMS).
 */
#ifndef KMSFS_CRED_AWS_H
#define KMSFS_CRED_AWS_H

#include <stdbool.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/secret.h"
#include "sigv4.h"

#define AWS_REFRESH_EARLY 300 /* seconds before expiry */
#define AWS_MAX_ROLES 8
#define AWS_CRED_BODY_MAX (64u << 10) /* longest credential reply */

struct aws_creds {
	char *access_key_id;	   /* NULL when empty */
	struct secret *secret_key; /* NULL when empty */
	struct buf token;	   /* secret; empty for long-term keys */
	time_t expires;		   /* 0: does not expire */
	const char *source;	   /* "uri", "env", "imds", ... for logs */
};

/* Empty credentials (token: a secret buffer). */
void aws_creds_init(struct aws_creds *c);
/* Wipe and free, leaving c empty. */
void aws_creds_release(struct aws_creds *c);
/* Replace c by copies of the values (tok may be NULL); 0 or -ENOMEM (c
 * then empty).  source must be a static string. */
int aws_creds_set(struct aws_creds *c, const char *akid, const char *sk,
		  size_t sklen, const char *tok, size_t toklen,
		  const char *source);

struct aws_cred_cfg {
	bool implicit;
	/* AUTH=specified: the URI's values (secret spaces already '+') */
	const char *access_key_id;
	const char *secret_key;
	const char *session_token; /* NULL or "" if none */
	const char *region;	   /* signing region for STS */
	const char *endpoint;	   /* AWS_ENDPOINT base URL, or NULL */
	const char *assume_role;   /* ASSUME_ROLE value, or NULL */
};

struct aws_cred;

/* Validate and copy cfg (no network I/O).  -EINVAL (logged: the
 * ASSUME_ROLE list is malformed or too long; a specified key is missing),
 * -ENOMEM. */
int aws_cred_new(const struct aws_cred_cfg *cfg, struct aws_cred **out);
/* Wipe and free; accepts NULL. */
void aws_cred_free(struct aws_cred *c);

/* Current credentials, fetched or refreshed when needed (network I/O:
 * STS, container endpoint, IMDS).  The view points into c and stays
 * valid until the next aws_cred_get/aws_cred_invalidate/aws_cred_free.
 * Returns 0, -EACCES (no credentials anywhere in the chain, partial
 * environment keys, unknown AWS_PROFILE, STS or the container endpoint
 * refused), -ETIMEDOUT, -EAGAIN (STS throttled or 5xx), -EPROTO (TLS
 * failure or malformed reply), -EINVAL (unreadable shared file, unsafe
 * container URL), -ENOTSUP (a profile that needs role_arn,
 * credential_process or SSO), -ENOMEM.  Failures are logged once,
 * without any credential value. */
int aws_cred_get(struct aws_cred *c, struct sigv4_creds *out);

/* Forget cached temporary credentials (after ExpiredToken). */
void aws_cred_invalidate(struct aws_cred *c);

/* The URI's AWS_ENDPOINT with CockroachDB's rule: no scheme means
 * https://.  A trailing '/' is dropped.  malloc'd into *out. */
int aws_endpoint_base(const char *endpoint, char **out);

/* Copy at most len bytes of s (NULL: "") into dst[n], printable ASCII
 * only, so that a hostile reply cannot forge log lines. */
void aws_clean_copy(char *dst, size_t n, const char *s, size_t len);

/* Why a request got no HTTP reply, for a log line (r from http_do). */
const char *aws_net_reason(int r);

/* "2030-01-01T00:00:00Z" (fraction and "+00:00" accepted) -> time_t.
 * -EPROTO if malformed. */
int aws_parse_time(const char *s, time_t *out);

#endif
