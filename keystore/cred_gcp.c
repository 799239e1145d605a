/*
 * cred_gcp.c - Google access tokens: service-account JWT grant, static
 * bearer token, GCE metadata server, IAM Credentials impersonation.
 *
 * Design: a credential is a source (service account, static token or the
 * metadata server) and, with ASSUME_ROLE, an impersonation layer on top;
 * each layer caches its token in a secret buffer until a margin before
 * expiry (a quarter of the lifetime, at most five minutes, like Google's
 * libraries refresh early).  The lock is held across a fetch so that
 * concurrent callers wait for one refresh instead of starting their own.
 * The service account's PEM key stays in a secret buffer and is parsed
 * into an EVP_PKEY only while a JWT is signed; EVP_PKEY_free clears it.
 * Wire formats: kms-protocols.md §2.2-2.4 (RFC 7523 grant with an
 * unpadded base64url RS256 JWS; metadata token endpoint with
 * Metadata-Flavor: Google both ways; generateAccessToken with delegates
 * as projects/-/serviceAccounts/<email>).
 */
#include "cred_gcp.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../lib/log.h"
#include "json.h"

#define GCP_SCOPE_CP "https://www.googleapis.com/auth/cloud-platform"
#define GCP_SCOPE_KMS "https://www.googleapis.com/auth/cloudkms"
#define GCP_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCP_JWT_LIFETIME 3600
#define GCP_REFRESH_MARGIN 300
#define GCP_PEM_MAX (16u << 10)
#define GCP_ROLES_MAX 16

enum gcp_src { GCP_SRC_SA, GCP_SRC_BEARER, GCP_SRC_METADATA };

struct gcp_token {
	struct buf tok;	   /* secret; empty when there is none */
	time_t refresh_at; /* fetch a new one from then on */
	bool forever;	   /* static BEARER_TOKEN */
};

struct gcp_cred {
	pthread_mutex_t lock;
	enum gcp_src src;
	char *email;	 /* service account (GCP_SRC_SA) */
	char *token_uri; /* idem */
	char *key_id;	 /* idem, may be NULL */
	struct buf pem;	 /* idem, secret */
	struct gcp_token base;
	char *target;	      /* ASSUME_ROLE's last account, or NULL */
	struct buf delegates; /* JSON array of delegate resource names */
	struct gcp_token imp;
	struct gcp_endpoints ep;
	char *name; /* redacted KMS name, for log lines */
};

/* One line for a failed token exchange; the body is only mined for the
 * short error code. */
static int gcp_fail(const struct gcp_cred *c, const char *what, const char *url,
		    int r, const struct http_response *resp)
{
	char code[48];

	if (r) {
		log_err("gs KMS %s: %s %s failed: %s", c->name, what, url,
			strerror(-r));
		return r;
	}
	gcp_error_code(&resp->body, code, sizeof(code));
	log_err("gs KMS %s: %s %s: HTTP %ld %s", c->name, what, url,
		resp->status, code);
	r = gcp_status_errno(resp->status, code);
	/* OAuth says 400 invalid_grant for a refused assertion. */
	return r == -EINVAL ? -EACCES : r;
}

/* --- tokens and their cache ------------------------------------------ */

static bool gcp_token_chars_ok(const char *t, size_t n)
{
	if (!n || n >= GCP_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < 0x21 || t[i] > 0x7e)
			return false;
	}
	return true;
}

static bool gcp_token_fresh(const struct gcp_token *t)
{
	return t->tok.len && (t->forever || http_now() < t->refresh_at);
}

static int gcp_token_store(struct gcp_token *t, const char *tok,
			   int64_t lifetime)
{
	int64_t margin = lifetime / 4;

	if (margin > GCP_REFRESH_MARGIN)
		margin = GCP_REFRESH_MARGIN;
	buf_reset(&t->tok);
	t->refresh_at = http_now() + (time_t)(lifetime - margin);
	return buf_addstr(&t->tok, tok);
}

/* {"access_token","expires_in","token_type"} from a token endpoint or
 * the metadata server. */
static int gcp_parse_oauth(const struct buf *body, struct gcp_token *t)
{
	struct json_object *o;
	const char *tok, *type;
	int64_t exp = 3600;
	int r;

	r = json_parse((const char *)body->data, body->len, &o);
	if (r)
		return -EPROTO;
	tok = json_get_str(o, "access_token");
	type = json_get_str(o, "token_type");
	r = json_get_int64(o, "expires_in", &exp);
	if (r == -ENOENT)
		r = 0;
	if (r || !tok || !gcp_token_chars_ok(tok, strlen(tok)) ||
	    (type && strcasecmp(type, "Bearer")) || exp <= 0 ||
	    exp > 7 * 86400) {
		r = -EPROTO;
		goto out;
	}
	r = gcp_token_store(t, tok, exp);
out:
	json_free(o);
	return r;
}

/* --- service account JWT grant (RFC 7523) ------------------------------ */

static int gcp_b64url(struct buf *out, const struct buf *in)
{
	return b64_encode(in->data, in->len, true, false, out);
}

/* The RSA private key in pem, or NULL (OpenSSL's error queue cleared). */
static EVP_PKEY *gcp_pem_key(const struct buf *pem)
{
	BIO *bio = BIO_new_mem_buf(pem->data, (int)pem->len);
	EVP_PKEY *pk = NULL;

	if (bio)
		pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk && !EVP_PKEY_is_a(pk, "RSA")) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	if (!pk)
		ERR_clear_error();
	return pk;
}

/* RSASSA-PKCS1-v1_5 SHA-256 over data; appends base64url(signature).
 * -EINVAL if the key cannot sign. */
static int gcp_rs256(const struct buf *pem, const uint8_t *data, size_t len,
		     struct buf *out)
{
	EVP_PKEY *pk = gcp_pem_key(pem);
	EVP_MD_CTX *md = NULL;
	uint8_t sig[1024]; /* up to 8192-bit RSA */
	size_t slen = sizeof(sig);
	int r = -EINVAL;

	if (!pk)
		goto out;
	md = EVP_MD_CTX_new();
	if (!md) {
		r = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, NULL, &slen, data, len) != 1 ||
	    slen > sizeof(sig) ||
	    EVP_DigestSign(md, sig, &slen, data, len) != 1) {
		ERR_clear_error();
		goto out;
	}
	r = b64_encode(sig, slen, true, false, out);
out:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return r;
}

/* {"alg":"RS256","typ":"JWT","kid":...} */
static int gcp_jwt_header(const struct gcp_cred *c, struct buf *out)
{
	int r = buf_addstr(out, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");

	if (!r && c->key_id)
		r = buf_addstr(out, ",\"kid\":");
	if (!r && c->key_id)
		r = json_add_str(out, c->key_id);
	if (!r)
		r = buf_addch(out, '}');
	return r;
}

/* iss, scope, aud, iat, exp: what Google's token endpoint expects. */
static int gcp_jwt_claims(const struct gcp_cred *c, struct buf *out)
{
	long long now = (long long)http_now();
	int r = buf_addstr(out, "{\"iss\":");

	if (!r)
		r = json_add_str(out, c->email);
	if (!r)
		r = buf_addstr(out, ",\"scope\":\"" GCP_SCOPE_CP
				    " " GCP_SCOPE_KMS "\",\"aud\":");
	if (!r)
		r = json_add_str(out, c->token_uri);
	if (!r)
		r = buf_addf(out, ",\"iat\":%lld,\"exp\":%lld}", now,
			     now + GCP_JWT_LIFETIME);
	return r;
}

/* Append header.claims.signature, each part unpadded base64url (RFC 7515;
 * the signing input is header.claims). */
static int gcp_jwt(const struct gcp_cred *c, struct buf *jws)
{
	size_t start = jws->len;
	struct buf part;
	int r;

	buf_init(&part, 8192);
	r = gcp_jwt_header(c, &part);
	if (!r)
		r = gcp_b64url(jws, &part);
	if (!r)
		r = buf_addch(jws, '.');
	buf_reset(&part);
	if (!r)
		r = gcp_jwt_claims(c, &part);
	if (!r)
		r = gcp_b64url(jws, &part);
	buf_reset(&part);
	if (!r)
		r = gcp_rs256(&c->pem, jws->data + start, jws->len - start,
			      &part);
	if (!r)
		r = buf_addch(jws, '.');
	if (!r)
		r = buf_add(jws, part.data, part.len);
	buf_release(&part);
	return r;
}

static void gcp_resp_init(struct http_response *resp)
{
	memset(resp, 0, sizeof(*resp));
	buf_init_secret(&resp->body, GCP_BODY_MAX);
}

static int gcp_fetch_jwt(struct gcp_cred *c)
{
	struct http_request req = {
	    .method = "POST",
	    .url = c->token_uri,
	    .headers = {"Content-Type: application/x-www-form-urlencoded"},
	    .timeout_ms = c->ep.timeout_ms,
	};
	struct http_response resp;
	struct buf form;
	int r;

	gcp_resp_init(&resp);
	buf_init_secret(&form, 16384);
	r = buf_addstr(&form, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3A"
			      "grant-type%3Ajwt-bearer&assertion=");
	if (!r)
		r = gcp_jwt(c, &form); /* [A-Za-z0-9_.-]: no escaping */
	if (r)
		goto out;
	req.body = &form;
	r = http_do_retry(&req, &resp);
	if (r || resp.status != 200) {
		r = gcp_fail(c, "token request to", c->token_uri, r, &resp);
		goto out;
	}
	r = gcp_parse_oauth(&resp.body, &c->base);
	if (r)
		log_err("gs KMS %s: token endpoint %s sent a malformed reply",
			c->name, c->token_uri);
out:
	buf_release(&form);
	buf_release(&resp.body);
	return r;
}

/* --- GCE metadata server ------------------------------------------------ */

static int gcp_fetch_metadata(struct gcp_cred *c)
{
	struct http_request req = {
	    .method = "GET",
	    .headers = {"Metadata-Flavor: Google"},
	    .timeout_ms = c->ep.timeout_ms,
	};
	struct http_response resp;
	struct buf url;
	int r;

	gcp_resp_init(&resp);
	buf_init(&url, GCP_URL_MAX * 2);
	r = buf_addf(&url,
		     "%s/computeMetadata/v1/instance/service-accounts/"
		     "default/token?scopes=",
		     c->ep.metadata);
	if (!r)
		r = http_urlencode(&url, GCP_SCOPE_CP "," GCP_SCOPE_KMS,
				   strlen(GCP_SCOPE_CP "," GCP_SCOPE_KMS));
	if (r)
		goto out;
	req.url = (const char *)url.data;
	r = http_do_retry(&req, &resp);
	if (r || resp.status != 200) {
		r = gcp_fail(c, "metadata server", c->ep.metadata, r, &resp);
		goto out;
	}
	/* Anything else on that address is not a metadata server. */
	if (strcmp(resp.header_metadata_flavor, "Google") != 0) {
		log_err("gs KMS %s: %s answered without Metadata-Flavor: "
			"Google; not a metadata server",
			c->name, c->ep.metadata);
		r = -EPROTO;
		goto out;
	}
	r = gcp_parse_oauth(&resp.body, &c->base);
	if (r)
		log_err("gs KMS %s: metadata server %s sent a malformed "
			"token reply",
			c->name, c->ep.metadata);
out:
	buf_release(&url);
	buf_release(&resp.body);
	return r;
}

/* --- IAM Credentials impersonation -------------------------------------- */

/* RFC 3339 "2024-01-02T03:04:05[.frac](Z|+hh:mm)" -> time_t. */
static int gcp_parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	int off = 0, oh, om, n = 0;
	time_t t;

	if (!s ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -EPROTO;
	s += n;
	if (*s == '.')
		s += 1 + strspn(s + 1, "0123456789");
	if ((*s == '+' || *s == '-') &&
	    sscanf(s + 1, "%2d:%2d", &oh, &om) == 2 && strlen(s) == 6)
		off = (*s == '-' ? -1 : 1) * (oh * 3600 + om * 60);
	else if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0)
		return -EPROTO;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EPROTO;
	*out = t - off;
	return 0;
}

static int gcp_parse_iam(const struct buf *body, struct gcp_token *t)
{
	struct json_object *o;
	const char *tok;
	time_t exp, now = http_now();
	int r;

	r = json_parse((const char *)body->data, body->len, &o);
	if (r)
		return -EPROTO;
	tok = json_get_str(o, "accessToken");
	r = gcp_parse_time(json_get_str(o, "expireTime"), &exp);
	if (r || !tok || !gcp_token_chars_ok(tok, strlen(tok)) || exp <= now) {
		r = -EPROTO;
		goto out;
	}
	r = gcp_token_store(t, tok, (int64_t)(exp - now));
out:
	json_free(o);
	return r;
}

static int gcp_iam_body(const struct gcp_cred *c, struct buf *body)
{
	int r = buf_addstr(body, "{");

	if (!r && c->delegates.len)
		r = buf_addf(body, "\"delegates\":%s,",
			     (const char *)c->delegates.data);
	if (!r)
		r = buf_addstr(
		    body, "\"lifetime\":\"3600s\",\"scope\":[\"" GCP_SCOPE_CP
			  "\",\"" GCP_SCOPE_KMS "\"]}");
	return r;
}

static int gcp_base_fresh(struct gcp_cred *c);

static int gcp_add_bearer(struct buf *hdr, const struct gcp_token *t)
{
	int r = buf_addstr(hdr, "Authorization: Bearer ");

	if (!r)
		r = buf_add(hdr, t->tok.data, t->tok.len);
	return r;
}

static int gcp_fetch_imp(struct gcp_cred *c)
{
	struct http_request req = {
	    .method = "POST",
	    .headers = {"Content-Type: application/json"},
	    .timeout_ms = c->ep.timeout_ms,
	};
	struct http_response resp;
	struct buf url, body, auth;
	int r;

	gcp_resp_init(&resp);
	buf_init(&url, GCP_URL_MAX * 2);
	buf_init(&body, 8192);
	buf_init_secret(&auth, GCP_TOKEN_MAX + 64);
	r = gcp_base_fresh(c);
	if (!r)
		r = gcp_add_bearer(&auth, &c->base);
	if (!r) /* target checked at open: [A-Za-z0-9@._+-] only */
		r = buf_addf(&url,
			     "%s/v1/projects/-/serviceAccounts/%s"
			     ":generateAccessToken",
			     c->ep.iam, c->target);
	if (!r)
		r = gcp_iam_body(c, &body);
	if (r)
		goto out;
	req.url = (const char *)url.data;
	req.headers[1] = (const char *)auth.data;
	req.body = &body;
	r = http_do_retry(&req, &resp);
	if (!r && resp.status == 401 && c->src != GCP_SRC_BEARER)
		buf_reset(&c->base.tok); /* refused: fetch anew next time */
	if (r || resp.status != 200) {
		r = gcp_fail(c, "failed to assume role via", req.url, r, &resp);
		goto out;
	}
	r = gcp_parse_iam(&resp.body, &c->imp);
	if (r)
		log_err("gs KMS %s: failed to assume role: malformed reply "
			"from %s",
			c->name, req.url);
out:
	buf_release(&auth);
	buf_release(&body);
	buf_release(&url);
	buf_release(&resp.body);
	return r;
}

static int gcp_base_fresh(struct gcp_cred *c)
{
	if (gcp_token_fresh(&c->base))
		return 0;
	switch (c->src) {
	case GCP_SRC_SA:
		return gcp_fetch_jwt(c);
	case GCP_SRC_METADATA:
		return gcp_fetch_metadata(c);
	default:
		return -EACCES; /* a static token is always "fresh" */
	}
}

int gcp_cred_auth_header(struct gcp_cred *c, struct buf *hdr)
{
	const struct gcp_token *t = &c->base;
	int r;

	pthread_mutex_lock(&c->lock);
	if (c->target) {
		t = &c->imp;
		r = gcp_token_fresh(t) ? 0 : gcp_fetch_imp(c);
	} else {
		r = gcp_base_fresh(c);
	}
	if (!r)
		r = gcp_add_bearer(hdr, t);
	pthread_mutex_unlock(&c->lock);
	return r;
}

bool gcp_cred_invalidate(struct gcp_cred *c)
{
	bool again = true;

	pthread_mutex_lock(&c->lock);
	if (c->target)
		buf_reset(&c->imp.tok);
	else if (c->src != GCP_SRC_BEARER)
		buf_reset(&c->base.tok);
	else
		again = false;
	pthread_mutex_unlock(&c->lock);
	return again;
}

/* --- creation ------------------------------------------------------- */

static int gcp_dup(char **dst, const char *s)
{
	*dst = strdup(s);
	return *dst ? 0 : -ENOMEM;
}

/* Is the PEM an RSA private key OpenSSL can read?  Parsed and dropped. */
static bool gcp_pem_ok(const struct buf *pem)
{
	EVP_PKEY *pk = gcp_pem_key(pem);

	EVP_PKEY_free(pk);
	return pk != NULL;
}

/* Take a service-account JSON; what is wrong goes to *why. */
static int gcp_sa_load(struct gcp_cred *c, const struct buf *json,
		       const char **why)
{
	struct json_object *o = NULL;
	const char *type, *email, *key, *kid, *uri;
	int r = -EINVAL;

	*why = "not JSON";
	if (json_parse((const char *)json->data, json->len, &o))
		goto out;
	type = json_get_str(o, "type");
	email = json_get_str(o, "client_email");
	key = json_get_str(o, "private_key");
	kid = json_get_str(o, "private_key_id");
	uri = json_get_str(o, "token_uri");
	if (!uri || !*uri)
		uri = GCP_DEFAULT_TOKEN_URI;
	*why = "only \"type\": \"service_account\" keys are supported";
	if (!type || strcmp(type, "service_account") != 0)
		goto out;
	*why = "client_email, private_key or token_uri missing or invalid";
	if (!email || !*email || !key || strlen(uri) >= GCP_URL_MAX ||
	    (strncmp(uri, "https://", 8) && strncmp(uri, "http://", 7)))
		goto out;
	r = gcp_dup(&c->email, email);
	if (!r)
		r = gcp_dup(&c->token_uri, uri);
	if (!r && kid && *kid)
		r = gcp_dup(&c->key_id, kid);
	if (!r)
		r = buf_addstr(&c->pem, key);
	if (!r && !gcp_pem_ok(&c->pem)) {
		*why = "private_key is not an RSA private key in PEM";
		r = -EINVAL;
	}
	if (!r)
		c->src = GCP_SRC_SA;
out:
	json_free(o);
	return r;
}

/* CREDENTIALS: base64.StdEncoding of the key file.  Go's query parsing
 * turned an unescaped '+' into ' ', so read spaces back as '+'. */
static int gcp_cred_from_b64(struct gcp_cred *c, const char *b64)
{
	const char *why = "not base64";
	struct buf txt, json;
	int r;

	buf_init_secret(&txt, GCP_BODY_MAX * 2);
	buf_init_secret(&json, GCP_BODY_MAX);
	r = buf_addstr(&txt, b64);
	for (size_t i = 0; !r && i < txt.len; i++) {
		if (txt.data[i] == ' ')
			txt.data[i] = '+';
	}
	if (!r)
		r = b64_decode((const char *)txt.data, txt.len, &json);
	if (!r)
		r = gcp_sa_load(c, &json, &why);
	if (r == -EINVAL || r == -E2BIG)
		log_err("gs KMS %s: error getting credentials from "
			"CREDENTIALS: %s",
			c->name, why);
	buf_release(&json);
	buf_release(&txt);
	return r == -E2BIG ? -EINVAL : r;
}

static int gcp_cred_from_bearer(struct gcp_cred *c, const char *tok)
{
	if (!gcp_token_chars_ok(tok, strlen(tok))) {
		log_err("gs KMS %s: BEARER_TOKEN is not a valid access token",
			c->name);
		return -EINVAL;
	}
	c->src = GCP_SRC_BEARER;
	c->base.forever = true;
	return buf_addstr(&c->base.tok, tok);
}

/* Application Default Credentials without gcloud: the key file named by
 * GOOGLE_APPLICATION_CREDENTIALS, else the metadata server. */
static int gcp_cred_implicit(struct gcp_cred *c)
{
	const char *path = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	const char *why = "cannot be read";
	struct buf json;
	int r;

	c->src = GCP_SRC_METADATA;
	if (!path || !*path)
		return 0;
	buf_init_secret(&json, GCP_BODY_MAX);
	r = buf_read_file(&json, path);
	if (r)
		why = r == -E2BIG ? "is too large" : strerror(-r);
	if (!r)
		r = gcp_sa_load(c, &json, &why);
	if (r && r != -ENOMEM) {
		log_err("gs KMS %s: GOOGLE_APPLICATION_CREDENTIALS file %s: "
			"%s",
			c->name, path, why);
		r = -EINVAL;
	}
	buf_release(&json);
	return r;
}

/* ASSUME_ROLE "a@x,b@y[;external_id=...]": cloud.ParseRoleString keeps
 * the part before ';'; the last account is the target. */
static int gcp_cred_roles(struct gcp_cred *c, const char *chain)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyz"
				 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@._+-";
	size_t i = 0;
	int r = 0;

	for (const char *p = chain; !r; i++) {
		size_t n = strcspn(p, ",");
		size_t role = strcspn(p, ",;");
		char *acct = strndup(p, role);

		if (!acct)
			return -ENOMEM;
		if (!role || strspn(acct, ok) != role || i >= GCP_ROLES_MAX) {
			log_err("gs KMS %s: failed to assume role: ASSUME_ROLE "
				"entry %zu is not a service account email",
				c->name, i + 1);
			free(acct);
			return -EINVAL;
		}
		if (p[n] == '\0') {
			c->target = acct;
			break;
		}
		r = buf_addstr(&c->delegates, i ? "," : "[");
		if (!r)
			r = buf_addf(&c->delegates,
				     "\"projects/-/serviceAccounts/%s\"", acct);
		free(acct);
		p += n + 1;
	}
	if (!r && c->delegates.len)
		r = buf_addch(&c->delegates, ']');
	return r;
}

static int gcp_cred_source(struct gcp_cred *c, const char *auth,
			   const char *credentials, const char *bearer)
{
	if (auth && !strcmp(auth, "implicit"))
		return gcp_cred_implicit(c);
	if (auth && *auth && strcmp(auth, "specified") != 0) {
		bool plain = strlen(auth) <= 32 &&
			     strspn(auth, "abcdefghijklmnopqrstuvwxyz"
					  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
					  "_-") == strlen(auth);

		log_err("gs KMS %s: unsupported value %s for AUTH (use "
			"specified or implicit)",
			c->name, plain ? auth : "(not shown)");
		return -EINVAL;
	}
	if (credentials && *credentials)
		return gcp_cred_from_b64(c, credentials);
	if (bearer && *bearer)
		return gcp_cred_from_bearer(c, bearer);
	log_err("gs KMS %s: CREDENTIALS or BEARER_TOKEN must be set if "
		"\"AUTH\" is \"specified\"",
		c->name);
	return -EINVAL;
}

int gcp_cred_new(const char *auth, const char *credentials,
		 const char *bearer_token, const char *assume_role,
		 const char *name, const struct gcp_endpoints *e,
		 struct gcp_cred **out)
{
	struct gcp_cred *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	buf_init_secret(&c->pem, GCP_PEM_MAX);
	buf_init_secret(&c->base.tok, GCP_TOKEN_MAX);
	buf_init_secret(&c->imp.tok, GCP_TOKEN_MAX);
	buf_init(&c->delegates, 8192);
	c->ep = *e;
	r = gcp_dup(&c->name, name ? name : "gs:///");
	if (!r)
		r = gcp_cred_source(c, auth, credentials, bearer_token);
	if (!r && assume_role && *assume_role)
		r = gcp_cred_roles(c, assume_role);
	if (r) {
		gcp_cred_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void gcp_cred_free(struct gcp_cred *c)
{
	if (!c)
		return;
	buf_release(&c->pem);
	buf_release(&c->base.tok);
	buf_release(&c->imp.tok);
	buf_release(&c->delegates);
	free(c->email);
	free(c->token_uri);
	free(c->key_id);
	free(c->target);
	free(c->name);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
