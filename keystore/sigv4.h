/*
 * sigv4.h - AWS Signature Version 4, header variant (AWS4-HMAC-SHA256),
 * and sending one signed AWS request through http.h.
 *
 * Owns: the canonical request, the string to sign, the signing key and
 * the Authorization header for one request, computed with OpenSSL's
 * HMAC-SHA256 (docs.aws.amazon.com, "Create a signed AWS API request");
 * the Host header that is both signed and sent.
 * Must not know: where credentials come from, any service's API.
 * Not supported: presigned URLs (query-string signing), SigV4a,
 * chunked/streaming payloads, S3's single-encoding path rule.
 * Thread-safety: reentrant.
 */
#ifndef KMSFS_SIGV4_H
#define KMSFS_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/secret.h"
#include "http.h"

#define SIGV4_MAX_HEADERS 32

struct sigv4_creds {
	const char *access_key_id;
	const struct secret *secret_key;
	const char *session_token; /* NULL or "" when not temporary */
};

struct sigv4_request {
	const char *method;
	/* Path as sent on the wire ("/" for KMS and STS).  Its canonical
	 * form is its RFC 3986 encoding ('/' kept), which is AWS's "encode
	 * twice" rule for every service but S3. */
	const char *path;
	const char *query; /* as sent, without '?'; NULL or "" if none */
	/* "Name: value" lines exactly as they will be sent, NULL-ended;
	 * must include Host (with ":port" when the URL has one). */
	const char *const *headers;
	const uint8_t *body;
	size_t body_len;
	const char *region;
	const char *service;
	time_t when;
	bool normalize;	     /* remove "." "..", "//" from the path */
	bool omit_token;     /* send the token header but do not sign it */
	bool content_sha256; /* add and sign x-amz-content-sha256 */
};

struct sigv4_result {
	struct buf canonical; /* secret: holds the session token */
	struct buf string_to_sign;
	char signature[65];	 /* lower-case hex */
	char date_header[40];	 /* "X-Amz-Date: YYYYMMDDTHHMMSSZ" */
	char sha_header[96];	 /* "X-Amz-Content-Sha256: ..." or "" */
	struct buf auth_header;	 /* "Authorization: AWS4-HMAC-SHA256 ..." */
	struct buf token_header; /* secret: "X-Amz-Security-Token: ..." */
};

void sigv4_result_init(struct sigv4_result *res);
/* Wipes the secret parts; accepts an initialised, unused result. */
void sigv4_result_release(struct sigv4_result *res);

/* Sign rq with c.  res must be initialised; earlier contents are
 * dropped.  Returns 0, -EINVAL (missing Host, method, region, service or
 * key; malformed header line; too many headers), -ENOMEM, -EIO (OpenSSL
 * failure). */
int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_creds *c,
	       struct sigv4_result *res);

/* Append the headers to send (X-Amz-Date, Authorization, the token and
 * content hash when present) to a NULL-ended header array of max slots
 * (max counts the terminating NULL).  Pointers refer into res.  -E2BIG if
 * they do not fit. */
int sigv4_add_headers(const struct sigv4_result *res, const char **headers,
		      size_t max);

/* Split an http(s) URL into its authority (the Host header value, with
 * ":port" if the URL has one) and its path ("/" when empty); a query or
 * fragment is refused.  -EINVAL for anything else (no scheme, userinfo,
 * empty host, host longer than hostlen - 1). */
int sigv4_url_split(const char *url, char *host, size_t hostlen,
		    const char **path_out);

struct sigv4_post {
	const char *url;
	const char *region;
	const char *service;
	const char *const *headers; /* extra "Name: value", NULL-ended, <= 8 */
	const struct buf *body;	    /* may be secret */
	long timeout_ms;	    /* 0: http.h default */
	long connect_timeout_ms;
};

/* POST p->body to p->url, signed with c at http_now(); c == NULL sends it
 * unsigned (STS AssumeRoleWithWebIdentity).  resp as http_do(); also
 * -EINVAL from sigv4_url_split / sigv4_sign. */
int sigv4_post(const struct sigv4_post *p, const struct sigv4_creds *c,
	       struct http_response *resp);

/* "YYYYMMDDTHHMMSSZ" for t (UTC); out has room for 17 bytes. */
void sigv4_amz_date(time_t t, char out[17]);

/* Lower-case hex SHA-256 of data; out has room for 65 bytes. */
void sigv4_sha256_hex(const void *data, size_t len, char out[65]);

#endif
