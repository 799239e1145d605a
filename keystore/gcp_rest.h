/*
 * gcp_rest.h - what every Google REST call of kmsfs shares.  Private to
 * keystore/ (used by cred_gcp.c and gcp.c).
 *
 * Owns: the endpoints (Google's public ones unless the environment names
 * others), retrying 5xx answers, and turning Google's error replies into a
 * short code for the log and kmsfs's errno.  Must not know: tokens or any
 * one API's request shapes.
 *
 * Options, read from the environment by gcp_endpoints_load (for private
 * endpoints, e.g. Private Service Connect, and for tests):
 *   KMSFS_GCP_KMS_ENDPOINT  Cloud KMS base URL
 *                           (default https://cloudkms.googleapis.com)
 *   KMSFS_GCP_IAM_ENDPOINT  IAM Credentials base URL, for ASSUME_ROLE
 *                           (default https://iamcredentials.googleapis.com)
 *   GCE_METADATA_HOST       metadata server host[:port], as Google's own
 *                           libraries read it (default
 *                           metadata.google.internal)
 *   KMSFS_GCP_TIMEOUT_MS    per-request timeout, 1..600000 (default 10000)
 * Base URLs must be http:// or https://; plain http only as http.h allows
 * it (loopback, link-local, metadata.google.internal, or an opt-in).
 * Thread-safety: all functions are reentrant.
 */
#ifndef KMSFS_GCP_REST_H
#define KMSFS_GCP_REST_H

#include <stddef.h>

#include "../lib/buf.h"
#include "http.h"

#define GCP_URL_MAX 512
#define GCP_BODY_MAX (64u << 10) /* replies we accept */
#define GCP_TOKEN_MAX 4096	 /* Google documents up to 2 KiB */

struct gcp_endpoints {
	char kms[GCP_URL_MAX];	    /* no trailing '/' */
	char iam[GCP_URL_MAX];	    /* no trailing '/' */
	char metadata[GCP_URL_MAX]; /* "http://host[:port]" */
	long timeout_ms;
};

/* Fill e from the environment (see above).  -EINVAL, logged, when a value
 * is too long, not an http(s) URL / a host[:port], or plain http that
 * http_url_check refuses. */
int gcp_endpoints_load(struct gcp_endpoints *e);

/* Copy a short error code from an error reply into out: Google's
 * {"error":{"status":"PERMISSION_DENIED"}} or OAuth's
 * {"error":"invalid_grant"}.  Only [A-Za-z0-9_] codes are copied (the
 * rest of the body is never looked at for logs); "-" otherwise. */
void gcp_error_code(const struct buf *body, char *out, size_t outlen);

/* Map an HTTP status and error code to kmsfs's errno: 401/403 -EACCES,
 * 404 -ENOKEY, 429 or RESOURCE_EXHAUSTED -EAGAIN, 5xx -EAGAIN, other
 * 4xx -EINVAL, anything else -EPROTO. */
int gcp_status_errno(long status, const char *code);

/* Append s to out with each path segment percent-encoded ('/' kept).
 * 0, -ENOMEM or -E2BIG. */
int gcp_add_path(struct buf *out, const char *s);

#endif
