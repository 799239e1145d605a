/*
 * sigv4.c - AWS Signature Version 4 (header variant), with OpenSSL.
 *
 * Follows the four steps of the AWS IAM guide "Create a signed AWS API
 * request": canonical request, string to sign, signing key (an HMAC
 * chain over date, region, service and "aws4_request"), signature.  The
 * canonical request holds the session token, so it lives in a secret
 * buffer; the derived keys are cleansed before return.  Checked against
 * every header-signing case of the aws-c-auth v4 test suite
 * (tests/check_sigv4.c).
 */
#include "sigv4.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "../lib/hex.h"

#define SIGV4_ALGO "AWS4-HMAC-SHA256"
#define SIGV4_MAX_NAME 64
#define SIGV4_MAX_QPARAMS 64
#define SIGV4_POST_MAX_EXTRA 8 /* leaves room for Host and 4 signed */

struct sigv4_hdr {
	char name[SIGV4_MAX_NAME + 1]; /* lower case */
	const char *value;	       /* raw, trimmed when written */
	size_t order;		       /* keeps duplicates in send order */
};

struct sigv4_hdrs {
	struct sigv4_hdr h[SIGV4_MAX_HEADERS];
	size_t n;
	bool has_host;
};

void sigv4_result_init(struct sigv4_result *res)
{
	memset(res, 0, sizeof(*res));
	buf_init_secret(&res->canonical, 0);
	buf_init(&res->string_to_sign, 4096);
	buf_init(&res->auth_header, 4096);
	buf_init_secret(&res->token_header, 0);
}

void sigv4_result_release(struct sigv4_result *res)
{
	buf_release(&res->canonical);
	buf_release(&res->string_to_sign);
	buf_release(&res->auth_header);
	buf_release(&res->token_header);
	res->signature[0] = '\0';
	res->date_header[0] = '\0';
	res->sha_header[0] = '\0';
}

void sigv4_amz_date(time_t t, char out[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

void sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	hex_encode(md, sizeof(md), out);
}

static bool sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

/* URI-encode s[0..len), keeping '/' when keep_slash. */
static int sigv4_encode(struct buf *out, const char *s, size_t len,
			bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		unsigned char c = (unsigned char)s[i];

		if (sigv4_unreserved(c) || (keep_slash && c == '/'))
			r = buf_addch(out, (char)c);
		else
			r = buf_addf(out, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return r;
}

/* Percent-decode then re-encode, so both "%E1%88%B4" and raw UTF-8
 * come out in the one canonical spelling. */
static int sigv4_reencode(struct buf *out, const char *s, size_t len)
{
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		char c = s[i];
		int v = c == '%' && i + 2 < len ? hex_byte(s + i + 1) : -1;

		if (v >= 0) {
			c = (char)v;
			i += 2;
		}
		r = sigv4_encode(out, &c, 1, false);
	}
	return r;
}

/* Normalised path: no "." segments, ".." resolved, no empty segments;
 * a trailing '/' of the input is kept. */
static int sigv4_path_normalized(struct buf *out, const char *p)
{
	size_t base = out->len, plen = strlen(p);
	int r = 0;

	while (*p && !r) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *slash =
			    memrchr(out->data + base, '/', out->len - base);

			if (slash) {
				out->len =
				    (size_t)((uint8_t *)slash - out->data);
				out->data[out->len] = '\0';
			}
		} else if (n && !(n == 1 && p[0] == '.')) {
			r = buf_addch(out, '/');
			if (!r)
				r = sigv4_encode(out, p, n, false);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (!r && (out->len == base || (plen > 1 && p[-1] == '/')))
		r = buf_addch(out, '/');
	return r;
}

static int sigv4_path(struct buf *out, const char *path, bool normalize)
{
	if (!path || !*path)
		return buf_addch(out, '/');
	if (normalize)
		return sigv4_path_normalized(out, path);
	return sigv4_encode(out, path, strlen(path), true);
}

struct sigv4_qparam {
	size_t off; /* "key=value" in the scratch buffer */
	size_t klen;
	const char *base;
};

static int sigv4_qcmp(const void *a, const void *b)
{
	const struct sigv4_qparam *x = a, *y = b;
	const char *xs = x->base + x->off, *ys = y->base + y->off;
	size_t n = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(xs, ys, n);

	if (c)
		return c;
	if (x->klen != y->klen)
		return x->klen < y->klen ? -1 : 1;
	return strcmp(xs + x->klen, ys + y->klen);
}

/* Split "a=1&b" into encoded "a=1", "b=" in scratch (NUL-separated). */
static int sigv4_query_split(const char *q, struct buf *scratch,
			     struct sigv4_qparam *qp, size_t *np)
{
	size_t n = 0;
	int r = 0;

	while (*q && !r) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;

		if (len) {
			if (n == SIGV4_MAX_QPARAMS)
				return -EINVAL;
			qp[n].off = scratch->len;
			r = sigv4_reencode(scratch, q, klen);
			qp[n].klen = scratch->len - qp[n].off;
			if (!r)
				r = buf_addch(scratch, '=');
			if (!r && eq)
				r = sigv4_reencode(scratch, eq + 1,
						   len - klen - 1);
			if (!r)
				r = buf_addch(scratch, '\0');
			n++;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	*np = n;
	return r;
}

static int sigv4_query(struct buf *out, const char *q)
{
	struct sigv4_qparam qp[SIGV4_MAX_QPARAMS];
	struct buf scratch;
	size_t n = 0;
	int r;

	if (!q || !*q)
		return 0;
	buf_init(&scratch, 0);
	r = sigv4_query_split(q, &scratch, qp, &n);
	if (r)
		goto out;
	for (size_t i = 0; i < n; i++)
		qp[i].base = (const char *)scratch.data;
	qsort(qp, n, sizeof(qp[0]), sigv4_qcmp);
	for (size_t i = 0; i < n && !r; i++) {
		if (i)
			r = buf_addch(out, '&');
		if (!r)
			r = buf_addstr(out, qp[i].base + qp[i].off);
	}
out:
	buf_release(&scratch);
	return r;
}

static int sigv4_hdr_add(struct sigv4_hdrs *hs, const char *line)
{
	const char *colon = strchr(line, ':');
	struct sigv4_hdr *h;
	size_t n;

	if (!colon || colon == line || hs->n == SIGV4_MAX_HEADERS)
		return -EINVAL;
	n = (size_t)(colon - line);
	if (n > SIGV4_MAX_NAME)
		return -EINVAL;
	h = &hs->h[hs->n];
	for (size_t i = 0; i < n; i++) {
		char c = line[i];

		if (c == ' ' || c == '\t')
			return -EINVAL;
		h->name[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
	}
	h->name[n] = '\0';
	h->value = colon + 1;
	h->order = hs->n++;
	if (!strcmp(h->name, "host"))
		hs->has_host = true;
	return 0;
}

static int sigv4_hcmp(const void *a, const void *b)
{
	const struct sigv4_hdr *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->order < y->order ? -1 : 1;
}

/* Value trimmed, inner whitespace runs (folded lines too) -> one space. */
static int sigv4_hdr_value(struct buf *out, const char *v)
{
	bool space = false, any = false;
	int r = 0;

	for (; *v && !r; v++) {
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
			space = any;
			continue;
		}
		if (space)
			r = buf_addch(out, ' ');
		if (!r)
			r = buf_addch(out, *v);
		space = false;
		any = true;
	}
	return r;
}

/* "name:v1,v2\n" lines, then the blank line, then "a;b;c\n"; signed
 * names also go to names_out. */
static int sigv4_headers(struct buf *out, struct sigv4_hdrs *hs,
			 struct buf *names_out)
{
	int r = 0;

	qsort(hs->h, hs->n, sizeof(hs->h[0]), sigv4_hcmp);
	for (size_t i = 0; i < hs->n && !r; i++) {
		bool dup = i && !strcmp(hs->h[i].name, hs->h[i - 1].name);

		if (dup) {
			r = buf_addch(out, ',');
		} else {
			if (i)
				r = buf_addch(out, '\n');
			if (!r && names_out->len)
				r = buf_addch(names_out, ';');
			if (!r)
				r = buf_addstr(names_out, hs->h[i].name);
			if (!r)
				r = buf_addf(out, "%s:", hs->h[i].name);
		}
		if (!r)
			r = sigv4_hdr_value(out, hs->h[i].value);
	}
	if (!r)
		r = buf_addf(out, "\n\n%s\n", (const char *)names_out->data);
	return r;
}

static int sigv4_collect(const struct sigv4_request *rq,
			 const struct sigv4_creds *c, struct sigv4_result *res,
			 struct sigv4_hdrs *hs)
{
	char date[17];
	int r = 0;

	sigv4_amz_date(rq->when, date);
	snprintf(res->date_header, sizeof(res->date_header), "X-Amz-Date: %s",
		 date);
	for (size_t i = 0; rq->headers && rq->headers[i] && !r; i++)
		r = sigv4_hdr_add(hs, rq->headers[i]);
	if (!r)
		r = sigv4_hdr_add(hs, res->date_header);
	if (!r && c->session_token && *c->session_token) {
		r = buf_addf(&res->token_header, "X-Amz-Security-Token: %s",
			     c->session_token);
		if (!r && !rq->omit_token)
			r = sigv4_hdr_add(hs,
					  (const char *)res->token_header.data);
	}
	if (!r && rq->content_sha256) {
		char h[65];

		sigv4_sha256_hex(rq->body ? rq->body : (const uint8_t *)"",
				 rq->body_len, h);
		snprintf(res->sha_header, sizeof(res->sha_header),
			 "X-Amz-Content-Sha256: %s", h);
		r = sigv4_hdr_add(hs, res->sha_header);
	}
	if (!r && !hs->has_host)
		r = -EINVAL;
	return r;
}

static int sigv4_canonical(const struct sigv4_request *rq,
			   struct sigv4_hdrs *hs, struct sigv4_result *res,
			   struct buf *names)
{
	struct buf *cr = &res->canonical;
	char h[65];
	int r;

	r = buf_addf(cr, "%s\n", rq->method);
	if (!r)
		r = sigv4_path(cr, rq->path, rq->normalize);
	if (!r)
		r = buf_addch(cr, '\n');
	if (!r)
		r = sigv4_query(cr, rq->query);
	if (!r)
		r = buf_addch(cr, '\n');
	if (!r)
		r = sigv4_headers(cr, hs, names);
	sigv4_sha256_hex(rq->body ? rq->body : (const uint8_t *)"",
			 rq->body_len, h);
	if (!r)
		r = buf_addstr(cr, h);
	return r;
}

static int sigv4_hmac(const uint8_t *key, size_t klen, const char *msg,
		      size_t mlen, uint8_t out[32])
{
	unsigned int olen = 32;

	if (!HMAC(EVP_sha256(), key, (int)klen, (const uint8_t *)msg, mlen, out,
		  &olen))
		return -EIO;
	return 0;
}

/* kSigning = HMAC chain over date, region, service, "aws4_request". */
static int sigv4_signature(const struct sigv4_request *rq,
			   const struct secret *sk, const char *date8,
			   const struct buf *sts, char sig_out[65])
{
	const char *parts[4] = {date8, rq->region, rq->service, "aws4_request"};
	struct secret *k0 = secret_new(sk->len + 4);
	uint8_t k[32], mac[32];
	int r = 0;

	if (!k0)
		return -ENOMEM;
	memcpy(k0->bytes, "AWS4", 4);
	memcpy(k0->bytes + 4, sk->bytes, sk->len);
	r = sigv4_hmac(k0->bytes, k0->len, parts[0], strlen(parts[0]), k);
	for (int i = 1; i < 4 && !r; i++)
		r = sigv4_hmac(k, sizeof(k), parts[i], strlen(parts[i]), k);
	if (!r)
		r = sigv4_hmac(k, sizeof(k), (const char *)sts->data, sts->len,
			       mac);
	if (!r)
		hex_encode(mac, sizeof(mac), sig_out);
	secret_free(k0);
	secret_wipe(k, sizeof(k));
	return r;
}

int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_creds *c,
	       struct sigv4_result *res)
{
	struct sigv4_hdrs *hs = NULL;
	struct buf names;
	char date[17], date8[9], h[65];
	int r;

	buf_init(&names, 4096);
	buf_reset(&res->canonical);
	buf_reset(&res->string_to_sign);
	buf_reset(&res->auth_header);
	buf_reset(&res->token_header);
	res->signature[0] = res->sha_header[0] = '\0';
	if (!rq->method || !rq->region || !*rq->region || !rq->service ||
	    !c->access_key_id || !*c->access_key_id || !c->secret_key)
		return -EINVAL;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		return -ENOMEM;
	r = sigv4_collect(rq, c, res, hs);
	if (!r)
		r = sigv4_canonical(rq, hs, res, &names);
	if (r)
		goto out;
	sigv4_amz_date(rq->when, date);
	memcpy(date8, date, 8);
	date8[8] = '\0';
	sigv4_sha256_hex(res->canonical.data, res->canonical.len, h);
	r = buf_addf(&res->string_to_sign,
		     SIGV4_ALGO "\n%s\n%s/%s/%s/"
				"aws4_request\n%s",
		     date, date8, rq->region, rq->service, h);
	if (!r)
		r = sigv4_signature(rq, c->secret_key, date8,
				    &res->string_to_sign, res->signature);
	if (!r)
		r = buf_addf(&res->auth_header,
			     "Authorization: " SIGV4_ALGO
			     " Credential=%s/%s/%s/%s/aws4_request, "
			     "SignedHeaders=%s, Signature=%s",
			     c->access_key_id, date8, rq->region, rq->service,
			     (const char *)names.data, res->signature);
out:
	free(hs);
	buf_release(&names);
	return r;
}

int sigv4_add_headers(const struct sigv4_result *res, const char **headers,
		      size_t max)
{
	const char *add[4];
	size_t n = 0, k = 0;

	add[k++] = res->date_header;
	add[k++] = (const char *)res->auth_header.data;
	if (res->token_header.len)
		add[k++] = (const char *)res->token_header.data;
	if (res->sha_header[0])
		add[k++] = res->sha_header;
	while (n < max && headers[n])
		n++;
	if (n + k + 1 > max)
		return -E2BIG;
	for (size_t i = 0; i < k; i++)
		headers[n + i] = add[i];
	headers[n + k] = NULL;
	return 0;
}

int sigv4_url_split(const char *url, char *host, size_t hostlen,
		    const char **path_out)
{
	const char *a, *p;
	size_t n;

	if (!strncmp(url, "https://", 8))
		a = url + 8;
	else if (!strncmp(url, "http://", 7))
		a = url + 7;
	else
		return -EINVAL;
	n = strcspn(a, "/?#");
	p = a + n;
	if (!n || n >= hostlen || memchr(a, '@', n) || strpbrk(p, "?#"))
		return -EINVAL;
	memcpy(host, a, n);
	host[n] = '\0';
	*path_out = *p ? p : "/";
	return 0;
}

int sigv4_post(const struct sigv4_post *p, const struct sigv4_creds *c,
	       struct http_response *resp)
{
	struct http_request req = {.method = "POST",
				   .url = p->url,
				   .body = p->body,
				   .timeout_ms = p->timeout_ms,
				   .connect_timeout_ms = p->connect_timeout_ms};
	struct sigv4_result res;
	char host[256], hosthdr[264];
	const char *path;
	size_t n = 0;
	int r;

	sigv4_result_init(&res);
	r = sigv4_url_split(p->url, host, sizeof(host), &path);
	if (r)
		goto out;
	snprintf(hosthdr, sizeof(hosthdr), "Host: %s", host);
	req.headers[n++] = hosthdr;
	for (size_t i = 0; p->headers && p->headers[i]; i++) {
		if (n > SIGV4_POST_MAX_EXTRA) {
			r = -EINVAL;
			goto out;
		}
		req.headers[n++] = p->headers[i];
	}
	req.headers[n] = NULL;
	if (c) {
		struct sigv4_request rq = {
		    .method = "POST",
		    .path = path,
		    .headers = req.headers,
		    .body = p->body ? p->body->data : NULL,
		    .body_len = p->body ? p->body->len : 0,
		    .region = p->region,
		    .service = p->service,
		    .when = http_now(),
		    .normalize = true};

		r = sigv4_sign(&rq, c, &res);
		if (!r)
			r = sigv4_add_headers(&res, req.headers,
					      HTTP_MAX_HEADERS);
		if (r)
			goto out;
	}
	r = http_do(&req, resp);
out:
	sigv4_result_release(&res);
	return r;
}
