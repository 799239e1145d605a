/*
 * azure.c - the azure-kms:// provider: Azure Key Vault encrypts the data
 * key with an RSA key, as CockroachDB's encrypted BACKUP does.
 *
 * CockroachDB (pkg/cloud/azure/azure_kms.go) calls azkeys Encrypt and
 * Decrypt (not WrapKey) with RSA-OAEP-256 on (keyName, keyVersion) and
 * stores the raw result; its MasterKeyID is the key name alone, so two
 * versions of one key share a map key.  URI rules and messages follow its
 * MakeAzureKMS (spec cockroach-interop.md §3.3).  Where it is looser we
 * are stricter and say so: the vault name must be a DNS label (it becomes
 * part of a host name), neither path part may be empty, and the
 * implicit-auth error names the offending parameters (CockroachDB prints
 * an empty list there).
 *
 * Options (environment, read when a KMS is opened; for private endpoints
 * and tests; the defaults are the cloud's public endpoints):
 *   KMSFS_AZURE_VAULT_URL   https:// base URL of the vault, used instead
 *                           of https://{AZURE_VAULT_NAME}.{DNS suffix}
 *   KMSFS_AZURE_TIMEOUT_MS  per-request timeout, 100..600000 (default
 *                           10000)
 *   AZURE_AUTHORITY_HOST and the AUTH=implicit sources: cred_azure.h.
 * Wire format: kms-protocols.md §3.3 (api-version 7.4, unpadded base64url).
 */
#include "provider.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "cred_azure.h"
#include "json.h"

#define AZ_ALG "RSA-OAEP-256"
#define AZ_API "api-version=7.4"
#define AZ_TIMEOUT_DEFAULT 10000L
#define AZ_LABEL_CHARS                                                         \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-"

struct az_kms {
	char *key;     /* key name: the MasterKeyID */
	char *version; /* key version */
	char *vault;   /* https://... without trailing '/' */
	char *name;    /* redacted URI, for log lines */
	struct az_cred *cred;
	long timeout_ms;
};

/* go-autorest's EnvironmentFromName table (names compared ignoring case),
 * KeyVaultDNSSuffix and the Entra ID authority of each cloud. */
struct az_cloud {
	const char *name;
	const char *vault_suffix;
	const char *authority;
};

static const struct az_cloud az_clouds[] = {
    {"AzurePublicCloud", "vault.azure.net",
     "https://login.microsoftonline.com"},
    {"AzureCloud", "vault.azure.net", "https://login.microsoftonline.com"},
    {"AzureChinaCloud", "vault.azure.cn", "https://login.chinacloudapi.cn"},
    {"AzureUSGovernmentCloud", "vault.usgovcloudapi.net",
     "https://login.microsoftonline.us"},
    {"AzureUSGovernment", "vault.usgovcloudapi.net",
     "https://login.microsoftonline.us"},
    {"AzureGermanCloud", "vault.microsoftazure.de",
     "https://login.microsoftonline.de"},
};

/* The URI parameters, as taken. */
struct az_params {
	bool implicit;
	const char *vault, *env, *client_id, *secret, *tenant;
};

/* --- open: CockroachDB's URI rules ------------------------------------- */

static int az_bad(const struct kmsuri *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Log "invalid KMS URI <redacted>: <message>"; returns -EINVAL. */
static int az_bad(const struct kmsuri *u, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_err("invalid KMS URI %s: %s", u->redacted, msg);
	return -EINVAL;
}

/* A parameter's value without consuming it ("" if absent). */
static const char *az_peek(const struct kmsuri *u, const char *name)
{
	for (size_t i = 0; i < u->nparams; i++) {
		if (!strcmp(u->params[i].name, name))
			return u->params[i].value ? u->params[i].value : "";
	}
	return "";
}

static bool az_set(const char *v)
{
	return v && *v;
}

/* azureAuthMethod: "" or specified is explicit unless AZURE_ACCOUNT_KEY
 * asks for the storage-only legacy mode; implicit; anything else fails. */
static int az_take_params(struct kmsuri *u, struct az_params *p)
{
	const char *auth = kmsuri_take(u, "AUTH");

	if (!auth || !*auth || !strcmp(auth, "specified")) {
		if (*az_peek(u, "AZURE_ACCOUNT_KEY"))
			return az_bad(u, "azure kms requires explicit auth "
					 "(RBAC) or implicit auth");
		p->implicit = false;
	} else if (!strcmp(auth, "implicit")) {
		p->implicit = true;
	} else {
		return az_bad(u, "unsupported value %s for AUTH", auth);
	}
	p->vault = kmsuri_take(u, "AZURE_VAULT_NAME");
	p->env = kmsuri_take(u, "AZURE_ENVIRONMENT");
	p->client_id = kmsuri_take(u, "AZURE_CLIENT_ID");
	p->secret = kmsuri_take(u, "AZURE_CLIENT_SECRET");
	p->tenant = kmsuri_take(u, "AZURE_TENANT_ID");
	/* CockroachDB reports leftovers before missing parameters. */
	return kmsuri_check_unused(u);
}

static int az_check_params(const struct kmsuri *u, const struct az_params *p)
{
	struct buf missing, extra;
	int r = 0;

	buf_init(&missing, 256);
	buf_init(&extra, 256);
	if (!az_set(p->vault))
		buf_addstr(&missing, ", AZURE_VAULT_NAME");
	if (!p->implicit && !az_set(p->client_id))
		buf_addstr(&missing, ", AZURE_CLIENT_ID");
	if (!p->implicit && !az_set(p->secret))
		buf_addstr(&missing, ", AZURE_CLIENT_SECRET");
	if (!p->implicit && !az_set(p->tenant))
		buf_addstr(&missing, ", AZURE_TENANT_ID");
	if (p->implicit && az_set(p->client_id))
		buf_addstr(&extra, ", AZURE_CLIENT_ID");
	if (p->implicit && az_set(p->secret))
		buf_addstr(&extra, ", AZURE_CLIENT_SECRET");
	if (p->implicit && az_set(p->tenant))
		buf_addstr(&extra, ", AZURE_TENANT_ID");
	if (missing.len)
		r = az_bad(u, "kms URI expected but did not receive: %s",
			   (const char *)missing.data + 2);
	else if (extra.len)
		r = az_bad(u,
			   "kms implicit auth URI does not support: %s "
			   "(use AUTH=specified, or give them in the "
			   "environment)",
			   (const char *)extra.data + 2);
	buf_release(&missing);
	buf_release(&extra);
	return r;
}

static int az_find_cloud(const struct kmsuri *u, const char *env,
			 const struct az_cloud **out)
{
	if (!az_set(env))
		env = "AzurePublicCloud";
	for (size_t i = 0; i < sizeof(az_clouds) / sizeof(az_clouds[0]); i++) {
		if (!strcasecmp(env, az_clouds[i].name)) {
			*out = &az_clouds[i];
			return 0;
		}
	}
	return az_bad(u,
		      "azure kms environment: there is no cloud "
		      "environment matching the name \"%s\" (use "
		      "AzurePublicCloud, AzureChinaCloud or "
		      "AzureUSGovernmentCloud)",
		      env);
}

/* "/{keyName}/{keyVersion}", exactly two non-empty parts. */
static int az_split_path(const struct kmsuri *u, struct az_kms *k)
{
	const char *p = u->path[0] == '/' ? u->path + 1 : u->path;
	const char *slash = strchr(p, '/');

	if (!slash || slash == p || !slash[1] || strchr(slash + 1, '/'))
		return az_bad(u, "azure kms key must be of form 'id/version'");
	k->key = strndup(p, (size_t)(slash - p));
	k->version = strdup(slash + 1);
	return k->key && k->version ? 0 : -ENOMEM;
}

static int az_vault_url(const struct kmsuri *u, const struct az_params *p,
			const struct az_cloud *cloud, struct az_kms *k)
{
	const char *o = getenv("KMSFS_AZURE_VAULT_URL");
	size_t n = strlen(p->vault);

	if (n > 63 || strspn(p->vault, AZ_LABEL_CHARS) != n)
		return az_bad(u, "AZURE_VAULT_NAME must be a vault name "
				 "(letters, digits and '-')");
	if (az_set(o)) {
		n = strlen(o);
		while (n && o[n - 1] == '/')
			n--;
		if (strncmp(o, "https://", 8) != 0 || n >= AZ_URL_MAX ||
		    strcspn(o, " \t\r\n\"<>\\^`{|}?#") < n)
			return az_bad(u, "KMSFS_AZURE_VAULT_URL must be an "
					 "https:// URL");
		k->vault = strndup(o, n);
	} else if (asprintf(&k->vault, "https://%s.%s", p->vault,
			    cloud->vault_suffix) < 0) {
		k->vault = NULL;
	}
	return k->vault ? 0 : -ENOMEM;
}

static long az_timeout(const struct kmsuri *u)
{
	const char *v = getenv("KMSFS_AZURE_TIMEOUT_MS");
	char *end;
	long t;

	if (!az_set(v))
		return AZ_TIMEOUT_DEFAULT;
	t = strtol(v, &end, 10);
	if (*end || t < 100 || t > 600000) {
		az_bad(u, "KMSFS_AZURE_TIMEOUT_MS must be 100..600000, not %s",
		       v);
		return -EINVAL;
	}
	return t;
}

static int az_make_cred(const struct az_params *p, const struct az_cloud *cloud,
			struct az_kms *k)
{
	struct az_cred_params cp = {
	    .implicit = p->implicit,
	    .tenant_id = p->tenant,
	    .client_id = p->client_id,
	    .client_secret = p->secret,
	    .authority = cloud->authority,
	    .name = k->name,
	    .timeout_ms = k->timeout_ms,
	};
	char resource[AZ_URL_MAX];

	snprintf(resource, sizeof(resource), "https://%s", cloud->vault_suffix);
	cp.resource = resource;
	return az_cred_new(&cp, &k->cred);
}

static void az_free(void *state)
{
	struct az_kms *k = state;

	if (!k)
		return;
	az_cred_free(k->cred);
	free(k->key);
	free(k->version);
	free(k->vault);
	free(k->name);
	free(k);
}

static int az_open(struct kmsuri *u, void **state_out)
{
	const struct az_cloud *cloud = NULL;
	struct az_params p = {0};
	struct az_kms *k = NULL;
	int r;

	*state_out = NULL;
	if (!strcmp(u->path, "/"))
		return az_bad(u, "path component of the KMS cannot be empty; "
				 "must contain the Customer Managed Key");
	r = az_take_params(u, &p);
	if (!r)
		r = az_check_params(u, &p);
	if (!r)
		r = az_find_cloud(u, p.env, &cloud);
	if (r)
		return r;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->name = strdup(u->redacted);
	k->timeout_ms = az_timeout(u);
	r = k->name ? az_split_path(u, k) : -ENOMEM;
	if (!r && k->timeout_ms < 0)
		r = (int)k->timeout_ms;
	if (!r)
		r = az_vault_url(u, &p, cloud, k);
	if (!r)
		r = az_make_cred(&p, cloud, k);
	if (r) {
		az_free(k);
		return r;
	}
	*state_out = k;
	return 0;
}

static const char *az_master_key_id(void *state)
{
	return ((struct az_kms *)state)->key;
}

/* --- encrypt / decrypt ------------------------------------------------- */

static int az_errno(long status, const char *code, bool decrypt)
{
	if (!strcmp(code, "KeyNotFound") || status == 404)
		return -ENOKEY;
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 429 || (status >= 500 && status <= 599))
		return -EAGAIN;
	if (status == 400)
		return decrypt ? -EBADMSG : -EINVAL;
	return -EPROTO;
}

static const char *az_hint(int r, long status)
{
	if (status == 401)
		return "; Key Vault refused the token (tenant or cloud of "
		       "the credential and the vault differ?)";
	switch (r) {
	case -EPROTO:
		return "; TLS verification or protocol failure (for a "
		       "private CA set KMSFS_CA_BUNDLE)";
	case -ENOKEY:
		return "; the key or this version does not exist in the vault";
	case -EACCES:
		return "; the identity needs the Key Vault Crypto User role "
		       "(or encrypt/decrypt access) on the key";
	case -EAGAIN:
		return "; Key Vault is throttling or unavailable, try again "
		       "later";
	case -EBADMSG:
		return "; the stored blob was not encrypted by this key "
		       "version";
	default:
		return "";
	}
}

/* One line per failed operation: redacted name, status and error code. */
static int az_op_fail(const struct az_kms *k, const char *op, int r,
		      const struct http_response *resp)
{
	char code[96];

	if (r) {
		log_err(
		    "KMS %s: Key Vault %s with key %s/%s at %s failed: %s%s",
		    k->name, op, k->key, k->version, k->vault, strerror(-r),
		    az_hint(r, 0));
		return r;
	}
	az_error_code(&resp->body, code, sizeof(code));
	r = az_errno(resp->status, code, !strcmp(op, "decrypt"));
	log_err("KMS %s: Key Vault %s with key %s/%s failed: HTTP %ld %s%s",
		k->name, op, k->key, k->version, resp->status, code,
		az_hint(r, resp->status));
	return r;
}

static int az_op_request(const struct az_kms *k, const char *op,
			 const uint8_t *in, size_t len, struct buf *url,
			 struct buf *body)
{
	int r = buf_addf(url, "%s/keys/", k->vault);

	if (!r)
		r = http_urlencode(url, k->key, strlen(k->key));
	if (!r)
		r = buf_addch(url, '/');
	if (!r)
		r = http_urlencode(url, k->version, strlen(k->version));
	if (!r)
		r = buf_addf(url, "/%s?" AZ_API, op);
	if (!r)
		r = buf_addstr(body, "{\"alg\":\"" AZ_ALG "\",\"value\":\"");
	if (!r)
		r = b64_encode(in, len, true, false, body);
	if (!r)
		r = buf_addstr(body, "\"}");
	return r;
}

/* POST with a token; a 401 drops the cached token and tries once more
 * (it may have been revoked before its expiry).  *cred_failed tells a
 * token failure (logged by cred_azure.c) from a Key Vault one. */
static int az_post(const struct az_kms *k, struct http_request *req,
		   struct http_response *resp, bool *cred_failed)
{
	struct buf hdr;
	int r;

	buf_init_secret(&hdr, AZ_TOKEN_MAX + 64);
	*cred_failed = false;
	for (int i = 0; i < 2; i++) {
		buf_reset(&hdr);
		r = az_cred_auth_header(k->cred, &hdr);
		if (r) {
			*cred_failed = true;
			break;
		}
		req->headers[0] = (const char *)hdr.data;
		r = http_do_retry(req, resp);
		if (r || resp->status != 401)
			break;
		log_debug("KMS %s: Key Vault answered 401, new token", k->name);
		az_cred_invalidate(k->cred);
	}
	buf_release(&hdr);
	return r;
}

/* The "value" of a 200 reply, decoded, appended to out. */
static int az_op_result(const struct az_kms *k, const char *op,
			const struct buf *body, struct buf *out)
{
	struct json_object *o = NULL;
	int r = json_parse((const char *)body->data, body->len, &o);

	if (!r && !json_get_str(o, "kid"))
		r = -EPROTO;
	if (!r)
		r = json_get_b64(o, "value", out);
	json_free(o);
	if (r && r != -ENOMEM) {
		log_err("KMS %s: Key Vault %s reply is malformed", k->name, op);
		r = -EPROTO;
	}
	return r;
}

/* Run op on in[0..len) and append the decoded result to out. */
static int az_op(struct az_kms *k, const char *op, const uint8_t *in,
		 size_t len, struct buf *out)
{
	struct http_request req = {
	    .method = "POST",
	    .headers = {NULL, "Content-Type: application/json",
			"Accept: application/json"},
	    .timeout_ms = k->timeout_ms,
	};
	struct http_response resp = {0};
	struct buf url, body;
	bool cred_failed;
	int r;

	buf_init(&url, AZ_URL_MAX * 2);
	buf_init_secret(&body, AZ_BODY_MAX);
	buf_init_secret(&resp.body, AZ_BODY_MAX);
	r = az_op_request(k, op, in, len, &url, &body);
	if (r)
		goto out;
	req.url = (const char *)url.data;
	req.body = &body;
	r = az_post(k, &req, &resp, &cred_failed);
	if (!r && resp.status == 200)
		r = az_op_result(k, op, &resp.body, out);
	else if (!cred_failed)
		r = az_op_fail(k, op, r, &resp);
out:
	buf_release(&url);
	buf_release(&body);
	buf_release(&resp.body);
	return r;
}

static int az_wrap(void *state, const struct secret *dk, struct buf *out)
{
	return az_op(state, "encrypt", dk->bytes, dk->len, out);
}

static int az_unwrap(void *state, const uint8_t *blob, size_t len,
		     struct secret **dk_out)
{
	struct buf pt;
	int r;

	*dk_out = NULL;
	buf_init_secret(&pt, SECRET_MAX);
	r = az_op(state, "decrypt", blob, len, &pt);
	if (!r) {
		*dk_out = secret_dup(pt.data, pt.len);
		if (!*dk_out)
			r = -ENOMEM;
	}
	buf_release(&pt);
	return r;
}

const struct ks_provider ks_provider_azure = {
    .scheme = "azure-kms",
    .aliases = NULL,
    .built = true,
    .open = az_open,
    .master_key_id = az_master_key_id,
    .wrap = az_wrap,
    .unwrap = az_unwrap,
    .free = az_free,
};
