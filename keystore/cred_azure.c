/*
 * cred_azure.c - Entra ID tokens for Key Vault: client secret (explicit,
 * CockroachDB's credentials file, environment), workload identity, App
 * Service and VM (IMDS) managed identity.
 *
 * Design: an application identity (tenant, client id, and a secret or a
 * federated assertion) goes through the identity platform's
 * client-credentials grant; a managed identity through a local GET.  For
 * AUTH=implicit the source is chosen afresh for every fetch, so rotated
 * files and changed environments take effect at the next refresh.  Each
 * credential caches one token in a secret buffer until min(5 min, half
 * its lifetime) before expiry (azure-identity also refreshes five minutes
 * early); the lock is held across a fetch so that concurrent callers wait
 * for one refresh.  Wire formats: kms-protocols.md §3.1-3.2; the App
 * Service 2019-08-01 protocol answers expires_on (epoch seconds, a string)
 * instead of expires_in.
 */
#include "cred_azure.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../lib/log.h"
#include "../lib/secret.h"
#include "json.h"

#define AZ_IMDS_DEFAULT "http://169.254.169.254"
#define AZ_IMDS_PATH "/metadata/identity/oauth2/token"
#define AZ_IMDS_CONNECT_MS 1000L
#define AZ_REFRESH_MARGIN 300
#define AZ_MAX_LIFETIME 86400
#define AZ_ID_MAX 128
#define AZ_FILE_MAX (64u << 10)
#define AZ_ASSERTION_TYPE                                                      \
	"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define AZ_ID_CHARS                                                            \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
#define AZ_TOKEN_CHARS                                                         \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"       \
	"-._~+/="

struct az_cred {
	pthread_mutex_t lock;
	bool implicit;
	char tenant[AZ_ID_MAX];	    /* explicit auth */
	char client_id[AZ_ID_MAX];  /* explicit auth */
	struct secret *secret;	    /* explicit auth */
	char authority[AZ_URL_MAX]; /* no trailing '/' */
	char resource[AZ_URL_MAX];
	char *name;
	long timeout_ms;
	struct buf tok;	   /* secret; empty when there is none */
	time_t refresh_at; /* fetch a new one from then on */
};

/* An application identity for the client-credentials grant. */
struct az_app {
	char tenant[AZ_ID_MAX];
	char client_id[AZ_ID_MAX];
	struct buf cred; /* secret: the client secret or the assertion */
	bool assertion;
	const char *source; /* for log lines */
};

enum az_mi { AZ_MI_IMDS, AZ_MI_APP_SERVICE };

/* --- small helpers ----------------------------------------------------- */

static bool az_valid_id(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n && n < AZ_ID_MAX && strspn(s, AZ_ID_CHARS) == n;
}

/* Copy an http(s) base URL without trailing '/'; false if unusable. */
static bool az_copy_url(const char *v, bool https_only, char *out)
{
	size_t n = strlen(v);

	while (n && v[n - 1] == '/')
		n--;
	if (n >= AZ_URL_MAX || strcspn(v, " \t\r\n\"<>\\^`{|}") < n)
		return false;
	if (strncmp(v, "https://", 8) != 0 &&
	    (https_only || strncmp(v, "http://", 7) != 0))
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

static void az_copy_word(const char *s, size_t n, char *out, size_t outlen)
{
	if (!s || !n || n >= outlen ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_") < n) {
		snprintf(out, outlen, "-");
		return;
	}
	memcpy(out, s, n);
	out[n] = '\0';
}

void az_error_code(const struct buf *body, char *out, size_t outlen)
{
	struct json_object *o = NULL, *err;
	const char *code = NULL, *desc;
	char word[64], sts[32];

	snprintf(out, outlen, "-");
	if (!body->len ||
	    json_parse((const char *)body->data, body->len, &o) != 0)
		return;
	err = json_get(o, "error");
	code = json_get_str(err, "code");
	if (!code)
		code = json_get_str(o, "error");
	az_copy_word(code, code ? strlen(code) : 0, word, sizeof(word));
	desc = json_get_str(o, "error_description");
	if (desc && strncmp(desc, "AADSTS", 6) == 0) {
		az_copy_word(desc, strspn(desc, "AADSTS0123456789"), sts,
			     sizeof(sts));
		snprintf(out, outlen, "%s %s", word, sts);
	} else {
		snprintf(out, outlen, "%s", word);
	}
	json_free(o);
}

static int az_status_errno(long status)
{
	if (status == 400 || status == 401 || status == 403)
		return -EACCES; /* AADSTS errors and IMDS "Identity not found"
				 */
	if (status == 404 || status == 410 || status == 429 ||
	    (status >= 500 && status <= 599))
		return -EAGAIN; /* IMDS: identity not there yet / upgrading */
	return -EPROTO;
}

/* One line for a failed token request; the body is only mined for the
 * error code.  Returns the errno to pass on. */
static int az_fail(const struct az_cred *c, const char *source, const char *url,
		   int r, const struct http_response *resp)
{
	bool imds = strstr(url, AZ_IMDS_PATH) != NULL;
	char code[96];
	int qlen = (int)strcspn(url, "?");

	if (r) {
		log_err("KMS %s: Azure token request (%s) to %.*s failed: %s%s",
			c->name, source, qlen, url, strerror(-r),
			imds && r == -ETIMEDOUT
			    ? "; no Azure credentials were found in the "
			      "environment and no managed identity "
			      "endpoint answered"
			: r == -EPROTO
			    ? "; TLS verification or protocol failure "
			      "(for a private CA set KMSFS_CA_BUNDLE)"
			    : "");
		return r;
	}
	az_error_code(&resp->body, code, sizeof(code));
	r = az_status_errno(resp->status);
	log_err("KMS %s: Azure token request (%s) to %.*s failed: HTTP %ld "
		"%s%s",
		c->name, source, qlen, url, resp->status, code,
		r == -EACCES ? "; check the tenant, client id and secret or "
			       "the identity assigned to this machine"
			     : "");
	return r;
}

/* --- the token cache --------------------------------------------------- */

static int az_token_lifetime(struct json_object *o, time_t now, int64_t *out)
{
	int64_t v;
	int r = json_get_int64(o, "expires_in", &v);

	if (r == -ENOENT) {
		r = json_get_int64(o, "expires_on", &v);
		v -= now;
	}
	if (r || v <= 0)
		return -EPROTO;
	*out = v > AZ_MAX_LIFETIME ? AZ_MAX_LIFETIME : v;
	return 0;
}

/* Take the token out of a 200 reply into the cache. */
static int az_store_token(struct az_cred *c, const struct buf *body)
{
	struct json_object *o = NULL;
	const char *tok, *type;
	time_t now = http_now();
	int64_t life, margin;
	size_t n;
	int r = json_parse((const char *)body->data, body->len, &o);

	if (r)
		goto out;
	r = -EPROTO;
	tok = json_get_str(o, "access_token");
	type = json_get_str(o, "token_type");
	n = tok ? strlen(tok) : 0;
	if (!n || n > AZ_TOKEN_MAX || strspn(tok, AZ_TOKEN_CHARS) != n ||
	    (type && strcasecmp(type, "Bearer") != 0))
		goto out;
	if (az_token_lifetime(o, now, &life))
		goto out;
	buf_reset(&c->tok);
	r = buf_add(&c->tok, tok, n);
	margin = life / 2 < AZ_REFRESH_MARGIN ? life / 2 : AZ_REFRESH_MARGIN;
	c->refresh_at = now + (time_t)(life - margin);
out:
	json_free(o);
	return r;
}

/* --- client credentials grant ----------------------------------------- */

static int az_app_form(const struct az_cred *c, const struct az_app *app,
		       struct buf *form)
{
	int r = buf_addstr(form, "client_id=");

	if (!r)
		r = http_urlencode(form, app->client_id,
				   strlen(app->client_id));
	if (!r)
		r = buf_addstr(form, "&scope=");
	if (!r)
		r = http_urlencode(form, c->resource, strlen(c->resource));
	if (!r)
		r = buf_addstr(form,
			       "%2F.default&grant_type=client_credentials");
	if (!r && app->assertion)
		r = buf_addstr(form, "&client_assertion_type="
				     "urn%3Aietf%3Aparams%3Aoauth%3Aclient-"
				     "assertion-type%3Ajwt-bearer"
				     "&client_assertion=");
	else if (!r)
		r = buf_addstr(form, "&client_secret=");
	if (!r)
		r = http_urlencode(form, (const char *)app->cred.data,
				   app->cred.len);
	return r;
}

static int az_token_app(struct az_cred *c, const struct az_app *app)
{
	struct http_request req = {
	    .method = "POST",
	    .headers = {"Content-Type: application/x-www-form-urlencoded",
			"Accept: application/json"},
	    .timeout_ms = c->timeout_ms,
	};
	struct http_response resp = {0};
	struct buf url, form;
	int r;

	buf_init(&url, AZ_URL_MAX * 2);
	buf_init_secret(&form, AZ_BODY_MAX);
	buf_init_secret(&resp.body, AZ_BODY_MAX);
	r = buf_addf(&url, "%s/%s/oauth2/v2.0/token", c->authority,
		     app->tenant);
	if (!r)
		r = az_app_form(c, app, &form);
	if (r)
		goto out;
	req.url = (const char *)url.data;
	req.body = &form;
	r = http_do_retry(&req, &resp);
	if (!r && resp.status == 200)
		r = az_store_token(c, &resp.body);
	else
		r = az_fail(c, app->source, req.url, r, &resp);
	if (r == -EPROTO && resp.status == 200)
		log_err("KMS %s: Azure token reply (%s) from %s is malformed",
			c->name, app->source, req.url);
out:
	buf_release(&url);
	buf_release(&form);
	buf_release(&resp.body);
	return r;
}

/* --- managed identity -------------------------------------------------- */

static int az_mi_url(const struct az_cred *c, enum az_mi kind, const char *base,
		     struct buf *url)
{
	const char *uai = getenv("AZURE_CLIENT_ID");
	int r;

	if (kind == AZ_MI_IMDS)
		r = buf_addf(url,
			     "%s" AZ_IMDS_PATH "?api-version=2018-02-01"
			     "&resource=",
			     base);
	else
		r = buf_addf(url, "%s?api-version=2019-08-01&resource=", base);
	if (!r)
		r = http_urlencode(url, c->resource, strlen(c->resource));
	if (!r && uai && *uai) {
		r = buf_addstr(url, "&client_id=");
		if (!r)
			r = http_urlencode(url, uai, strlen(uai));
	}
	return r;
}

/* Where the managed identity endpoint is; -EINVAL (logged) if the
 * override is not an http(s) URL. */
static int az_mi_base(const struct az_cred *c, enum az_mi kind, char *base)
{
	const char *var = kind == AZ_MI_IMDS
			      ? "AZURE_POD_IDENTITY_AUTHORITY_HOST"
			      : "IDENTITY_ENDPOINT";
	const char *v = getenv(var);

	if (kind == AZ_MI_IMDS && (!v || !*v))
		v = AZ_IMDS_DEFAULT;
	if (az_copy_url(v, false, base))
		return http_url_check(var, base);
	log_err("KMS %s: %s must be an http:// or https:// URL", c->name, var);
	return -EINVAL;
}

/* "X-IDENTITY-HEADER: <IDENTITY_HEADER>", refusing control characters
 * that would smuggle in other headers. */
static int az_identity_header(const struct az_cred *c, struct buf *hdr)
{
	const char *v = getenv("IDENTITY_HEADER");
	size_t n = v ? strlen(v) : 0;

	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			log_err("KMS %s: IDENTITY_HEADER holds control "
				"characters",
				c->name);
			return -EINVAL;
		}
	}
	return buf_addf(hdr, "X-IDENTITY-HEADER: %s", v ? v : "");
}

static int az_token_mi(struct az_cred *c, enum az_mi kind)
{
	const char *what = kind == AZ_MI_IMDS ? "managed identity (IMDS)"
					      : "App Service managed identity";
	struct http_request req = {.method = "GET",
				   .timeout_ms = c->timeout_ms};
	struct http_response resp = {0};
	struct buf url, hdr;
	char base[AZ_URL_MAX];
	int r;

	buf_init(&url, AZ_URL_MAX * 2);
	buf_init_secret(&hdr, AZ_URL_MAX);
	buf_init_secret(&resp.body, AZ_BODY_MAX);
	r = az_mi_base(c, kind, base);
	if (!r)
		r = az_mi_url(c, kind, base, &url);
	if (!r && kind == AZ_MI_APP_SERVICE)
		r = az_identity_header(c, &hdr);
	else if (!r)
		r = buf_addstr(&hdr, "Metadata: true");
	if (r)
		goto out;
	req.url = (const char *)url.data;
	req.headers[0] = (const char *)hdr.data;
	req.headers[1] = "Accept: application/json";
	if (kind == AZ_MI_IMDS)
		req.connect_timeout_ms = AZ_IMDS_CONNECT_MS;
	r = http_do_retry(&req, &resp);
	if (!r && resp.status == 200)
		r = az_store_token(c, &resp.body);
	else
		r = az_fail(c, what, req.url, r, &resp);
	if (r == -EPROTO && resp.status == 200)
		log_err("KMS %s: Azure token reply (%s) is malformed", c->name,
			what);
out:
	buf_release(&url);
	buf_release(&hdr);
	buf_release(&resp.body);
	return r;
}

/* --- implicit sources -------------------------------------------------- */

/* "key: value" with optional quotes; NULL value if the line is not one. */
static void az_yaml_line(char *line, char **key, char **val)
{
	char *colon = strchr(line, ':'), *end;

	*key = *val = NULL;
	if (!colon)
		return;
	*colon = '\0';
	*key = line + strspn(line, " \t");
	end = *key + strcspn(*key, " \t");
	*end = '\0';
	*val = colon + 1 + strspn(colon + 1, " \t");
	end = *val + strlen(*val);
	while (end > *val && strchr(" \t\r", end[-1]))
		*--end = '\0';
	if (end - *val >= 2 && (**val == '"' || **val == '\'') &&
	    end[-1] == **val) {
		end[-1] = '\0';
		(*val)++;
	} else if ((end = strstr(*val, " #"))) {
		*end = '\0';
	}
}

static int az_yaml_take(struct az_app *app, const char *key, const char *val)
{
	if (!strcmp(key, "azure_tenant_id") && strlen(val) < AZ_ID_MAX) {
		snprintf(app->tenant, sizeof(app->tenant), "%s", val);
		return 0;
	}
	if (!strcmp(key, "azure_client_id") && strlen(val) < AZ_ID_MAX) {
		snprintf(app->client_id, sizeof(app->client_id), "%s", val);
		return 0;
	}
	if (!strcmp(key, "azure_client_secret")) {
		buf_reset(&app->cred);
		return buf_addstr(&app->cred, val);
	}
	return -EINVAL;
}

/* CockroachDB's credentials file: the flat YAML mapping it writes (its
 * parser is strict: unknown fields are errors, all three are required). */
static int az_app_from_file(const char *path, struct az_app *app,
			    const char **why)
{
	struct buf f;
	char *line, *next, *key, *val;
	int r;

	buf_init_secret(&f, AZ_FILE_MAX);
	r = buf_read_file(&f, path);
	*why = r ? strerror(-r) : "not a credentials file";
	for (line = (char *)f.data; !r && line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (!line[strspn(line, " \t\r")] || line[0] == '#' ||
		    !strcmp(line, "---"))
			continue;
		az_yaml_line(line, &key, &val);
		r = key ? az_yaml_take(app, key, val) : -EINVAL;
	}
	if (!r && (!app->tenant[0] || !app->client_id[0] || !app->cred.len)) {
		*why = "azure_tenant_id, azure_client_id and "
		       "azure_client_secret are all required";
		r = -EINVAL;
	}
	buf_release(&f);
	app->source = "credentials file";
	return r;
}

static bool az_env_set(const char *name)
{
	const char *v = getenv(name);

	return v && *v;
}

/* The federated token (a JWT from the platform), trimmed. */
static int az_read_assertion(const char *path, struct buf *out)
{
	int r = buf_read_file(out, path);

	while (!r && out->len && strchr(" \t\r\n", out->data[out->len - 1]))
		out->data[--out->len] = '\0';
	if (!r && !out->len)
		r = -EINVAL;
	return r;
}

/* Fill app from the first configured application source; returns 1 if
 * none is configured (managed identity is next), 0, or -errno (logged). */
static int az_pick_app(const struct az_cred *c, struct az_app *app)
{
	const char *file =
	    getenv("COCKROACH_AZURE_APPLICATION_CREDENTIALS_FILE");
	const char *why;
	int r;

	if (file && *file) {
		if (az_app_from_file(file, app, &why) == 0)
			return 0;
		log_warn("KMS %s: ignoring Azure credentials file %s: %s",
			 c->name, file, why);
		buf_reset(&app->cred);
	}
	if (!az_env_set("AZURE_TENANT_ID") || !az_env_set("AZURE_CLIENT_ID"))
		return 1;
	snprintf(app->tenant, sizeof(app->tenant), "%s",
		 getenv("AZURE_TENANT_ID"));
	snprintf(app->client_id, sizeof(app->client_id), "%s",
		 getenv("AZURE_CLIENT_ID"));
	if (az_env_set("AZURE_CLIENT_SECRET")) {
		app->source = "environment client secret";
		return buf_addstr(&app->cred, getenv("AZURE_CLIENT_SECRET"));
	}
	if (!az_env_set("AZURE_FEDERATED_TOKEN_FILE"))
		return 1;
	app->source = "workload identity";
	app->assertion = true;
	file = getenv("AZURE_FEDERATED_TOKEN_FILE");
	r = az_read_assertion(file, &app->cred);
	if (r)
		log_err(
		    "KMS %s: cannot read the workload identity token %s: %s",
		    c->name, file, strerror(-r));
	return r;
}

static int az_fetch_app(struct az_cred *c, struct az_app *app)
{
	if (!az_valid_id(app->tenant) || !az_valid_id(app->client_id)) {
		log_err("KMS %s: Azure %s: the tenant and client id must be "
			"GUIDs or domain names",
			c->name, app->source);
		return -EINVAL;
	}
	return az_token_app(c, app);
}

static int az_fetch(struct az_cred *c)
{
	struct az_app app = {.source = "client secret"};
	int r;

	buf_init_secret(&app.cred, AZ_FILE_MAX);
	if (!c->implicit) {
		memcpy(app.tenant, c->tenant, sizeof(app.tenant));
		memcpy(app.client_id, c->client_id, sizeof(app.client_id));
		r = buf_add(&app.cred, c->secret->bytes, c->secret->len);
	} else {
		r = az_pick_app(c, &app);
	}
	if (r == 0)
		r = az_fetch_app(c, &app);
	else if (r == 1 && az_env_set("IDENTITY_ENDPOINT") &&
		 az_env_set("IDENTITY_HEADER"))
		r = az_token_mi(c, AZ_MI_APP_SERVICE);
	else if (r == 1)
		r = az_token_mi(c, AZ_MI_IMDS);
	buf_release(&app.cred);
	return r;
}

/* --- public API -------------------------------------------------------- */

static int az_cred_fill(struct az_cred *c, const struct az_cred_params *p)
{
	const char *host = getenv("AZURE_AUTHORITY_HOST");

	if (!host || !*host)
		host = p->authority;
	if (!az_copy_url(host, true, c->authority)) {
		log_err("KMS %s: AZURE_AUTHORITY_HOST must be an https:// URL",
			p->name);
		return -EINVAL;
	}
	if (!az_copy_url(p->resource, true, c->resource))
		return -EINVAL;
	if (p->implicit)
		return 0;
	if (!az_valid_id(p->tenant_id) || !az_valid_id(p->client_id)) {
		log_err("KMS %s: AZURE_TENANT_ID and AZURE_CLIENT_ID must be "
			"GUIDs or domain names",
			p->name);
		return -EINVAL;
	}
	snprintf(c->tenant, sizeof(c->tenant), "%s", p->tenant_id);
	snprintf(c->client_id, sizeof(c->client_id), "%s", p->client_id);
	c->secret = secret_dup((const uint8_t *)p->client_secret,
			       strlen(p->client_secret));
	if (!c->secret) {
		log_err("KMS %s: AZURE_CLIENT_SECRET is longer than %d bytes",
			p->name, SECRET_MAX);
		return -EINVAL;
	}
	return 0;
}

int az_cred_new(const struct az_cred_params *p, struct az_cred **out)
{
	struct az_cred *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	buf_init_secret(&c->tok, AZ_TOKEN_MAX);
	c->implicit = p->implicit;
	c->timeout_ms = p->timeout_ms;
	c->name = strdup(p->name);
	r = c->name ? az_cred_fill(c, p) : -ENOMEM;
	if (r) {
		az_cred_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void az_cred_free(struct az_cred *c)
{
	if (!c)
		return;
	buf_release(&c->tok);
	secret_free(c->secret);
	pthread_mutex_destroy(&c->lock);
	free(c->name);
	free(c);
}

int az_cred_auth_header(struct az_cred *c, struct buf *hdr)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	if (!c->tok.len || http_now() >= c->refresh_at) {
		buf_reset(&c->tok);
		r = az_fetch(c);
	}
	if (!r)
		r = buf_addstr(hdr, "Authorization: Bearer ");
	if (!r)
		r = buf_add(hdr, c->tok.data, c->tok.len);
	pthread_mutex_unlock(&c->lock);
	return r;
}

void az_cred_invalidate(struct az_cred *c)
{
	pthread_mutex_lock(&c->lock);
	buf_reset(&c->tok);
	pthread_mutex_unlock(&c->lock);
}
