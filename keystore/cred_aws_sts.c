/*
 * cred_aws_sts.c - the two STS calls of the AWS credential chain:
 * AssumeRole (ASSUME_ROLE, signed with the credentials before it) and
 * AssumeRoleWithWebIdentity (the implicit chain's web identity source,
 * unsigned).
 *
 * STS replies are XML; the few fields needed are cut out with bounded
 * string search instead of pulling in an XML parser.  Request bodies that
 * carry a token, the secret key and the session token of a reply are
 * held in secret buffers.
 */
#include "cred_aws_sts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/log.h"
#include "http.h"

#define STS_VERSION "2011-06-15"
#define STS_TIMEOUT_MS 5000L
#define FORM_CT "Content-Type: application/x-www-form-urlencoded; charset=utf-8"

int aws_sts_endpoint(const char *endpoint, const char *region, char **out)
{
	const char *env = getenv("AWS_ENDPOINT_URL_STS");
	char *base = NULL;
	int r;

	if (endpoint || (env && *env)) {
		r = aws_endpoint_base(endpoint ? endpoint : env, &base);
		if (r)
			return r;
		r = http_url_check(
		    endpoint ? "AWS_ENDPOINT" : "AWS_ENDPOINT_URL_STS", base);
		if (!r)
			r = asprintf(out, "%s/", base) < 0 ? -ENOMEM : 0;
		free(base);
		return r;
	}
	return asprintf(out, "https://sts.%s.amazonaws.com/", region) < 0
		   ? -ENOMEM
		   : 0;
}

/* Bounded search for <tag>value</tag> inside doc[0..len). */
static const char *xml_find(const char *doc, size_t len, const char *tag,
			    size_t *vlen)
{
	char open[64], close[64];
	const char *s, *e;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = memmem(doc, len, open, strlen(open));
	if (!s)
		return NULL;
	s += strlen(open);
	e = memmem(s, len - (size_t)(s - doc), close, strlen(close));
	if (!e)
		return NULL;
	*vlen = (size_t)(e - s);
	return s;
}

/* XML text -> bytes (the five predefined entities). */
static int xml_unescape(const char *s, size_t n, struct buf *out)
{
	static const char *const ent[] = {"&amp;", "&lt;", "&gt;", "&quot;",
					  "&apos;"};
	static const char chr[] = "&<>\"'";
	int r = 0;

	for (size_t i = 0; i < n && !r;) {
		char c = s[i];
		size_t adv = 1;

		for (size_t k = 0; c == '&' && k < 5; k++) {
			size_t el = strlen(ent[k]);

			if (n - i >= el && !memcmp(s + i, ent[k], el)) {
				c = chr[k];
				adv = el;
				break;
			}
		}
		r = buf_addch(out, c);
		i += adv;
	}
	return r;
}

static int sts_parse_creds(const struct buf *body, struct aws_creds *out,
			   const char *source)
{
	const char *doc = (const char *)body->data, *cr, *ak, *sk, *tk, *ex;
	size_t crl, akl, skl, tkl, exl;
	struct buf sec, tok;
	char akid[129], exp[64];
	int r = -EPROTO;

	buf_init_secret(&sec, 4096);
	buf_init_secret(&tok, AWS_CRED_BODY_MAX);
	cr = xml_find(doc, body->len, "Credentials", &crl);
	ak = cr ? xml_find(cr, crl, "AccessKeyId", &akl) : NULL;
	sk = cr ? xml_find(cr, crl, "SecretAccessKey", &skl) : NULL;
	tk = cr ? xml_find(cr, crl, "SessionToken", &tkl) : NULL;
	ex = cr ? xml_find(cr, crl, "Expiration", &exl) : NULL;
	if (!ak || !sk || !tk || !ex || !akl || akl >= sizeof(akid) ||
	    exl >= sizeof(exp))
		goto out;
	snprintf(akid, sizeof(akid), "%.*s", (int)akl, ak);
	snprintf(exp, sizeof(exp), "%.*s", (int)exl, ex);
	if (xml_unescape(sk, skl, &sec) || xml_unescape(tk, tkl, &tok) ||
	    !sec.len || sec.len > SECRET_MAX)
		goto out;
	r = aws_creds_set(out, akid, (const char *)sec.data, sec.len,
			  (const char *)tok.data, tok.len, source);
	if (!r)
		r = aws_parse_time(exp, &out->expires);
	if (r)
		aws_creds_release(out);
out:
	buf_release(&sec);
	buf_release(&tok);
	return r;
}

static int sts_error(const char *what, const char *role,
		     const struct http_response *rs)
{
	const char *doc = (const char *)rs->body.data;
	const char *code, *msg;
	size_t cl = 0, ml = 0;
	char c[64], m[200];

	code = xml_find(doc, rs->body.len, "Code", &cl);
	msg = xml_find(doc, rs->body.len, "Message", &ml);
	aws_clean_copy(c, sizeof(c), code, cl);
	aws_clean_copy(m, sizeof(m), msg, ml);
	log_err("aws sts %s %s failed: HTTP %ld %s%s%s", what, role, rs->status,
		c[0] ? c : "(no error code)", m[0] ? ": " : "", m);
	if (rs->status == 429 || rs->status >= 500 || !strcmp(c, "Throttling"))
		return -EAGAIN;
	return -EACCES;
}

/* POST an STS form (signed with c unless NULL) and take Credentials. */
static int sts_call(const struct aws_sts *sts, const char *what,
		    const char *role, const struct buf *form,
		    const struct sigv4_creds *c, struct aws_creds *out)
{
	const char *hdrs[] = {FORM_CT, NULL};
	struct sigv4_post p = {.url = sts->url,
			       .region = sts->region,
			       .service = "sts",
			       .headers = hdrs,
			       .body = form,
			       .timeout_ms = STS_TIMEOUT_MS};
	struct http_response rs = {0};
	int r;

	buf_init_secret(&rs.body, AWS_CRED_BODY_MAX);
	r = sigv4_post(&p, c, &rs);
	if (r) {
		log_err("aws sts %s %s: %s (endpoint %s)", what, role,
			aws_net_reason(r), sts->url);
		r = r == -E2BIG ? -EPROTO : r;
	} else if (rs.status != 200) {
		r = sts_error(what, role, &rs);
	} else {
		r = sts_parse_creds(&rs.body, out, what);
		if (r)
			log_err("aws sts %s %s: malformed reply", what, role);
	}
	buf_release(&rs.body);
	return r;
}

static int form_add(struct buf *f, const char *name, const char *v, size_t len)
{
	int r = buf_addf(f, "&%s=", name);

	return r ? r : http_urlencode(f, v, len);
}

int aws_sts_assume_role(const struct aws_sts *sts, const struct aws_creds *from,
			const char *arn, const char *external_id,
			struct aws_creds *out)
{
	struct sigv4_creds sc = {from->access_key_id, from->secret_key,
				 (const char *)from->token.data};
	char name[32];
	struct buf f;
	int r;

	snprintf(name, sizeof(name), "kmsfs-%lld", (long long)http_now());
	buf_init(&f, 0);
	r = buf_addstr(&f, "Action=AssumeRole&Version=" STS_VERSION);
	if (!r)
		r = form_add(&f, "RoleArn", arn, strlen(arn));
	if (!r)
		r = form_add(&f, "RoleSessionName", name, strlen(name));
	if (!r && external_id)
		r = form_add(&f, "ExternalId", external_id,
			     strlen(external_id));
	if (!r)
		r = sts_call(sts, "AssumeRole", arn, &f, &sc, out);
	buf_release(&f);
	return r;
}

int aws_sts_web_identity(const struct aws_sts *sts, const char *arn,
			 const char *session, const char *token, size_t len,
			 struct aws_creds *out)
{
	struct buf f;
	int r;

	buf_init_secret(&f, 0);
	r = buf_addstr(&f,
		       "Action=AssumeRoleWithWebIdentity&Version=" STS_VERSION);
	if (!r)
		r = form_add(&f, "RoleArn", arn, strlen(arn));
	if (!r)
		r = form_add(&f, "RoleSessionName", session, strlen(session));
	if (!r)
		r = form_add(&f, "WebIdentityToken", token, len);
	if (!r)
		r = sts_call(sts, "AssumeRoleWithWebIdentity", arn, &f, NULL,
			     out);
	buf_release(&f);
	return r;
}
