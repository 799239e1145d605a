/*
 * cred_gcp.h - OAuth2 access tokens for Google Cloud.  Private to
 * keystore/ (used by gcp.c).
 *
 * Owns: where a Google access token comes from (CockroachDB's AUTH,
 * CREDENTIALS, BEARER_TOKEN and ASSUME_ROLE parameters), the service
 * account JWT grant (RFC 7523, RS256), the GCE metadata server, IAM
 * Credentials impersonation, and a token cache.  Must not know: Cloud
 * KMS.
 *
 * Like Google's libraries, AUTH=implicit reads the service-account key
 * file named by GOOGLE_APPLICATION_CREDENTIALS, else asks the metadata
 * server (gcloud's own user credentials are not used).  Endpoints come
 * from gcp_rest.h.  Tokens are only ever sent to those endpoints, to a
 * service account's own token_uri, or to the metadata server.
 *
 * Secrets: the private key, static bearer tokens and fetched tokens live
 * in secret buffers; nothing here logs a token, key or assertion.
 * Thread-safety: one gcp_cred may be used from several threads; its
 * token cache is guarded by a mutex (one fetch at a time).
 */
#ifndef KMSFS_CRED_GCP_H
#define KMSFS_CRED_GCP_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/buf.h"
#include "gcp_rest.h"

struct gcp_cred;

/* CockroachDB's gs:// auth parameters.  auth is NULL, "", "specified" or
 * "implicit".  For specified, credentials (standard base64 of a
 * service-account JSON; spaces are read back as '+') wins over
 * bearer_token.  assume_role is NULL/"" or "a@x,b@y" (the last account is
 * impersonated, the earlier ones are delegates; ";..." suffixes are
 * ignored as CockroachDB does).  name is the redacted KMS name, copied
 * for log lines.  No network I/O; for implicit auth the
 * GOOGLE_APPLICATION_CREDENTIALS file is read here.
 * Returns 0, -EINVAL (logged with CockroachDB's wording) or -ENOMEM. */
int gcp_cred_new(const char *auth, const char *credentials,
		 const char *bearer_token, const char *assume_role,
		 const char *name, const struct gcp_endpoints *e,
		 struct gcp_cred **out);
void gcp_cred_free(struct gcp_cred *c); /* wipes; accepts NULL */

/* Append "Authorization: Bearer <token>" to hdr (a secret buffer),
 * fetching or refreshing the token when the cached one is missing or
 * close to expiry.  Errors (each logged once here, with the endpoint and
 * HTTP status, never the body): -EACCES credentials refused, -EAGAIN
 * throttled or the token service kept failing (5xx), -ETIMEDOUT network,
 * -EPROTO malformed reply or a metadata server that is not one, -ENOKEY
 * account unknown, -ENOMEM. */
int gcp_cred_auth_header(struct gcp_cred *c, struct buf *hdr);
/* Forget the cached token (the API answered 401).  Returns whether a new
 * one can be fetched (false for a static BEARER_TOKEN). */
bool gcp_cred_invalidate(struct gcp_cred *c);

#endif
