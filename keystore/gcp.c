/*
 * gcp.c - Google Cloud KMS (gs://, alias gcp-kms://), as CockroachDB's
 * pkg/cloud/gcp/gcp_kms.go uses it (cockroach-interop.md §3.2).
 *
 * URI: gs:///projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKey
 * Versions/V]?AUTH=specified|implicit&CREDENTIALS=..&BEARER_TOKEN=..&
 * ASSUME_ROLE=a@x,b@y.  The MasterKeyID (and the name every request uses)
 * is the path cut at the first /cryptoKeyVersions/, without its leading
 * '/': symmetric decrypt must name the CryptoKey, and the service picks
 * the version from the ciphertext.
 *
 * Wire (kms-protocols.md §2.1): POST {base}/v1/{key}:encrypt with the
 * plaintext and its CRC32C; the reply must say verifiedPlaintextCrc32c and
 * carry the ciphertext's CRC32C; :decrypt sends the ciphertext's CRC32C and
 * checks the plaintext's.  The stored blob is the raw ciphertext.  {base}
 * is https://cloudkms.googleapis.com unless KMSFS_GCP_KMS_ENDPOINT names a
 * private endpoint (or an emulator in tests); see gcp_rest.h for all
 * options.  Error mapping: 401/403 -EACCES, 404 -ENOKEY, 429 -EAGAIN, 5xx
 * retried then -EAGAIN, network -ETIMEDOUT, a decrypt the service refuses
 * as invalid -EBADMSG, a failed integrity check -EPROTO.  A 401 drops the
 * cached token and retries once with a new one.
 */
#include "provider.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "cred_gcp.h"
#include "gcp_rest.h"
#include "http.h"
#include "json.h"

struct gcp_state {
	char *key_id; /* MasterKeyID = CryptoKey resource name */
	char *name;   /* redacted URI, for log lines */
	struct gcp_endpoints ep;
	struct gcp_cred *cred;
};

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: the
 * inputs are a few dozen bytes. */
static uint32_t gcp_crc32c(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return c ^ 0xffffffffu;
}

static int gcp_key_id(const char *path, char **out)
{
	const char *cut = strstr(path, "/cryptoKeyVersions/");
	size_t n = cut ? (size_t)(cut - path) : strlen(path);

	if (n && path[0] == '/') {
		path++;
		n--;
	}
	*out = strndup(path, n);
	return *out ? 0 : -ENOMEM;
}

static void gcp_free(void *state)
{
	struct gcp_state *s = state;

	if (!s)
		return;
	gcp_cred_free(s->cred);
	free(s->key_id);
	free(s->name);
	free(s);
}

static int gcp_open(struct kmsuri *u, void **state_out)
{
	const char *auth = kmsuri_take(u, "AUTH");
	const char *creds = kmsuri_take(u, "CREDENTIALS");
	const char *bearer = kmsuri_take(u, "BEARER_TOKEN");
	const char *role = kmsuri_take(u, "ASSUME_ROLE");
	struct gcp_state *s;
	int r;

	*state_out = NULL;
	if (!u->path[0] || !strcmp(u->path, "/") ||
	    !strncmp(u->path, "/cryptoKeyVersions/", 19)) {
		log_err("gs KMS %s: path component of the KMS cannot be empty; "
			"must contain the Customer Managed Key",
			u->redacted);
		return -EINVAL;
	}
	if (u->host[0])
		log_warn("gs KMS %s: the host part is ignored; the key is the "
			 "path (gs:///projects/...)",
			 u->redacted);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->name = strdup(u->redacted);
	r = s->name ? gcp_key_id(u->path, &s->key_id) : -ENOMEM;
	if (!r)
		r = gcp_endpoints_load(&s->ep);
	if (!r)
		r = gcp_cred_new(auth, creds, bearer, role, s->name, &s->ep,
				 &s->cred);
	if (r) {
		gcp_free(s);
		return r;
	}
	*state_out = s;
	return 0;
}

static const char *gcp_master_key_id(void *state)
{
	return ((struct gcp_state *)state)->key_id;
}

/* What to do next, for the answers a user can fix. */
static const char *gcp_hint(long status)
{
	switch (status) {
	case 401:
		return " (the access token was refused: check BEARER_TOKEN "
		       "or the credentials)";
	case 403:
		return " (does the account hold roles/cloudkms."
		       "cryptoKeyEncrypterDecrypter on this key?)";
	case 404:
		return " (check the key's resource name and location)";
	default:
		return "";
	}
}

/* One line per failed call: which KMS, which operation, what came back. */
static int gcp_call_fail(const struct gcp_state *s, const char *op, int r,
			 const struct http_response *resp)
{
	char code[48];

	if (r) {
		log_err("gs KMS %s: %s failed: %s", s->name, op, strerror(-r));
		return r;
	}
	gcp_error_code(&resp->body, code, sizeof(code));
	log_err("gs KMS %s: %s: HTTP %ld %s%s", s->name, op, resp->status, code,
		gcp_hint(resp->status));
	if (!strcmp(code, "FAILED_PRECONDITION")) /* version disabled */
		return -ENOKEY;
	r = gcp_status_errno(resp->status, code);
	/* 400 on decrypt: "Decryption failed: the ciphertext is invalid." */
	if (r == -EINVAL && !strcmp(op, "decrypt"))
		return -EBADMSG;
	return r == -EINVAL ? -EPROTO : r;
}

/* POST {base}/v1/{key}:{op} with a fresh token; body and reply may both
 * hold a data key, so both are secret buffers. */
static int gcp_call(struct gcp_state *s, const char *op, const struct buf *body,
		    struct http_response *resp)
{
	struct http_request req = {
	    .method = "POST",
	    .headers = {"Content-Type: application/json"},
	    .body = body,
	    .timeout_ms = s->ep.timeout_ms,
	};
	struct buf url, auth;
	int r;

	buf_init(&url, GCP_URL_MAX * 2);
	buf_init_secret(&auth, GCP_TOKEN_MAX + 64);
	r = buf_addf(&url, "%s/v1/", s->ep.kms);
	if (!r)
		r = gcp_add_path(&url, s->key_id);
	if (!r)
		r = buf_addf(&url, ":%s", op);
	req.url = (const char *)url.data;
	for (int attempt = 0; !r; attempt++) {
		buf_reset(&auth);
		r = gcp_cred_auth_header(s->cred, &auth);
		if (r)
			break; /* logged by cred_gcp.c */
		req.headers[1] = (const char *)auth.data;
		r = http_do_retry(&req, resp);
		if (!r && resp->status == 401 && attempt == 0 &&
		    gcp_cred_invalidate(s->cred))
			continue;
		if (r || resp->status != 200)
			r = gcp_call_fail(s, op, r, resp);
		break;
	}
	buf_release(&auth);
	buf_release(&url);
	return r;
}

/* The reply's CRC32C field must match data (CockroachDB's in-transit
 * integrity check). */
static bool gcp_crc_ok(struct json_object *o, const char *field,
		       const struct buf *data)
{
	int64_t v;

	if (json_get_int64(o, field, &v))
		return false;
	return v == (int64_t)gcp_crc32c(data->data, data->len);
}

static int gcp_encrypt_body(const struct secret *dk, struct buf *body)
{
	int r = buf_addstr(body, "{\"plaintext\":\"");

	if (!r)
		r = b64_encode(dk->bytes, dk->len, false, true, body);
	if (!r)
		r = buf_addf(body, "\",\"plaintextCrc32c\":\"%lu\"}",
			     (unsigned long)gcp_crc32c(dk->bytes, dk->len));
	return r;
}

static int gcp_wrap(void *state, const struct secret *dk, struct buf *out)
{
	struct gcp_state *s = state;
	struct http_response resp = {0};
	struct json_object *o = NULL;
	struct buf body, ct;
	bool verified = false;
	int r;

	buf_init_secret(&body, 4 * SECRET_MAX);
	buf_init_secret(&resp.body, GCP_BODY_MAX);
	buf_init(&ct, KS_MAX_BLOB);
	r = gcp_encrypt_body(dk, &body);
	if (!r)
		r = gcp_call(s, "encrypt", &body, &resp);
	if (r)
		goto out;
	r = -EPROTO;
	if (json_parse((const char *)resp.body.data, resp.body.len, &o) ||
	    json_get_b64(o, "ciphertext", &ct) || !ct.len) {
		log_err("gs KMS %s: encrypt: malformed reply", s->name);
		goto out;
	}
	if (json_get_bool(o, "verifiedPlaintextCrc32c", &verified) ||
	    !verified) {
		log_err("gs KMS %s: Encrypt: request corrupted in-transit",
			s->name);
		goto out;
	}
	if (!gcp_crc_ok(o, "ciphertextCrc32c", &ct)) {
		log_err("gs KMS %s: Encrypt: response corrupted in-transit",
			s->name);
		goto out;
	}
	r = buf_add(out, ct.data, ct.len);
out:
	json_free(o);
	buf_release(&ct);
	buf_release(&body);
	buf_release(&resp.body);
	return r;
}

static int gcp_decrypt_body(const uint8_t *blob, size_t len, struct buf *body)
{
	int r = buf_addstr(body, "{\"ciphertext\":\"");

	if (!r)
		r = b64_encode(blob, len, false, true, body);
	if (!r)
		r = buf_addf(body, "\",\"ciphertextCrc32c\":\"%lu\"}",
			     (unsigned long)gcp_crc32c(blob, len));
	return r;
}

static int gcp_unwrap(void *state, const uint8_t *blob, size_t len,
		      struct secret **dk_out)
{
	struct gcp_state *s = state;
	struct http_response resp = {0};
	struct json_object *o = NULL;
	struct buf body, pt;
	int r;

	*dk_out = NULL;
	buf_init(&body, 2 * KS_MAX_BLOB);
	buf_init_secret(&resp.body, GCP_BODY_MAX);
	buf_init_secret(&pt, SECRET_MAX);
	r = len && len <= KS_MAX_BLOB ? gcp_decrypt_body(blob, len, &body)
				      : -EINVAL;
	if (!r)
		r = gcp_call(s, "decrypt", &body, &resp);
	if (r)
		goto out;
	r = -EPROTO;
	if (json_parse((const char *)resp.body.data, resp.body.len, &o) ||
	    json_get_b64(o, "plaintext", &pt) || !pt.len) {
		log_err("gs KMS %s: decrypt: malformed reply", s->name);
		goto out;
	}
	if (!gcp_crc_ok(o, "plaintextCrc32c", &pt)) {
		log_err("gs KMS %s: Decrypt: response corrupted in-transit",
			s->name);
		goto out;
	}
	*dk_out = secret_dup(pt.data, pt.len);
	r = *dk_out ? 0 : -ENOMEM;
out:
	json_free(o);
	buf_release(&pt);
	buf_release(&body);
	buf_release(&resp.body);
	return r;
}

static const char *const gcp_aliases[] = {"gcp-kms", NULL};

const struct ks_provider ks_provider_gcp = {
    .scheme = "gs",
    .aliases = gcp_aliases,
    .built = true,
    .build_hint = NULL,
    .open = gcp_open,
    .master_key_id = gcp_master_key_id,
    .wrap = gcp_wrap,
    .unwrap = gcp_unwrap,
    .free = gcp_free,
};
