/*
 * kmsuri.c - KMS URIs: split, decode, track consumed parameters, redact.
 *
 * CockroachDB parses KMS URIs with Go's url.ParseRequestURI; this file
 * gets the same scheme, host, decoded path and query with libcurl's URL
 * API.  One quirk shapes the code: for schemes it does not know, libcurl
 * collapses "scheme:///x" into host "x", while Go (and every KMS URI in
 * CockroachDB's docs) reads an empty host and the path "/x".  So the
 * scheme and authority are split here by RFC 3986's rules, and libcurl
 * parses "kmsfs://<authority or kmsfs.invalid><rest>" (a reserved name
 * standing in for the empty host); it validates the host, port, path and
 * query characters and decodes the path.  The query is split here, as
 * Go's url.ParseQuery does: '&' separated, '+' is a space, bad escapes
 * and ';' are errors (Go silently drops such pairs; an error is clearer).
 *
 * Redaction works on the raw string so that it also covers URIs that fail
 * to parse; a name that does not decode is unknown, names are matched
 * ignoring case, and any name not on the list is treated as secret, so
 * that a misspelt credential is hidden too.
 */
#include "kmsuri.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "../lib/buf.h"
#include "../lib/hex.h"
#include "../lib/log.h"

#define KMSURI_MAX 65536
#define SYNTHETIC_HOST "kmsfs.invalid"

#define KMSURI_NAME_MAX 64 /* longer names are on no list */

/* Every query parameter a provider takes (CockroachDB's names), and
 * AZURE_ACCOUNT_KEY, which azure.c looks at to refuse it. */
static const struct {
	const char *name;
	enum kmsuri_pclass cls;
} kmsuri_params[] = {
    {"AUTH", KMSURI_PLAIN},
    {"REGION", KMSURI_PLAIN},
    {"ASSUME_ROLE", KMSURI_PLAIN},
    {"AWS_ENDPOINT", KMSURI_PLAIN},
    {"AWS_ACCESS_KEY_ID", KMSURI_IDENTITY},
    {"AWS_SECRET_ACCESS_KEY", KMSURI_SECRET},
    {"AWS_SESSION_TOKEN", KMSURI_SECRET},
    {"CREDENTIALS", KMSURI_SECRET},
    {"BEARER_TOKEN", KMSURI_SECRET},
    {"AZURE_VAULT_NAME", KMSURI_PLAIN},
    {"AZURE_ENVIRONMENT", KMSURI_PLAIN},
    {"AZURE_CLIENT_ID", KMSURI_PLAIN},
    {"AZURE_TENANT_ID", KMSURI_PLAIN},
    {"AZURE_CLIENT_SECRET", KMSURI_SECRET},
    {"AZURE_ACCOUNT_KEY", KMSURI_SECRET},
};

struct uparse {
	struct kmsuri *u;
	const char *uri;
	const char *authority; /* after "//", or NULL */
	size_t authlen;
	const char *rest; /* path and query */
	bool hide;	  /* do not log even the redacted URI */
	char why[160];	  /* what is malformed, never a value */
};

enum kmsuri_pclass kmsuri_param_class(const char *name)
{
	for (size_t i = 0; i < sizeof(kmsuri_params) / sizeof(*kmsuri_params);
	     i++) {
		if (strcasecmp(name, kmsuri_params[i].name) == 0)
			return kmsuri_params[i].cls;
	}
	return KMSURI_UNKNOWN;
}

bool kmsuri_param_is_secret(const char *name)
{
	return kmsuri_param_class(name) >= KMSURI_UNKNOWN;
}

/* A value after which an unknown name may be the value's own tail. */
static bool value_hidden(enum kmsuri_pclass cls)
{
	return cls >= KMSURI_UNKNOWN;
}

/* The class of the raw (still %-encoded) name s[0..len), decoded as Go's
 * QueryUnescape would; a name that does not decode is unknown. */
static enum kmsuri_pclass raw_name_class(const char *s, size_t len)
{
	char dec[KMSURI_NAME_MAX + 1];
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		int v = (unsigned char)s[i];

		if (j == KMSURI_NAME_MAX)
			return KMSURI_UNKNOWN;
		if (v == '+')
			v = ' ';
		if (v == '%') {
			v = i + 2 < len ? hex_byte(s + i + 1) : -1;
			if (v <= 0)
				return KMSURI_UNKNOWN;
			i += 2;
		}
		dec[j++] = (char)v;
	}
	dec[j] = '\0';
	return kmsuri_param_class(dec);
}

/* Is the name of a parameter of class cls hidden, *after being whether
 * the value before it was?  Updates *after for the next parameter. */
static bool name_hidden(enum kmsuri_pclass cls, bool *after)
{
	bool hide = cls == KMSURI_UNKNOWN && *after;

	*after = hide || value_hidden(cls);
	return hide;
}

/* Go's QueryUnescape: %XX escapes and '+' as space.  %00 is refused (it
 * would end a C string early).  *out is malloc'd. */
static int query_unescape(const char *s, size_t len, char **out)
{
	char *d = malloc(len + 1);
	size_t j = 0;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		int v;

		if (s[i] != '%') {
			d[j++] = s[i] == '+' ? ' ' : s[i];
			continue;
		}
		v = i + 2 < len ? hex_byte(s + i + 1) : -1;
		if (v <= 0) { /* not two hex digits, or %00 */
			OPENSSL_cleanse(d, j);
			free(d);
			return -EINVAL;
		}
		d[j++] = (char)v;
		i += 2;
	}
	d[j] = '\0';
	*out = d;
	return 0;
}

/* --- redaction ----------------------------------------------------------- */

/* The ':' of a password in the authority of s[0..len), or NULL; *at_out
 * is then the '@' after it. */
static const char *userinfo_colon(const char *s, size_t len,
				  const char **at_out)
{
	const char *auth = memmem(s, len, "://", 3);
	const char *end, *at;

	if (!auth)
		return NULL;
	auth += 3;
	end = auth;
	while (end < s + len && *end != '/')
		end++;
	at = memrchr(auth, '@', (size_t)(end - auth));
	*at_out = at;
	return at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
}

static int redact_userinfo(struct buf *b, const char *s, size_t len)
{
	const char *at, *colon = userinfo_colon(s, len, &at);

	if (!colon)
		return buf_add(b, s, len);
	if (buf_add(b, s, (size_t)(colon - s)) || buf_addstr(b, ":redacted"))
		return -ENOMEM;
	return buf_add(b, at, len - (size_t)(at - s));
}

/* The raw query segments: '&' separated as in Go; ';' and '#' split too
 * (the parser refuses both), so that what follows them is hidden. */
#define RAW_SEPARATORS "&;#"

/* Append the raw segment seg[0..len), redacted. */
static int redact_param(struct buf *b, const char *seg, size_t len, bool *after)
{
	const char *eq = memchr(seg, '=', len);
	size_t nlen = eq ? (size_t)(eq - seg) : len;
	enum kmsuri_pclass cls;

	if (!len) /* an empty pair is skipped, also by the parser */
		return 0;
	cls = raw_name_class(seg, nlen);
	if (name_hidden(cls, after))
		return buf_addstr(b, "redacted");
	if (!value_hidden(cls) || !eq)
		return buf_add(b, seg, len);
	if (buf_add(b, seg, nlen + 1))
		return -ENOMEM;
	return buf_addstr(b, "redacted");
}

char *kmsuri_redact(const char *uri)
{
	const char *q = strchr(uri, '?');
	bool after = false;
	struct buf b;
	char *res = NULL;

	buf_init(&b, 0);
	if (redact_userinfo(&b, uri, q ? (size_t)(q - uri) : strlen(uri)))
		goto out;
	while (q) {
		size_t n = strcspn(q + 1, RAW_SEPARATORS);

		if (buf_addch(&b, *q) || redact_param(&b, q + 1, n, &after))
			goto out;
		q = q[1 + n] ? q + 1 + n : NULL;
	}
	res = strdup((const char *)b.data);
out:
	buf_release(&b);
	return res;
}

enum kmsuri_pclass kmsuri_uri_class(const char *uri)
{
	const char *at, *q = strchr(uri, '?');
	enum kmsuri_pclass worst = KMSURI_PLAIN;

	if (userinfo_colon(uri, q ? (size_t)(q - uri) : strlen(uri), &at))
		return KMSURI_SECRET;
	while (q) {
		size_t n = strcspn(q + 1, RAW_SEPARATORS);
		const char *eq = memchr(q + 1, '=', n);
		enum kmsuri_pclass cls;

		if (n) {
			cls = raw_name_class(q + 1,
					     eq ? (size_t)(eq - q - 1) : n);
			worst = cls > worst ? cls : worst;
		}
		q = q[1 + n] ? q + 1 + n : NULL;
	}
	return worst;
}

/* --- parsing ------------------------------------------------------------- */

static int split_scheme(struct uparse *p)
{
	const char *s = p->uri;
	size_t n = 0;

	if (!isalpha((unsigned char)s[0]))
		goto bad;
	while (isalnum((unsigned char)s[n]) || s[n] == '+' || s[n] == '-' ||
	       s[n] == '.')
		n++;
	if (s[n] != ':')
		goto bad;
	p->u->scheme = strndup(s, n);
	if (!p->u->scheme)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		p->u->scheme[i] = (char)tolower((unsigned char)s[i]);
	s += n + 1;
	if (s[0] == '/' && s[1] == '/') {
		p->authority = s + 2;
		p->authlen = strcspn(s + 2, "/?");
		s += 2 + p->authlen;
	}
	if (*s != '/' && !p->authority)
		goto bad;
	p->rest = s;
	return 0;
bad:
	snprintf(p->why, sizeof(p->why),
		 "expected scheme:///path (scheme, then an absolute path)");
	return -EINVAL;
}

static int check_len(struct uparse *p)
{
	size_t len = strnlen(p->uri, KMSURI_MAX + 1);

	if (len && len <= KMSURI_MAX)
		return 0;
	snprintf(p->why, sizeof(p->why), "%s",
		 len ? "longer than 64 KiB" : "empty");
	return -EINVAL;
}

static int check_chars(struct uparse *p)
{
	for (size_t i = 0; p->uri[i]; i++) {
		unsigned char c = (unsigned char)p->uri[i];

		if (c < 0x20 || c == 0x7f) {
			p->hide = true;
			snprintf(p->why, sizeof(p->why),
				 "control character at offset %zu", i);
			return -EINVAL;
		}
	}
	if (strchr(p->uri, '#')) {
		snprintf(p->why, sizeof(p->why),
			 "'#' is not allowed (percent-encode it as %%23)");
		return -EINVAL;
	}
	return 0;
}

/* Go's url.Parse refuses a '%' without two hex digits; libcurl keeps it. */
static int check_path_escapes(struct uparse *p)
{
	size_t n = strcspn(p->rest, "?");

	for (size_t i = 0; i < n; i++) {
		if (p->rest[i] != '%')
			continue;
		if (i + 2 >= n || hex_byte(p->rest + i + 1) < 0) {
			snprintf(p->why, sizeof(p->why),
				 "bad %%-escape in the path");
			return -EINVAL;
		}
	}
	return 0;
}

/* Take one part from curl into a malloc'd string (NULL if absent). */
static int curl_part(CURLU *h, CURLUPart part, unsigned flags, char **out)
{
	char *s = NULL;
	CURLUcode rc = curl_url_get(h, part, &s, flags);

	*out = NULL;
	if (rc == CURLUE_OUT_OF_MEMORY)
		return -ENOMEM;
	if (rc)
		return rc == CURLUE_URLDECODE ? -EINVAL : 0;
	*out = strdup(s);
	OPENSSL_cleanse(s, strlen(s));
	curl_free(s);
	return *out ? 0 : -ENOMEM;
}

static int take_host(struct uparse *p, CURLU *h)
{
	char *host = NULL, *port = NULL;
	int r = 0;

	if (p->authority && p->authlen) {
		r = curl_part(h, CURLUPART_HOST, 0, &host);
		if (!r)
			r = curl_part(h, CURLUPART_PORT, 0, &port);
	}
	if (!r && port) {
		if (asprintf(&p->u->host, "%s:%s", host, port) < 0)
			r = -ENOMEM;
	} else if (!r) {
		p->u->host = strdup(host ? host : "");
		if (!p->u->host)
			r = -ENOMEM;
	}
	free(host);
	free(port);
	return r;
}

static int take_path(struct uparse *p, CURLU *h)
{
	int r = 0;

	if (*p->rest == '/')
		r = curl_part(h, CURLUPART_PATH, CURLU_URLDECODE, &p->u->path);
	if (r == -EINVAL)
		snprintf(p->why, sizeof(p->why),
			 "the path has a bad %%-escape or an encoded NUL");
	else if (!r && !p->u->path && !(p->u->path = strdup("")))
		r = -ENOMEM;
	return r;
}

static void add_param_error(struct uparse *p, const char *name, bool hidden)
{
	if (name && !hidden)
		snprintf(p->why, sizeof(p->why),
			 "bad %%-escape in query parameter %s", name);
	else
		snprintf(p->why, sizeof(p->why),
			 "bad %%-escape in a query parameter");
}

static int add_param(struct uparse *p, const char *seg, size_t len, bool *after)
{
	const char *eq = memchr(seg, '=', len);
	size_t nlen = eq ? (size_t)(eq - seg) : len;
	struct kmsuri *u = p->u;
	struct kmsuri_param *np, *prm;
	char *name, *value = NULL;
	int r = query_unescape(seg, nlen, &name);
	bool hidden = name_hidden(
	    name ? kmsuri_param_class(name) : KMSURI_UNKNOWN, after);

	if (!r && eq)
		r = query_unescape(eq + 1, len - nlen - 1, &value);
	else if (!r)
		value = strdup("");
	if (r == -EINVAL)
		add_param_error(p, name, hidden);
	if (!r && !value)
		r = -ENOMEM;
	np = r ? NULL : reallocarray(u->params, u->nparams + 1, sizeof(*np));
	if (!np) {
		free(name);
		if (value)
			OPENSSL_cleanse(value, strlen(value));
		free(value);
		return r ? r : -ENOMEM;
	}
	u->params = np;
	prm = &u->params[u->nparams++];
	prm->name = name;
	prm->value = value;
	prm->used = false;
	prm->hidden = hidden;
	return 0;
}

static int split_query(struct uparse *p, const char *q)
{
	bool after = false;

	while (*q) {
		size_t n = strcspn(q, "&");
		int r = 0;

		if (memchr(q, ';', n)) {
			snprintf(
			    p->why, sizeof(p->why),
			    "';' in the query (percent-encode it as %%3B)");
			return -EINVAL;
		}
		if (n) /* Go skips empty pairs ("a=1&&b=2") */
			r = add_param(p, q, n, &after);
		if (r)
			return r;
		q += n;
		if (*q)
			q++;
	}
	return 0;
}

static int curl_split(struct uparse *p)
{
	unsigned flags =
	    CURLU_NON_SUPPORT_SCHEME | CURLU_PATH_AS_IS | CURLU_DISALLOW_USER;
	CURLU *h = curl_url();
	char *synth = NULL, *query = NULL;
	CURLUcode rc;
	int r = -ENOMEM;

	if (!h)
		goto out;
	if (asprintf(&synth, "kmsfs://%.*s%s",
		     p->authlen ? (int)p->authlen : (int)strlen(SYNTHETIC_HOST),
		     p->authlen ? p->authority : SYNTHETIC_HOST, p->rest) < 0) {
		synth = NULL;
		goto out;
	}
	rc = curl_url_set(h, CURLUPART_URL, synth, flags);
	if (rc) {
		r = rc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
		snprintf(p->why, sizeof(p->why), "%s", curl_url_strerror(rc));
		goto out;
	}
	r = take_host(p, h);
	if (!r)
		r = take_path(p, h);
	if (!r)
		r = curl_part(h, CURLUPART_QUERY, 0, &query);
	if (!r && query)
		r = split_query(p, query);
out:
	if (synth)
		OPENSSL_cleanse(synth, strlen(synth));
	if (query)
		OPENSSL_cleanse(query, strlen(query));
	free(synth);
	free(query);
	curl_url_cleanup(h);
	return r;
}

static void log_invalid(const struct uparse *p)
{
	const char *red = p->u->redacted;

	if (!red || p->hide) {
		log_err("invalid KMS URI (not shown): %s", p->why);
		return;
	}
	/* After a '#' nothing is a query parameter, so nothing is redacted:
	 * never show that part. */
	log_err("invalid KMS URI %.*s%s: %s", (int)strcspn(red, "#"), red,
		strchr(red, '#') ? "#..." : "", p->why);
}

int kmsuri_parse(const char *uri, struct kmsuri *u)
{
	struct uparse p;
	int r;

	memset(u, 0, sizeof(*u));
	memset(&p, 0, sizeof(p));
	p.u = u;
	p.uri = uri ? uri : "";
	r = check_len(&p);
	if (!r) {
		u->redacted = kmsuri_redact(p.uri);
		if (!u->redacted)
			r = -ENOMEM;
	}
	if (!r)
		r = check_chars(&p);
	if (!r)
		r = split_scheme(&p);
	if (!r)
		r = check_path_escapes(&p);
	if (!r)
		r = curl_split(&p);
	if (r == -EINVAL)
		log_invalid(&p);
	if (r)
		kmsuri_release(u);
	return r;
}

void kmsuri_release(struct kmsuri *u)
{
	for (size_t i = 0; i < u->nparams; i++) {
		char *v = u->params[i].value;

		if (v)
			OPENSSL_cleanse(v, strlen(v));
		free(v);
		free(u->params[i].name);
	}
	free(u->params);
	free(u->scheme);
	free(u->host);
	free(u->path);
	free(u->redacted);
	memset(u, 0, sizeof(*u));
}

const char *kmsuri_take(struct kmsuri *u, const char *name)
{
	const char *v = NULL;

	for (size_t i = 0; i < u->nparams; i++) {
		if (strcmp(u->params[i].name, name) != 0)
			continue;
		/* url.Values holds all values of a name under one key */
		u->params[i].used = true;
		if (!v)
			v = u->params[i].value;
	}
	return v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int kmsuri_check_unused(const struct kmsuri *u)
{
	const char **names;
	size_t n = 0, hidden = 0;
	struct buf b;

	for (size_t i = 0; i < u->nparams; i++)
		n += !u->params[i].used;
	if (!n)
		return 0;
	names = calloc(n, sizeof(*names));
	if (!names)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < u->nparams; i++) {
		if (u->params[i].used)
			continue;
		if (u->params[i].hidden)
			hidden++;
		else
			names[n++] = u->params[i].name;
	}
	qsort(names, n, sizeof(*names), cmp_str);
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(names[i], names[i - 1]) == 0)
			continue;
		buf_addf(&b, "%s%s", b.len ? ", " : "", names[i]);
	}
	if (hidden)
		buf_addf(&b,
			 "%s%zu not shown (after a redacted value: is an "
			 "'&' in a value not percent-encoded as %%26?)",
			 b.len ? ", and " : "", hidden);
	log_err("invalid KMS URI %s: unknown KMS query parameters: %s",
		u->redacted, b.len ? (const char *)b.data : "");
	buf_release(&b);
	free(names);
	return -EINVAL;
}
