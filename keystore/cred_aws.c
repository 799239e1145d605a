/*
 * cred_aws.c - AWS credentials: the URI's keys or the SDKs' implicit
 * chain, then CockroachDB's ASSUME_ROLE chain, cached until 5 minutes
 * before they expire.
 *
 * The implicit chain follows botocore 1.29's order (environment, web
 * identity, shared credentials file, config file, container endpoint,
 * IMDSv2).  A source that is not configured passes to the next; a source
 * that is configured but fails stops the chain, as the SDKs do.  IMDS
 * that does not answer within 1 s means "not on EC2".  Profiles that need
 * more than static keys (role_arn, credential_process, SSO) are refused
 * with a message rather than silently skipped.  STS calls are in
 * cred_aws_sts.c.  Every secret (secret key, session token,
 * web identity token, container token, request bodies with tokens) is
 * held in a struct secret or a secret buf.
 */
#include "cred_aws.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/log.h"
#include "cred_aws_sts.h"
#include "http.h"
#include "json.h"

#define IMDS_TIMEOUT_MS 1000L
#define ECS_TIMEOUT_MS 2000L

struct aws_role {
	char *arn;
	char *external_id; /* NULL if none */
};

struct aws_cred {
	bool implicit;
	char *region;
	char *sts_url;
	struct aws_creds spec;	/* AUTH=specified */
	struct aws_creds base;	/* implicit chain result */
	struct aws_creds final; /* what callers get */
	struct aws_role roles[AWS_MAX_ROLES];
	size_t nroles;
};

/* --- small helpers ---------------------------------------------------- */

void aws_creds_init(struct aws_creds *c)
{
	memset(c, 0, sizeof(*c));
	buf_init_secret(&c->token, 0);
}

void aws_creds_release(struct aws_creds *c)
{
	free(c->access_key_id);
	secret_free(c->secret_key);
	buf_release(&c->token);
	aws_creds_init(c);
}

int aws_creds_set(struct aws_creds *c, const char *akid, const char *sk,
		  size_t sklen, const char *tok, size_t toklen,
		  const char *source)
{
	aws_creds_release(c);
	c->source = source;
	c->access_key_id = strdup(akid);
	c->secret_key = secret_dup((const uint8_t *)sk, sklen);
	if (!c->access_key_id || !c->secret_key ||
	    (tok && buf_add(&c->token, tok, toklen))) {
		aws_creds_release(c);
		return -ENOMEM;
	}
	return 0;
}

static int creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	int r = aws_creds_set(
	    dst, src->access_key_id, (const char *)src->secret_key->bytes,
	    src->secret_key->len, (const char *)src->token.data, src->token.len,
	    src->source);

	dst->expires = src->expires;
	return r;
}

static bool creds_fresh(const struct aws_creds *c)
{
	if (!c->access_key_id)
		return false;
	return !c->expires || http_now() < c->expires - AWS_REFRESH_EARLY;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

void aws_clean_copy(char *dst, size_t n, const char *s, size_t len)
{
	size_t i = 0;

	for (size_t j = 0; s && j < len && s[j] && i + 1 < n; j++)
		dst[i++] = (s[j] >= 0x20 && s[j] < 0x7f) ? s[j] : '?';
	dst[i] = '\0';
}

const char *aws_net_reason(int r)
{
	switch (r) {
	case -ETIMEDOUT:
		return "no answer (refused, unreachable or timed out)";
	case -EPROTO:
		return "TLS verification or HTTP protocol failure (a private "
		       "CA needs KMSFS_CA_BUNDLE)";
	case -E2BIG:
		return "reply too large";
	default:
		return strerror(-r);
	}
}

int aws_parse_time(const char *s, time_t *out)
{
	struct tm tm = {0};
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);

	if (!p)
		return -EPROTO;
	if (*p == '.')
		while (isdigit((unsigned char)*++p))
			;
	if (strcmp(p, "Z") && strcmp(p, "+00:00") && strcmp(p, "+0000"))
		return -EPROTO;
	*out = timegm(&tm);
	return 0;
}

int aws_endpoint_base(const char *endpoint, char **out)
{
	bool scheme = strstr(endpoint, "://") != NULL;
	size_t n = strlen(endpoint);
	int len;

	while (n && endpoint[n - 1] == '/')
		n--;
	len =
	    asprintf(out, "%s%.*s", scheme ? "" : "https://", (int)n, endpoint);
	return len < 0 ? -ENOMEM : 0;
}

/* --- implicit sources ------------------------------------------------- */

static int src_env(const struct aws_cred *ac, struct aws_creds *out)
{
	const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");
	const char *tk = env_nonempty("AWS_SESSION_TOKEN");
	const char *ex = env_nonempty("AWS_CREDENTIAL_EXPIRATION");
	int r;

	(void)ac;
	if (!tk)
		tk = env_nonempty("AWS_SECURITY_TOKEN");
	if (!ak && !sk)
		return -ENOENT;
	if (!ak || !sk) {
		log_err("aws credentials: only one of AWS_ACCESS_KEY_ID and "
			"AWS_SECRET_ACCESS_KEY is set in the environment");
		return -EACCES;
	}
	r = aws_creds_set(out, ak, sk, strlen(sk), tk, tk ? strlen(tk) : 0,
			  "env");
	if (!r && ex && aws_parse_time(ex, &out->expires))
		out->expires = 0;
	return r;
}

static int src_web_identity(const struct aws_cred *ac, struct aws_creds *out)
{
	const char *file = env_nonempty("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = env_nonempty("AWS_ROLE_ARN");
	const char *sess = env_nonempty("AWS_ROLE_SESSION_NAME");
	struct aws_sts sts = {ac->sts_url, ac->region};
	struct buf tok;
	char name[32];
	int r;

	if (!file || !arn)
		return -ENOENT;
	if (!sess) {
		snprintf(name, sizeof(name), "kmsfs-%lld",
			 (long long)http_now());
		sess = name;
	}
	buf_init_secret(&tok, 16384);
	r = buf_read_file(&tok, file);
	if (r) {
		log_err("aws web identity: cannot read the token file %s: %s",
			file, strerror(-r));
		r = r == -ENOMEM ? r : -EACCES;
		goto out;
	}
	while (tok.len && isspace(tok.data[tok.len - 1]))
		tok.data[--tok.len] = '\0';
	r = aws_sts_web_identity(&sts, arn, sess, (const char *)tok.data,
				 tok.len, out);
out:
	buf_release(&tok);
	return r;
}

/* Does the INI line (trimmed) open section sect?  cfg: "[profile x]". */
static bool ini_is_section(const char *l, size_t n, const char *sect, bool cfg)
{
	size_t sl = strlen(sect);

	if (n < 2 || l[0] != '[' || l[n - 1] != ']')
		return false;
	l++;
	n -= 2;
	while (n && isspace((unsigned char)*l))
		l++, n--;
	while (n && isspace((unsigned char)l[n - 1]))
		n--;
	if (cfg && n > 8 && !strncmp(l, "profile", 7) && isspace(l[7])) {
		l += 8;
		n -= 8;
		while (n && isspace((unsigned char)*l))
			l++, n--;
	} else if (cfg && strcmp(sect, "default")) {
		return false;
	}
	return n == sl && !memcmp(l, sect, n);
}

/* Value of key in [sect] of an INI text; -ENOENT if absent.  *found is
 * set when the section exists. */
static int ini_get(const struct buf *file, const char *sect, bool cfg,
		   const char *key, struct buf *val, bool *found)
{
	const char *p = (const char *)file->data, *end = p + file->len;
	bool in = false;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *eq;
		size_t n;

		while (p < e && isspace((unsigned char)*p))
			p++;
		n = (size_t)(e - p);
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n && p[0] == '[') {
			in = ini_is_section(p, n, sect, cfg);
			*found |= in;
		} else if (in && n && p[0] != '#' && p[0] != ';' &&
			   (eq = memchr(p, '=', n))) {
			size_t kl = (size_t)(eq - p);

			while (kl && isspace((unsigned char)p[kl - 1]))
				kl--;
			eq++;
			while (eq < p + n && isspace((unsigned char)*eq))
				eq++;
			if (kl == strlen(key) && !memcmp(p, key, kl))
				return buf_add(val, eq, (size_t)(p + n - eq));
		}
		p = e + 1;
	}
	return -ENOENT;
}

static int ini_creds(const struct buf *file, const char *profile, bool cfg,
		     const char *path, struct aws_creds *out, bool *found)
{
	static const char *const unsup[] = {"role_arn", "credential_process",
					    "sso_start_url", "sso_session",
					    "web_identity_token_file"};
	struct buf ak, sk, tk, tmp;
	int r, rs;

	buf_init_secret(&ak, 256);
	buf_init_secret(&sk, SECRET_MAX);
	buf_init_secret(&tk, AWS_CRED_BODY_MAX);
	buf_init_secret(&tmp, AWS_CRED_BODY_MAX);
	r = ini_get(file, profile, cfg, "aws_access_key_id", &ak, found);
	rs = ini_get(file, profile, cfg, "aws_secret_access_key", &sk, found);
	ini_get(file, profile, cfg, "aws_session_token", &tk, found);
	if (!r && !rs && ak.len && sk.len) {
		r = aws_creds_set(
		    out, (const char *)ak.data, (const char *)sk.data, sk.len,
		    (const char *)tk.data, tk.len,
		    cfg ? "config-file" : "shared-credentials-file");
		goto out;
	}
	r = -ENOENT;
	for (size_t i = 0; i < sizeof(unsup) / sizeof(unsup[0]) && *found;
	     i++) {
		if (ini_get(file, profile, cfg, unsup[i], &tmp, found) == 0) {
			log_err("aws credentials: profile %s in %s uses %s, "
				"which kmsfs does not support; use static "
				"keys, web identity env or ASSUME_ROLE",
				profile, path, unsup[i]);
			r = -ENOTSUP;
			break;
		}
	}
out:
	buf_release(&ak);
	buf_release(&sk);
	buf_release(&tk);
	buf_release(&tmp);
	return r;
}

static int src_file(const char *env, const char *dflt, bool cfg,
		    const char *profile, struct aws_creds *out, bool *found)
{
	const char *home = getenv("HOME");
	const char *path = env_nonempty(env);
	char defpath[4096];
	struct buf file;
	int r;

	if (!path) {
		if (!home)
			return -ENOENT;
		snprintf(defpath, sizeof(defpath), "%s/.aws/%s", home, dflt);
		path = defpath;
	}
	buf_init_secret(&file, 1u << 20);
	r = buf_read_file(&file, path);
	if (r == -ENOENT) {
		buf_release(&file);
		return -ENOENT;
	}
	if (r) {
		log_err("aws credentials: cannot read %s: %s", path,
			strerror(-r));
		buf_release(&file);
		return -EINVAL;
	}
	r = ini_creds(&file, profile, cfg, path, out, found);
	buf_release(&file);
	return r;
}

static int src_shared_files(const struct aws_cred *ac, struct aws_creds *out)
{
	const char *profile = env_nonempty("AWS_PROFILE");
	bool explicit, found = false;
	int r;

	(void)ac;
	if (!profile)
		profile = env_nonempty("AWS_DEFAULT_PROFILE");
	explicit = profile != NULL;
	if (!profile)
		profile = "default";
	r = src_file("AWS_SHARED_CREDENTIALS_FILE", "credentials", false,
		     profile, out, &found);
	if (r == -ENOENT)
		r = src_file("AWS_CONFIG_FILE", "config", true, profile, out,
			     &found);
	if (r == -ENOENT && explicit && !found) {
		log_err("aws credentials: profile %s (AWS_PROFILE) is in "
			"neither the shared credentials nor the config file",
			profile);
		r = -EACCES;
	}
	return r;
}

static int creds_from_json(const struct buf *body, const char *source,
			   struct aws_creds *out)
{
	struct json_object *o = NULL;
	const char *ak, *sk, *tk, *ex, *code;
	int r = json_parse((const char *)body->data, body->len, &o);

	if (r)
		return r;
	ak = json_get_str(o, "AccessKeyId");
	sk = json_get_str(o, "SecretAccessKey");
	tk = json_get_str(o, "Token");
	ex = json_get_str(o, "Expiration");
	code = json_get_str(o, "Code");
	r = -EPROTO;
	if (ak && *ak && sk && *sk && strlen(sk) <= SECRET_MAX &&
	    (!code || !strcmp(code, "Success")))
		r = aws_creds_set(out, ak, sk, strlen(sk), tk,
				  tk ? strlen(tk) : 0, source);
	if (!r && ex && aws_parse_time(ex, &out->expires))
		r = -EPROTO;
	if (r)
		aws_creds_release(out);
	if (r == -EPROTO)
		log_err("aws credentials from %s: malformed reply", source);
	json_free(o);
	return r;
}

/* http, or only loopback / the ECS and EKS agent addresses (as the SDKs
 * allow for AWS_CONTAINER_CREDENTIALS_FULL_URI). */
static bool container_url_ok(const char *url)
{
	static const char *const ok[] = {"127.0.0.1",	   "localhost",
					 "[::1]",	   "169.254.170.2",
					 "169.254.170.23", "[fd00:ec2::23]"};
	char host[256], *colon;
	const char *path;

	if (sigv4_url_split(url, host, sizeof(host), &path))
		return false;
	if (!strncmp(url, "https://", 8))
		return true;
	colon = strrchr(host, ':');
	if (colon && (host[0] != '[' || colon[-1] == ']'))
		*colon = '\0';
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (!strcmp(host, ok[i]))
			return true;
	return !strncmp(host, "127.", 4);
}

static int container_auth(struct buf *hdr)
{
	const char *file =
	    env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tok = env_nonempty("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	struct buf t;
	int r;

	if (!file)
		return tok ? buf_addf(hdr, "Authorization: %s", tok) : 0;
	buf_init_secret(&t, 16384);
	r = buf_read_file(&t, file);
	while (!r && t.len && isspace(t.data[t.len - 1]))
		t.data[--t.len] = '\0';
	if (r)
		log_err("aws container credentials: cannot read %s: %s", file,
			strerror(-r));
	else
		r = buf_addf(hdr, "Authorization: %s", (const char *)t.data);
	buf_release(&t);
	return r ? -EACCES : 0;
}

static int src_container(const struct aws_cred *ac, struct aws_creds *out)
{
	const char *rel =
	    env_nonempty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_nonempty("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	struct http_request rq = {.method = "GET",
				  .timeout_ms = ECS_TIMEOUT_MS,
				  .connect_timeout_ms = ECS_TIMEOUT_MS};
	struct http_response rs = {0};
	struct buf auth;
	char *url = NULL;
	int r;

	(void)ac;
	if (!rel && !full)
		return -ENOENT;
	if (rel)
		r = asprintf(&url, "http://169.254.170.2%s", rel) < 0 ? -ENOMEM
								      : 0;
	else
		r = (url = strdup(full)) ? 0 : -ENOMEM;
	if (r)
		return r;
	buf_init_secret(&auth, 16400);
	buf_init_secret(&rs.body, AWS_CRED_BODY_MAX);
	if (!rel && !container_url_ok(url)) {
		log_err("aws container credentials: "
			"AWS_CONTAINER_CREDENTIALS_FULL_URI must be https or a "
			"loopback/ECS agent address");
		r = -EINVAL;
		goto out;
	}
	r = container_auth(&auth);
	if (r)
		goto out;
	rq.url = url;
	rq.headers[0] = auth.len ? (const char *)auth.data : NULL;
	r = http_do(&rq, &rs);
	if (r)
		log_err("aws container credentials: %s", aws_net_reason(r));
	else if (rs.status != 200)
		log_err("aws container credentials: HTTP %ld", rs.status);
	if (!r && rs.status != 200)
		r = -EACCES;
	if (!r)
		r = creds_from_json(&rs.body, "container", out);
out:
	free(url);
	buf_release(&auth);
	buf_release(&rs.body);
	return r;
}

/* One IMDS exchange; hdr is the token header (or the TTL request). */
static int imds_do(const char *base, const char *method, const char *path,
		   const char *hdr, struct buf *body)
{
	struct http_request rq = {.method = method,
				  .timeout_ms = IMDS_TIMEOUT_MS,
				  .connect_timeout_ms = IMDS_TIMEOUT_MS};
	struct http_response rs = {.body = *body};
	char url[512];
	int r;

	snprintf(url, sizeof(url), "%s%s", base, path);
	rq.url = url;
	rq.headers[0] = hdr;
	r = http_do(&rq, &rs);
	*body = rs.body;
	if (!r && rs.status != 200) {
		log_debug("aws imds: %s %s: HTTP %ld", method, path, rs.status);
		r = rs.status == 404 ? -ENOENT : -EACCES;
	}
	return r;
}

static bool imds_role_ok(const struct buf *role)
{
	if (!role->len || role->len > 128)
		return false;
	for (size_t i = 0; i < role->len; i++)
		if (!isalnum(role->data[i]) &&
		    !strchr("+=,.@_-", role->data[i]))
			return false;
	return true;
}

static int imds_fetch(const char *base, struct buf *tokhdr,
		      struct aws_creds *out)
{
	static const char cpath[] =
	    "/latest/meta-data/iam/security-credentials/";
	struct buf role, body;
	char path[256];
	int r;

	buf_init(&role, 4096);
	buf_init_secret(&body, AWS_CRED_BODY_MAX);
	r = imds_do(base, "GET", cpath, (const char *)tokhdr->data, &role);
	if (r)
		goto out;
	role.len = strcspn((const char *)role.data, "\r\n");
	role.data[role.len] = '\0';
	if (!imds_role_ok(&role)) {
		r = -EPROTO;
		goto out;
	}
	snprintf(path, sizeof(path), "%s%s", cpath, (const char *)role.data);
	r = imds_do(base, "GET", path, (const char *)tokhdr->data, &body);
	if (!r)
		r = creds_from_json(&body, "imds", out);
out:
	buf_release(&role);
	buf_release(&body);
	return r;
}

static int src_imds(const struct aws_cred *ac, struct aws_creds *out)
{
	const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
	const char *ep = env_nonempty("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	struct buf tok, hdr;
	char base[256];
	size_t n;
	int r;

	(void)ac;
	if (dis && !strcasecmp(dis, "true"))
		return -ENOENT;
	r = ep ? http_url_check("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep) : 0;
	if (r)
		return r;
	snprintf(base, sizeof(base), "%s", ep ? ep : "http://169.254.169.254");
	n = strlen(base);
	while (n && base[n - 1] == '/')
		base[--n] = '\0';
	buf_init_secret(&tok, 4096);
	buf_init_secret(&hdr, 4200);
	r = imds_do(base, "PUT", "/latest/api/token",
		    "X-aws-ec2-metadata-token-ttl-seconds: 21600", &tok);
	if (r) {
		/* Not on EC2 (or IMDSv2 off): the chain ends here. */
		log_debug("aws imds: no token: %s", strerror(-r));
		r = -ENOENT;
		goto out;
	}
	r = buf_addf(&hdr, "X-aws-ec2-metadata-token: %s",
		     (const char *)tok.data);
	if (!r)
		r = imds_fetch(base, &hdr, out);
	if (r)
		log_err("aws imds credentials: %s", aws_net_reason(r));
out:
	buf_release(&tok);
	buf_release(&hdr);
	return r;
}

/* --- the chain -------------------------------------------------------- */

static int implicit_chain(const struct aws_cred *ac, struct aws_creds *out)
{
	static int (*const src[])(const struct aws_cred *,
				  struct aws_creds *) = {
	    src_env, src_web_identity, src_shared_files, src_container,
	    src_imds};
	int r = -ENOENT;

	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]) && r == -ENOENT;
	     i++)
		r = src[i](ac, out);
	if (r)
		aws_creds_release(out);
	if (r == -ENOENT) {
		log_err("aws credentials: AUTH=implicit found none (checked "
			"the environment, web identity, shared credentials "
			"and config files, container endpoint, EC2 IMDS)");
		r = -EACCES;
	}
	if (!r)
		log_debug("aws credentials: using %s", out->source);
	return r;
}

static int role_chain(const struct aws_cred *ac, const struct aws_creds *src,
		      struct aws_creds *out)
{
	struct aws_sts sts = {ac->sts_url, ac->region};
	struct aws_creds cur, next;
	int r;

	aws_creds_init(&cur);
	aws_creds_init(&next);
	r = creds_copy(&cur, src);
	for (size_t i = 0; i < ac->nroles && !r; i++) {
		r = aws_sts_assume_role(&sts, &cur, ac->roles[i].arn,
					ac->roles[i].external_id, &next);
		aws_creds_release(&cur);
		cur = next;
		aws_creds_init(&next);
	}
	if (!r) {
		aws_creds_release(out);
		*out = cur;
	} else {
		aws_creds_release(&cur);
	}
	return r;
}

static int cred_refresh(struct aws_cred *c)
{
	const struct aws_creds *src = &c->spec;
	int r;

	if (c->implicit) {
		if (!creds_fresh(&c->base)) {
			aws_creds_release(&c->base);
			r = implicit_chain(c, &c->base);
			if (r)
				return r;
		}
		src = &c->base;
	}
	if (!c->nroles)
		return creds_copy(&c->final, src);
	r = role_chain(c, src, &c->final);
	if (r)
		aws_creds_release(&c->base); /* it may be what STS refused */
	return r;
}

int aws_cred_get(struct aws_cred *c, struct sigv4_creds *out)
{
	int r = 0;

	if (!creds_fresh(&c->final)) {
		aws_creds_release(&c->final);
		r = cred_refresh(c);
	}
	if (r)
		return r;
	out->access_key_id = c->final.access_key_id;
	out->secret_key = c->final.secret_key;
	out->session_token = (const char *)c->final.token.data;
	return 0;
}

void aws_cred_invalidate(struct aws_cred *c)
{
	aws_creds_release(&c->base);
	aws_creds_release(&c->final);
}

static int roles_parse(struct aws_cred *c, const char *list)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ","), an = strcspn(p, ";");
		struct aws_role *ro = &c->roles[c->nroles];
		const char *ext;

		if (an > n)
			an = n;
		if (!an || c->nroles == AWS_MAX_ROLES) {
			log_err("aws kms ASSUME_ROLE: %s",
				an ? "too many roles" : "empty role");
			return -EINVAL;
		}
		ro->arn = strndup(p, an);
		ext = memmem(p + an, n - an, ";external_id=", 13);
		if (ext)
			ro->external_id =
			    strndup(ext + 13, strcspn(ext + 13, ";,"));
		c->nroles++;
		if (!ro->arn || (ext && !ro->external_id))
			return -ENOMEM;
		p += n;
		if (*p == ',' && !*++p) {
			log_err("aws kms ASSUME_ROLE: empty role");
			return -EINVAL;
		}
	}
	return 0;
}

int aws_cred_new(const struct aws_cred_cfg *cfg, struct aws_cred **out)
{
	struct aws_cred *c = calloc(1, sizeof(*c));
	int r = -ENOMEM;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	aws_creds_init(&c->spec);
	aws_creds_init(&c->base);
	aws_creds_init(&c->final);
	c->implicit = cfg->implicit;
	c->region = strdup(cfg->region);
	if (!c->region)
		goto out;
	r = aws_sts_endpoint(cfg->endpoint, cfg->region, &c->sts_url);
	if (!r && cfg->assume_role && *cfg->assume_role)
		r = roles_parse(c, cfg->assume_role);
	if (!r && !cfg->implicit) {
		const char *t = cfg->session_token;

		r = aws_creds_set(&c->spec, cfg->access_key_id, cfg->secret_key,
				  strlen(cfg->secret_key), t, t ? strlen(t) : 0,
				  "uri");
	}
out:
	if (r)
		aws_cred_free(c);
	else
		*out = c;
	return r;
}

void aws_cred_free(struct aws_cred *c)
{
	if (!c)
		return;
	aws_creds_release(&c->spec);
	aws_creds_release(&c->base);
	aws_creds_release(&c->final);
	for (size_t i = 0; i < c->nroles; i++) {
		free(c->roles[i].arn);
		free(c->roles[i].external_id);
	}
	free(c->region);
	free(c->sts_url);
	free(c);
}
