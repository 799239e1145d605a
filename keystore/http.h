/*
 * http.h - HTTP(S) requests for KMS providers.  The only user of libcurl
 * (besides kmsuri.c's URL parser).
 *
 * Owns: one request/response exchange with bounded timeouts, TLS always
 * verified (optional CA bundle from $KMSFS_CA_BUNDLE for private
 * endpoints and tests), bounded response size, secret request/response
 * bodies, the plain-http rule (below), and a seam for tests:
 * http_set_transport() replaces the real transport, http_set_clock() the
 * clock.
 * Plain http: allowed only to loopback (127.0.0.0/8, [::1], localhost),
 * IPv4 link-local 169.254.0.0/16 (EC2/ECS/EKS, GCE and Azure metadata and
 * identity endpoints), AWS's on-instance [fd00:ec2::254] and
 * [fd00:ec2::23], and metadata.google.internal; any other http URL is
 * refused unless the environment has KMSFS_ALLOW_INSECURE_HTTP=1.
 * Must not know: any KMS's API or credentials format.
 * Thread-safety: http_do may be called from several threads; the seams
 * are set once before use.
 */
#ifndef KMSFS_HTTP_H
#define KMSFS_HTTP_H

#include <stddef.h>
#include <time.h>

#include "../lib/buf.h"

#define HTTP_MAX_HEADERS 16
#define HTTP_ALLOW_INSECURE_ENV "KMSFS_ALLOW_INSECURE_HTTP"

struct http_request {
	const char *method; /* "GET", "POST", "PUT" */
	const char *url;
	const char *headers[HTTP_MAX_HEADERS]; /* "Name: value", NULL-ended */
	const struct buf *body;		       /* may be NULL */
	long timeout_ms;		       /* 0: default 10 s */
	long connect_timeout_ms;	       /* 0: default 3 s */
};

struct http_response {
	long status;	 /* 0 if no HTTP response was received */
	struct buf body; /* caller inits (secret if it may carry a key) */
	char header_error_type[128];	 /* x-amzn-ErrorType, if any */
	char header_metadata_flavor[32]; /* Metadata-Flavor, if any */
};

/* Perform one request.  Returns 0 when an HTTP response arrived (any
 * status), -EINVAL (not an http(s) URL, or plain http the rule above
 * refuses: logged, with the host), -ETIMEDOUT (connect/transfer timeout,
 * host unreachable, connection refused), -EPROTO (TLS verification or
 * protocol failure), -E2BIG (response over the body's max), -ENOMEM.
 * Logs at debug level the method, the URL without query string and the
 * status; never bodies or header values. */
int http_do(const struct http_request *req, struct http_response *resp);

/* http_do, retried with backoff (0.2 s, then 0.8 s; three attempts) while
 * the answer is 429 (throttled) or 5xx (unavailable).  Same returns as
 * http_do; the last answer is left in resp. */
int http_do_retry(const struct http_request *req, struct http_response *resp);

/* The plain-http rule for a configured endpoint, checked when it is read
 * so that the message names where it came from: setting is the option's
 * name (e.g. "AWS_ENDPOINT").  0 for https and for allowed http (with a
 * warning when only KMSFS_ALLOW_INSECURE_HTTP=1 allows it), -EINVAL
 * (logged, naming setting and host, never the URL) otherwise, -ENOMEM. */
int http_url_check(const char *setting, const char *url);

typedef int (*http_transport_fn)(const struct http_request *req,
				 struct http_response *resp, void *ctx);
void http_set_transport(http_transport_fn fn, void *ctx);
void http_set_clock(time_t (*now)(void));
time_t http_now(void);

/* Percent-encode s (RFC 3986 unreserved kept) and append to out. */
int http_urlencode(struct buf *out, const char *s, size_t len);

#endif
