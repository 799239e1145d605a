/*
 * aws.c - the AWS KMS provider (schemes aws and aws-kms), CockroachDB's
 * way: Encrypt with only KeyId and Plaintext, Decrypt with KeyId and
 * CiphertextBlob, the raw CiphertextBlob bytes as the stored blob.
 *
 * Wire protocol: AWS JSON 1.1 (POST /, X-Amz-Target TrentService.<Op>,
 * standard base64 blobs), SigV4-signed by sigv4.c with credentials from
 * cred_aws.c.  Throttling and transient failures (429, Throttling,
 * 5xx, KMSInternal, DependencyTimeout, fast connection failures) are
 * retried with exponential backoff, at most 3 times within a 10 s
 * budget, then -EAGAIN; ExpiredToken drops cached temporary credentials
 * and retries once.  Each failure is logged once with the redacted URI, the
 * HTTP status and the AWS error code; request bodies never are.
 */
#include "provider.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "cred_aws.h"
#include "http.h"
#include "json.h"
#include "sigv4.h"

#define KMS_TRIES 3
#define KMS_BUDGET_MS 10000L
#define KMS_TIMEOUT_MS 3000L
#define KMS_CONNECT_MS 2000L
#define KMS_BACKOFF_MS 200L
#define KMS_FAST_FAIL_MS 1000L
#define KMS_BODY_MAX (64u << 10)
#define KMS_DEFAULT_REGION "default-region" /* CockroachDB's, see below */

struct aws_kms {
	char *key_id; /* MasterKeyID: the path as typed, minus one '/' */
	char *url;
	char *region;
	char *name; /* redacted URI */
	struct aws_cred *cred;
};

struct kms_err {
	char code[64];
	char msg[200];
};

enum kms_next { KMS_FAIL, KMS_RETRY, KMS_REFRESH };

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* __type (or x-amzn-ErrorType): cut at ':', then keep what follows '#'
 * (aws-sdk-go-v2 SanitizeErrorCode). */
static void kms_parse_error(const struct http_response *rs, struct kms_err *e)
{
	struct json_object *o = NULL;
	const char *type = NULL, *msg = NULL, *hash;
	char raw[128];

	if (!json_parse((const char *)rs->body.data, rs->body.len, &o)) {
		type = json_get_str(o, "__type");
		msg = json_get_str(o, "message");
		if (!msg)
			msg = json_get_str(o, "Message");
	}
	if (!type || !*type)
		type = rs->header_error_type;
	snprintf(raw, sizeof(raw), "%s", type);
	raw[strcspn(raw, ":")] = '\0';
	hash = strrchr(raw, '#');
	aws_clean_copy(e->code, sizeof(e->code), hash ? hash + 1 : raw,
		       sizeof(raw));
	aws_clean_copy(e->msg, sizeof(e->msg), msg, msg ? strlen(msg) : 0);
	json_free(o);
}

static bool code_in(const char *code, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(code, *list))
			return true;
	return false;
}

/* HTTP status and AWS code -> errno, and whether to try again. */
static int kms_map(long status, const char *code, enum kms_next *next)
{
	static const char *const denied[] = {
	    "AccessDeniedException",
	    "UnrecognizedClientException",
	    "InvalidSignatureException",
	    "IncompleteSignatureException",
	    "MissingAuthenticationTokenException",
	    "ExpiredTokenException",
	    "InvalidClientTokenId",
	    "SignatureDoesNotMatch",
	    NULL};
	static const char *const nokey[] = {"IncorrectKeyException",
					    "NotFoundException",
					    "DisabledException",
					    "KeyUnavailableException",
					    "KMSInvalidStateException",
					    "InvalidKeyUsageException",
					    NULL};
	static const char *const transient[] = {
	    "KMSInternalException", "DependencyTimeoutException",
	    "InternalFailure", "ServiceUnavailable", NULL};
	static const char *const throttled[] = {
	    "ThrottlingException", "LimitExceededException",
	    "TooManyRequestsException", NULL};

	*next = KMS_FAIL;
	if (!strcmp(code, "ExpiredTokenException"))
		*next = KMS_REFRESH;
	if (status == 429 || status >= 500 || code_in(code, throttled) ||
	    code_in(code, transient)) {
		*next = KMS_RETRY;
		return -EAGAIN;
	}
	if (code_in(code, denied))
		return -EACCES;
	if (code_in(code, nokey))
		return -ENOKEY;
	if (!strcmp(code, "InvalidCiphertextException"))
		return -EBADMSG;
	if (!strcmp(code, "ValidationException") ||
	    !strcmp(code, "InvalidArnException"))
		return -EINVAL;
	if (status >= 400 && status < 500)
		return -EACCES;
	return -EPROTO;
}

/* What one try came to: errno, and what to say if it is the last. */
struct kms_try {
	int r;
	bool net; /* no HTTP reply: r says why */
	long status;
	long ms;
	struct kms_err e;
	enum kms_next next;
};

/* One signed request; 0 and a 200 reply in rs, or t says what failed.
 * Credential errors come back as r < 0 with t->next == KMS_FAIL and are
 * logged by cred_aws.c already. */
static int kms_once(struct aws_kms *k, const char *op, const struct buf *body,
		    struct http_response *rs, struct kms_try *t)
{
	char target[64];
	const char *hdrs[] = {"Content-Type: application/x-amz-json-1.1",
			      target, NULL};
	struct sigv4_post p = {.url = k->url,
			       .region = k->region,
			       .service = "kms",
			       .headers = hdrs,
			       .body = body,
			       .timeout_ms = KMS_TIMEOUT_MS,
			       .connect_timeout_ms = KMS_CONNECT_MS};
	struct sigv4_creds sc;
	long t0 = mono_ms();

	memset(t, 0, sizeof(*t));
	snprintf(target, sizeof(target), "X-Amz-Target: TrentService.%s", op);
	t->r = aws_cred_get(k->cred, &sc);
	if (t->r)
		return t->r;
	t->r = sigv4_post(&p, &sc, rs);
	t->ms = mono_ms() - t0;
	if (t->r) {
		t->net = true;
		/* Refused or reset: worth another try; a timeout is not. */
		if (t->r == -ETIMEDOUT && t->ms < KMS_FAST_FAIL_MS)
			t->next = KMS_RETRY;
		return t->r;
	}
	t->status = rs->status;
	if (rs->status == 200)
		return 0;
	kms_parse_error(rs, &t->e);
	t->r = kms_map(rs->status, t->e.code, &t->next);
	return t->r;
}

static void kms_log(const struct aws_kms *k, const char *op,
		    const struct kms_try *t, int tries)
{
	char n[32] = "";

	if (tries > 1)
		snprintf(n, sizeof(n), " (%d tries)", tries);
	if (t->net)
		log_err("aws kms %s: %s failed%s: %s", k->name, op, n,
			aws_net_reason(t->r));
	else
		log_err("aws kms %s: %s failed%s: HTTP %ld %s%s%s", k->name, op,
			n, t->status,
			t->e.code[0] ? t->e.code : "(no error code)",
			t->e.msg[0] ? ": " : "", t->e.msg);
}

/* Call op with retries; rs->body receives the 200 reply.  One log line
 * for the outcome, however many tries it took. */
static int kms_call(struct aws_kms *k, const char *op, const struct buf *body,
		    struct http_response *rs)
{
	long start = mono_ms(), backoff = KMS_BACKOFF_MS;
	bool refreshed = false;
	struct kms_try t;
	int tries = 0;

	for (;;) {
		tries++;
		if (!kms_once(k, op, body, rs, &t))
			return 0;
		if (!t.net && !t.status)
			return t.r; /* credentials: logged there */
		if (t.next == KMS_REFRESH && !refreshed) {
			refreshed = true;
			aws_cred_invalidate(k->cred);
			continue;
		}
		if (t.next != KMS_RETRY || tries >= KMS_TRIES ||
		    mono_ms() - start + backoff + KMS_TIMEOUT_MS >
			KMS_BUDGET_MS)
			break;
		log_debug("aws kms %s: %s: try %d failed, retrying", k->name,
			  op, tries);
		sleep_ms(backoff);
		backoff *= 2;
	}
	kms_log(k, op, &t, tries);
	return t.r == -E2BIG ? -EPROTO : t.r;
}

static int kms_body(const char *key_id, const char *field, const uint8_t *data,
		    size_t len, struct buf *body)
{
	int r = buf_addstr(body, "{\"KeyId\":");

	if (!r)
		r = json_add_str(body, key_id);
	if (!r)
		r = buf_addf(body, ",\"%s\":\"", field);
	if (!r)
		r = b64_encode(data, len, false, true, body);
	if (!r)
		r = buf_addstr(body, "\"}");
	return r;
}

/* Take field (base64) of a 200 reply into out. */
static int kms_reply_b64(const struct aws_kms *k, const char *op,
			 const struct buf *reply, const char *field,
			 struct buf *out)
{
	struct json_object *o = NULL;
	int r = json_parse((const char *)reply->data, reply->len, &o);

	if (!r)
		r = json_get_b64(o, field, out);
	if (!r && !out->len)
		r = -EPROTO;
	if (r) {
		log_err("aws kms %s: %s: malformed reply (no %s)", k->name, op,
			field);
		r = r == -ENOMEM ? r : -EPROTO;
	}
	json_free(o);
	return r;
}

static int aws_wrap(void *state, const struct secret *dk, struct buf *out)
{
	struct aws_kms *k = state;
	struct http_response rs = {0};
	struct buf body, blob;
	int r;

	buf_init_secret(&body, 0);
	buf_init_secret(&rs.body, KMS_BODY_MAX);
	buf_init(&blob, KS_MAX_BLOB);
	r = kms_body(k->key_id, "Plaintext", dk->bytes, dk->len, &body);
	if (!r)
		r = kms_call(k, "Encrypt", &body, &rs);
	if (!r)
		r = kms_reply_b64(k, "Encrypt", &rs.body, "CiphertextBlob",
				  &blob);
	if (!r)
		r = buf_add(out, blob.data, blob.len);
	buf_release(&blob);
	buf_release(&rs.body);
	buf_release(&body);
	return r;
}

static int aws_unwrap(void *state, const uint8_t *blob, size_t len,
		      struct secret **dk_out)
{
	struct aws_kms *k = state;
	struct http_response rs = {0};
	struct buf body, pt;
	int r;

	*dk_out = NULL;
	buf_init(&body, 0);
	buf_init_secret(&rs.body, KMS_BODY_MAX);
	buf_init_secret(&pt, SECRET_MAX);
	r = kms_body(k->key_id, "CiphertextBlob", blob, len, &body);
	if (!r)
		r = kms_call(k, "Decrypt", &body, &rs);
	if (!r)
		r = kms_reply_b64(k, "Decrypt", &rs.body, "Plaintext", &pt);
	if (!r) {
		*dk_out = secret_dup(pt.data, pt.len);
		r = *dk_out ? 0 : -ENOMEM;
	}
	buf_release(&pt);
	buf_release(&rs.body);
	buf_release(&body);
	return r;
}

static const char *aws_master_key_id(void *state)
{
	return ((struct aws_kms *)state)->key_id;
}

static void aws_free(void *state)
{
	struct aws_kms *k = state;

	if (!k)
		return;
	aws_cred_free(k->cred);
	free(k->key_id);
	free(k->url);
	free(k->region);
	free(k->name);
	free(k);
}

static bool region_ok(const char *r)
{
	if (!*r)
		return false;
	for (; *r; r++)
		if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') ||
		      (*r >= '0' && *r <= '9') || *r == '-'))
			return false;
	return true;
}

/* KMS URL: AWS_ENDPOINT (no scheme: https, as CockroachDB) plus "/", or
 * the regional endpoint. */
static int aws_kms_url(const char *endpoint, const char *region, char **out)
{
	char host[256], *base = NULL;
	const char *path;
	int r;

	if (!endpoint)
		return asprintf(out, "https://kms.%s.amazonaws.com/", region) <
			       0
			   ? -ENOMEM
			   : 0;
	r = aws_endpoint_base(endpoint, &base);
	if (!r && sigv4_url_split(base, host, sizeof(host), &path)) {
		log_err("aws kms AWS_ENDPOINT must be an http(s) URL without "
			"user, query or fragment");
		r = -EINVAL;
	}
	if (!r)
		r = http_url_check("AWS_ENDPOINT", base);
	if (!r)
		r = asprintf(out, "%s/", base) < 0 ? -ENOMEM : 0;
	free(base);
	return r;
}

/* AUTH and its keys, with CockroachDB's messages.  *secret_out gets the
 * secret key with spaces turned back into '+' (malloc'd). */
static int aws_auth(struct kmsuri *u, struct aws_cred_cfg *cfg,
		    char **secret_out)
{
	const char *auth = kmsuri_take(u, "AUTH");
	const char *sk = kmsuri_take(u, "AWS_SECRET_ACCESS_KEY");

	cfg->access_key_id = kmsuri_take(u, "AWS_ACCESS_KEY_ID");
	cfg->session_token = kmsuri_take(u, "AWS_SESSION_TOKEN");
	*secret_out = NULL;
	if (auth && !strcmp(auth, "implicit")) {
		cfg->implicit = true;
		return 0;
	}
	if (auth && *auth && strcmp(auth, "specified")) {
		log_err("unsupported value %s for AUTH", auth);
		return -EINVAL;
	}
	if (!cfg->access_key_id || !*cfg->access_key_id) {
		log_err("AUTH is set to 'specified', but AWS_ACCESS_KEY_ID is "
			"not set");
		return -EINVAL;
	}
	if (!sk || !*sk || strlen(sk) > SECRET_MAX) {
		log_err("AUTH is set to 'specified', but AWS_SECRET_ACCESS_KEY "
			"is %s",
			sk && *sk ? "too long" : "not set");
		return -EINVAL;
	}
	*secret_out = strdup(sk);
	if (!*secret_out)
		return -ENOMEM;
	for (char *p = *secret_out; *p; p++)
		if (*p == ' ')
			*p = '+';
	cfg->secret_key = *secret_out;
	return 0;
}

static int aws_setup(struct aws_kms *k, struct kmsuri *u)
{
	struct aws_cred_cfg cfg = {0};
	const char *region = kmsuri_take(u, "REGION");
	const char *endpoint = kmsuri_take(u, "AWS_ENDPOINT");
	char *secret = NULL;
	int r;

	cfg.assume_role = kmsuri_take(u, "ASSUME_ROLE");
	if (endpoint && !*endpoint)
		endpoint = NULL;
	if (!region || !*region) {
		/* CockroachDB (v21-v23 aws_kms.go) lets a custom endpoint
		 * stand without REGION and signs for "default-region". */
		if (!endpoint) {
			log_err("aws kms REGION parameter not specified");
			return -EINVAL;
		}
		region = KMS_DEFAULT_REGION;
	}
	if (!region_ok(region)) {
		log_err("aws kms REGION is not a region name");
		return -EINVAL;
	}
	r = aws_auth(u, &cfg, &secret);
	if (!r)
		r = aws_kms_url(endpoint, region, &k->url);
	cfg.region = region;
	cfg.endpoint = endpoint;
	if (!r)
		r = aws_cred_new(&cfg, &k->cred);
	if (secret)
		secret_wipe(secret, strlen(secret));
	free(secret);
	if (!r)
		r = (k->region = strdup(region)) ? 0 : -ENOMEM;
	return r;
}

static int aws_open(struct kmsuri *u, void **state_out)
{
	struct aws_kms *k = calloc(1, sizeof(*k));
	const char *path = u->path;
	int r;

	*state_out = NULL;
	if (!k)
		return -ENOMEM;
	if (*path == '/')
		path++;
	k->key_id = strdup(path);
	k->name = strdup(u->redacted ? u->redacted : "aws:///?");
	r = k->key_id && k->name ? 0 : -ENOMEM;
	if (!r && !*k->key_id) {
		log_err("aws kms URI %s names no key: use aws:///<key id, key "
			"ARN or alias>?REGION=...",
			k->name);
		r = -EINVAL;
	}
	if (!r)
		r = aws_setup(k, u);
	if (r) {
		aws_free(k);
		return r;
	}
	*state_out = k;
	return 0;
}

static const char *const aws_aliases[] = {"aws-kms", NULL};

const struct ks_provider ks_provider_aws = {
    .scheme = "aws",
    .aliases = aws_aliases,
    .built = true,
    .build_hint = NULL,
    .open = aws_open,
    .master_key_id = aws_master_key_id,
    .wrap = aws_wrap,
    .unwrap = aws_unwrap,
    .free = aws_free,
};
