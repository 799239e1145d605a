/*
 * http.c - one HTTP(S) exchange over a libcurl easy handle.
 *
 * Design: a fresh easy handle per request (no shared state between
 * threads, nothing to lock), TLS verification always on, no redirects,
 * only http/https, bounded connect and total timeouts, and a response
 * body that can never grow past the caller's buf max.  The request body
 * is handed to libcurl by pointer (CURLOPT_POSTFIELDS, not COPYPOSTFIELDS)
 * so a secret body is not duplicated on our side.  Tests replace the
 * whole exchange through http_set_transport() and the clock through
 * http_set_clock().
 *
 * Plain http is checked here, before any transport, so that every
 * provider and credential chain gets the same rule: the URL is parsed by
 * libcurl's own parser (the host it would connect to, with odd IPv4
 * spellings normalised and user info split off) and http goes only to
 * hosts whose traffic never crosses a network: loopback, IPv4 link-local
 * (every cloud's metadata and container credential agents), the two IPv6
 * addresses AWS's Nitro hypervisor answers on the instance itself, and
 * metadata.google.internal.  That last one is a DNS name, but a request to
 * it carries nothing of ours: a spoofed answer can only hand us a token
 * that the (https) KMS then rejects.  Anything else needs
 * KMSFS_ALLOW_INSECURE_HTTP=1.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "../lib/log.h"
#include "../lib/secret.h"

#define HTTP_DEFAULT_TIMEOUT_MS 10000L
#define HTTP_DEFAULT_CONNECT_MS 3000L

static http_transport_fn http_transport;
static void *http_transport_ctx;
static time_t (*http_clock)(void);

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_init_rc = CURLE_FAILED_INIT;
static atomic_bool http_insecure_warned;

struct http_xfer {
	struct http_response *resp;
	int body_err; /* -E2BIG / -ENOMEM from the write callback */
};

void http_set_transport(http_transport_fn fn, void *ctx)
{
	http_transport = fn;
	http_transport_ctx = ctx;
}

void http_set_clock(time_t (*now)(void))
{
	http_clock = now;
}

time_t http_now(void)
{
	return http_clock ? http_clock() : time(NULL);
}

int http_urlencode(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t old = out->len;
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			r = buf_addch(out, (char)c);
		} else {
			char enc[3] = {'%', hex[c >> 4], hex[c & 15]};

			r = buf_add(out, enc, sizeof(enc));
		}
	}
	if (r) {
		if (out->cap && out->secret)
			secret_wipe(out->data + old, out->len - old);
		out->len = old;
		if (out->cap)
			out->data[old] = '\0';
	}
	return r;
}

static void http_global_init(void)
{
	http_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* --- plain http policy --------------------------------------------------- */

/* host as libcurl reports it: a name, a dotted quad, or "[v6]". */
static bool http_host_local(const char *host)
{
	static const char *const v6_ok[] = {"::1", "fd00:ec2::254",
					    "fd00:ec2::23"};
	char inner[INET6_ADDRSTRLEN];
	struct in6_addr a6, ok;
	struct in_addr a4;
	size_t n = strlen(host);

	if (!strcasecmp(host, "localhost") ||
	    !strcasecmp(host, "metadata.google.internal"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		uint32_t a = ntohl(a4.s_addr);

		return a >> 24 == 127 || a >> 16 == 0xa9fe; /* 169.254/16 */
	}
	if (n < 3 || n - 2 >= sizeof(inner) || host[0] != '[' ||
	    host[n - 1] != ']')
		return false;
	memcpy(inner, host + 1, n - 2);
	inner[n - 2] = '\0';
	if (inet_pton(AF_INET6, inner, &a6) != 1)
		return false;
	for (size_t i = 0; i < sizeof(v6_ok) / sizeof(*v6_ok); i++) {
		if (inet_pton(AF_INET6, v6_ok[i], &ok) == 1 &&
		    !memcmp(&a6, &ok, sizeof(ok)))
			return true;
	}
	return false;
}

static bool http_insecure_allowed(void)
{
	const char *v = getenv(HTTP_ALLOW_INSECURE_ENV);

	return v && !strcmp(v, "1");
}

/* Decide for an http URL to host; setting (may be NULL) names where the
 * URL came from.  warn_once: from http_do, where a warning per request
 * would flood the log. */
static int http_plain_ok(const char *setting, const char *host, bool warn_once)
{
	const char *what = setting ? setting : "KMS endpoint";

	if (http_host_local(host))
		return 0;
	if (!http_insecure_allowed()) {
		log_err("%s: refusing plain http to %s (not loopback or "
			"link-local): keys and credentials would travel "
			"unencrypted; use https://, or set "
			"KMSFS_ALLOW_INSECURE_HTTP=1 on a trusted network",
			what, host);
		return -EINVAL;
	}
	if (!warn_once || !atomic_exchange(&http_insecure_warned, true))
		log_warn("%s: plain http to %s allowed by "
			 "KMSFS_ALLOW_INSECURE_HTTP=1: keys and credentials "
			 "travel unencrypted",
			 what, host);
	return 0;
}

static int http_check(const char *setting, const char *url, bool warn_once)
{
	char *scheme = NULL, *host = NULL;
	CURLU *u;
	CURLUcode rc;
	int r = 0;

	pthread_once(&http_once, http_global_init);
	u = curl_url();
	if (!u)
		return -ENOMEM;
	/* No scheme guessing: libcurl would guess http. */
	rc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (!rc)
		rc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (!rc)
		rc = curl_url_get(u, CURLUPART_HOST, &host, 0);
	if (rc == CURLUE_OUT_OF_MEMORY) {
		r = -ENOMEM;
	} else if (rc || (strcmp(scheme, "https") && strcmp(scheme, "http"))) {
		/* Not the URL itself: its query may carry a secret. */
		log_err("%s: not an http:// or https:// URL",
			setting ? setting : "KMS endpoint");
		r = -EINVAL;
	} else if (!strcmp(scheme, "http")) {
		r = http_plain_ok(setting, host, warn_once);
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

int http_url_check(const char *setting, const char *url)
{
	return http_check(setting, url, false);
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_xfer *x = ud;
	size_t n = size * nmemb;
	int r = buf_add(&x->resp->body, ptr, n);

	if (r) {
		x->body_err = r;
		return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
	}
	return n;
}

/* Copy the value of "Name: value\r\n" into dst when the name matches. */
static void http_take_header(const char *line, size_t len, const char *name,
			     char *dst, size_t dstlen)
{
	size_t nl = strlen(name);
	size_t vlen;

	if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl))
		return;
	line += nl + 1;
	len -= nl + 1;
	while (len && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	while (len && (line[len - 1] == '\r' || line[len - 1] == '\n' ||
		       line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	vlen = len < dstlen - 1 ? len : dstlen - 1;
	memcpy(dst, line, vlen);
	dst[vlen] = '\0';
}

static size_t http_header_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct http_xfer *x = ud;
	struct http_response *resp = x->resp;
	size_t n = size * nmemb;

	/* A new status line (after 100-continue): forget earlier headers. */
	if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
		resp->header_error_type[0] = '\0';
		resp->header_metadata_flavor[0] = '\0';
		return n;
	}
	http_take_header(ptr, n, "x-amzn-ErrorType", resp->header_error_type,
			 sizeof(resp->header_error_type));
	http_take_header(ptr, n, "Metadata-Flavor",
			 resp->header_metadata_flavor,
			 sizeof(resp->header_metadata_flavor));
	return n;
}

static int http_map_curl(CURLcode rc, const struct http_xfer *x)
{
	switch (rc) {
	case CURLE_OK:
		return 0;
	case CURLE_WRITE_ERROR:
		return x->body_err ? x->body_err : -EPROTO;
	case CURLE_FILESIZE_EXCEEDED:
		return -E2BIG;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ETIMEDOUT;
	default:
		/* TLS verification, bad URL, protocol violations. */
		return -EPROTO;
	}
}

/* Build the header list; "Expect:" stops libcurl's 100-continue dance. */
static int http_headers(const struct http_request *req, struct curl_slist **out)
{
	struct curl_slist *list = NULL, *n;

	for (size_t i = 0; i < HTTP_MAX_HEADERS && req->headers[i]; i++) {
		n = curl_slist_append(list, req->headers[i]);
		if (!n)
			goto nomem;
		list = n;
	}
	n = curl_slist_append(list, "Expect:");
	if (!n)
		goto nomem;
	*out = n;
	return 0;
nomem:
	curl_slist_free_all(list);
	return -ENOMEM;
}

static int http_setopts(CURL *c, const struct http_request *req,
			struct curl_slist *hdrs, struct http_xfer *x)
{
	const char *ca = getenv("KMSFS_CA_BUNDLE");
	long to =
	    req->timeout_ms > 0 ? req->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
	long cto = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
					       : HTTP_DEFAULT_CONNECT_MS;
	CURLcode rc = CURLE_OK;

	rc |= curl_easy_setopt(c, CURLOPT_URL, req->url);
	rc |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, to);
	rc |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, cto);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	rc |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	rc |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* HTTP/1.1: the Host header we sign is the one on the wire. */
	rc |= curl_easy_setopt(c, CURLOPT_HTTP_VERSION,
			       (long)CURL_HTTP_VERSION_1_1);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	rc |= curl_easy_setopt(c, CURLOPT_PROTOCOLS,
			       (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (ca && *ca)
		rc |= curl_easy_setopt(c, CURLOPT_CAINFO, ca);
	rc |= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
			       (curl_off_t)x->resp->body.max);
	rc |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write_cb);
	rc |= curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	rc |= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header_cb);
	rc |= curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	if (strcmp(req->method, "GET") != 0) {
		const struct buf *b = req->body;

		rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDS,
				       b ? (const char *)b->data : "");
		rc |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				       (curl_off_t)(b ? b->len : 0));
		if (strcmp(req->method, "POST") != 0)
			rc |= curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
					       req->method);
	}
	return rc == CURLE_OK ? 0 : -ENOMEM;
}

static void http_log_done(const struct http_request *req, long status, int r)
{
	const char *q;
	int ulen;

	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	q = strpbrk(req->url, "?#");
	ulen = q ? (int)(q - req->url) : (int)strlen(req->url);
	if (r)
		log_debug("http %s %.*s: failed (%s)", req->method, ulen,
			  req->url, strerror(-r));
	else
		log_debug("http %s %.*s: %ld", req->method, ulen, req->url,
			  status);
}

static int http_valid(const struct http_request *req)
{
	if (!req->method || !req->url)
		return 0;
	return !strcmp(req->method, "GET") || !strcmp(req->method, "POST") ||
	       !strcmp(req->method, "PUT");
}

static int http_curl(const struct http_request *req, struct http_response *resp)
{
	struct http_xfer x = {.resp = resp, .body_err = 0};
	struct curl_slist *hdrs = NULL;
	CURL *c = NULL;
	CURLcode rc;
	int r;

	pthread_once(&http_once, http_global_init);
	if (http_init_rc != CURLE_OK)
		return -ENOMEM;
	r = http_headers(req, &hdrs);
	if (r)
		goto out;
	c = curl_easy_init();
	if (!c) {
		r = -ENOMEM;
		goto out;
	}
	r = http_setopts(c, req, hdrs, &x);
	if (r)
		goto out;
	rc = curl_easy_perform(c);
	r = http_map_curl(rc, &x);
	if (!r)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	if (r && rc != CURLE_WRITE_ERROR && rc != CURLE_FILESIZE_EXCEEDED)
		log_debug("http: %s", curl_easy_strerror(rc));
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return r;
}

int http_do(const struct http_request *req, struct http_response *resp)
{
	int r;

	resp->status = 0;
	resp->header_error_type[0] = '\0';
	resp->header_metadata_flavor[0] = '\0';
	buf_reset(&resp->body);
	if (!http_valid(req))
		return -EINVAL;
	r = http_check(NULL, req->url, true);
	if (r)
		goto out;
	if (http_transport)
		r = http_transport(req, resp, http_transport_ctx);
	else
		r = http_curl(req, resp);
	if (r) {
		resp->status = 0;
		buf_reset(&resp->body);
	}
out:
	http_log_done(req, resp->status, r);
	return r;
}

static void http_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

int http_do_retry(const struct http_request *req, struct http_response *resp)
{
	static const long backoff_ms[] = {200, 800};
	int r;

	for (size_t i = 0;; i++) {
		r = http_do(req, resp);
		/* throttled (429) or unavailable (5xx): back off, retry */
		if (r || i == 2 ||
		    (resp->status != 429 &&
		     (resp->status < 500 || resp->status > 599)))
			return r;
		log_debug("http: HTTP %ld, retrying", resp->status);
		http_sleep_ms(backoff_ms[i]);
	}
}
