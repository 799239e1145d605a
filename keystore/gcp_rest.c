/*
 * gcp_rest.c - conventions every Google REST call of kmsfs shares:
 * endpoints (public defaults, environment overrides), bounded retries of
 * 5xx answers, and the decoding of Google's error replies into a short
 * code and kmsfs's errno.  Error bodies are only mined for that code, so
 * a log line never carries what a server chose to echo back.
 */
#include "gcp_rest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/log.h"
#include "json.h"

/* --- options --------------------------------------------------------- */

static int gcp_env_url(const char *var, const char *def, char *out)
{
	const char *v = getenv(var);
	size_t n;

	if (!v || !*v)
		v = def;
	n = strlen(v);
	while (n && v[n - 1] == '/')
		n--;
	if (n >= GCP_URL_MAX ||
	    (strncmp(v, "https://", 8) != 0 && strncmp(v, "http://", 7) != 0)) {
		log_err("%s must be an http:// or https:// URL of at most %d "
			"characters",
			var, GCP_URL_MAX - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] <= ' ' || v[i] > '~' || v[i] == '?' || v[i] == '#') {
			log_err("%s: invalid character in URL", var);
			return -EINVAL;
		}
	}
	memcpy(out, v, n);
	out[n] = '\0';
	return http_url_check(var, out);
}

static int gcp_env_host(char *out)
{
	const char *v = getenv("GCE_METADATA_HOST");

	if (!v || !*v)
		v = "metadata.google.internal";
	if (strlen(v) > GCP_URL_MAX - 8 ||
	    strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789.-:[]") != strlen(v)) {
		log_err("GCE_METADATA_HOST must be host[:port]");
		return -EINVAL;
	}
	snprintf(out, GCP_URL_MAX, "http://%s", v);
	return http_url_check("GCE_METADATA_HOST", out);
}

int gcp_endpoints_load(struct gcp_endpoints *e)
{
	const char *t = getenv("KMSFS_GCP_TIMEOUT_MS");
	int r;

	r = gcp_env_url("KMSFS_GCP_KMS_ENDPOINT",
			"https://cloudkms.googleapis.com", e->kms);
	if (!r)
		r = gcp_env_url("KMSFS_GCP_IAM_ENDPOINT",
				"https://iamcredentials.googleapis.com",
				e->iam);
	if (!r)
		r = gcp_env_host(e->metadata);
	if (r)
		return r;
	e->timeout_ms = 10000;
	if (t && *t) {
		char *end;
		long v = strtol(t, &end, 10);

		if (*end || v < 1 || v > 600000) {
			log_err("KMSFS_GCP_TIMEOUT_MS must be 1..600000");
			return -EINVAL;
		}
		e->timeout_ms = v;
	}
	return 0;
}

/* --- REST plumbing ----------------------------------------------------- */

static void gcp_copy_code(const char *s, char *out, size_t outlen)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= outlen ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789_") != n)
		s = "-";
	snprintf(out, outlen, "%s", s);
}

void gcp_error_code(const struct buf *body, char *out, size_t outlen)
{
	struct json_object *o = NULL, *err;
	const char *s = NULL;

	if (body->len &&
	    json_parse((const char *)body->data, body->len, &o) == 0) {
		err = json_get(o, "error");
		s = json_get_str(err, "status");
		if (!s)
			s = json_get_str(o, "error");
	}
	gcp_copy_code(s, out, outlen);
	json_free(o);
}

int gcp_status_errno(long status, const char *code)
{
	if (status == 401 || status == 403)
		return -EACCES;
	if (status == 404)
		return -ENOKEY;
	if (status == 429 || (code && !strcmp(code, "RESOURCE_EXHAUSTED")))
		return -EAGAIN;
	if (status >= 500 && status <= 599)
		return -EAGAIN;
	if (status >= 400 && status <= 499)
		return -EINVAL;
	return -EPROTO;
}

int gcp_add_path(struct buf *out, const char *s)
{
	int r = 0;

	while (!r && *s) {
		size_t n = strcspn(s, "/");

		r = http_urlencode(out, s, n);
		s += n;
		if (!r && *s == '/') {
			r = buf_addch(out, '/');
			s++;
		}
	}
	return r;
}
