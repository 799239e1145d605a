/*
 * json.c - adapter over json-c, plus base64 and JSON string escaping.
 *
 * KMS replies can carry a data key (base64 in a string member), so the
 * parser leaves no plain copy behind: the tokener's scratch buffer is
 * cleansed before it is freed and json_free() cleanses every string of
 * the tree before dropping it.  Base64 is done here rather than with
 * OpenSSL's EVP_Encode* so both alphabets, optional padding and strict
 * validation come from one place and output goes straight into the
 * caller's (possibly secret) buffer.
 */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../lib/secret.h"

#define JSON_MAX_DEPTH 32

/* Drop whatever was appended to b since old (wiped when secret). */
static void buf_truncate(struct buf *b, size_t old)
{
	if (!b->cap)
		return;
	if (b->secret)
		secret_wipe(b->data + old, b->len - old);
	b->len = old;
	b->data[old] = '\0';
}

static void json_tokener_wipe_free(struct json_tokener *tok)
{
	/* json-c keeps the last token's text in its printbuf; cleanse it.
	 * The struct is still public in json-c 0.15/0.16. */
	if (tok->pb && tok->pb->buf && tok->pb->size > 0)
		secret_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

/*
 * json-c's strict mode still accepts single-quoted keys, NaN/Infinity,
 * "1." and raw control characters inside strings.  This lexical pass
 * rejects those; json-c checks the grammar.
 */
static bool json_lex_ok(const char *t, size_t len)
{
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if (in_str) {
			if (c < 0x20)
				return false;
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '.') {
			if (i + 1 >= len || t[i + 1] < '0' || t[i + 1] > '9')
				return false;
		} else if (!strchr(" \t\r\n{}[],:-+0123456789eEtruefalsn", c) ||
			   c == '\0') {
			return false;
		}
	}
	return true;
}

int json_parse(const char *text, size_t len, struct json_object **out)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error err;
	int r = -EPROTO;

	*out = NULL;
	if (len > INT_MAX / 2 || !json_lex_ok(text, len))
		return -EPROTO;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	err = json_tokener_get_error(tok);
	if (!o && err == json_tokener_continue) {
		/* A bare top-level number only ends at the terminator. */
		o = json_tokener_parse_ex(tok, "", 1);
		err = json_tokener_get_error(tok);
	} else if (o && json_tokener_get_parse_end(tok) != len) {
		err = json_tokener_error_parse_unexpected;
	}
	if (err == json_tokener_success && o) {
		*out = o;
		o = NULL;
		r = 0;
	}
	json_free(o);
	json_tokener_wipe_free(tok);
	return r;
}

static void json_wipe(struct json_object *o, int depth)
{
	if (!o || depth > JSON_MAX_DEPTH + 1)
		return;
	switch (json_object_get_type(o)) {
	case json_type_string: {
		int n = json_object_get_string_len(o);

		if (n > 0)
			secret_wipe((char *)json_object_get_string(o),
				    (size_t)n);
		break;
	}
	case json_type_array: {
		size_t n = json_object_array_length(o);

		for (size_t i = 0; i < n; i++)
			json_wipe(json_object_array_get_idx(o, i), depth + 1);
		break;
	}
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			(void)key;
			json_wipe(val, depth + 1);
		}
		break;
	}
	default:
		break;
	}
}

void json_free(struct json_object *o)
{
	if (!o)
		return;
	json_wipe(o, 0);
	json_object_put(o);
}

struct json_object *json_get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *json_get_str(struct json_object *o, const char *key)
{
	struct json_object *v = json_get(o, key);

	if (!v || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int json_parse_dec(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (!*s || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return -EPROTO;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EPROTO;
	*out = v;
	return 0;
}

/* -ENOENT if absent, -EPROTO if present but not an integer in range. */
int json_get_int64(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v = json_get(o, key);
	double d;

	if (!v)
		return -ENOENT;
	switch (json_object_get_type(v)) {
	case json_type_int:
		*out = json_object_get_int64(v);
		if (*out == INT64_MAX &&
		    json_object_get_uint64(v) > (uint64_t)INT64_MAX)
			return -EPROTO;
		return 0;
	case json_type_double:
		d = json_object_get_double(v);
		if (d != d || d < -9.2e18 || d > 9.2e18 ||
		    d != (double)(int64_t)d)
			return -EPROTO;
		*out = (int64_t)d;
		return 0;
	case json_type_string:
		return json_parse_dec(json_object_get_string(v), out);
	default:
		return -EPROTO;
	}
}

int json_get_bool(struct json_object *o, const char *key, bool *out)
{
	struct json_object *v = json_get(o, key);

	if (!v || !json_object_is_type(v, json_type_boolean))
		return -ENOENT;
	*out = json_object_get_boolean(v) ? true : false;
	return 0;
}

/* -ENOENT if absent or not a string, -EPROTO if not base64, -E2BIG. */
int json_get_b64(struct json_object *o, const char *key, struct buf *out)
{
	struct json_object *v = json_get(o, key);
	int r;

	if (!v || !json_object_is_type(v, json_type_string))
		return -ENOENT;
	r = b64_decode(json_object_get_string(v),
		       (size_t)json_object_get_string_len(v), out);
	return r == -EINVAL ? -EPROTO : r;
}

int json_add_str(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t old = out->len;
	int r = buf_addch(out, '"');

	for (; !r && *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			r = buf_add(out, esc, 2);
		} else if (c == '\n' || c == '\r' || c == '\t') {
			esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			r = buf_add(out, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			r = buf_add(out, esc, sizeof(esc));
		} else {
			r = buf_addch(out, (char)c);
		}
	}
	if (!r)
		r = buf_addch(out, '"');
	if (r)
		buf_truncate(out, old);
	return r;
}

static const char b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64_encode(const uint8_t *in, size_t len, bool url, bool pad,
	       struct buf *out)
{
	const char *alpha = url ? b64_url : b64_std;
	size_t need, o;
	int r;

	if (!len)
		return 0;
	if (len > (SIZE_MAX / 4) * 3 - 3)
		return -E2BIG;
	need = (len + 2) / 3 * 4;
	r = buf_grow(out, need);
	if (r)
		return r;
	o = out->len;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (n > 2)
			v |= in[i + 2];
		out->data[o++] = (uint8_t)alpha[(v >> 18) & 63];
		out->data[o++] = (uint8_t)alpha[(v >> 12) & 63];
		if (n > 1)
			out->data[o++] = (uint8_t)alpha[(v >> 6) & 63];
		else if (pad)
			out->data[o++] = '=';
		if (n > 2)
			out->data[o++] = (uint8_t)alpha[v & 63];
		else if (pad)
			out->data[o++] = '=';
	}
	out->len = o;
	out->data[o] = '\0';
	return 0;
}

static int b64_val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Length without padding, or -1 if the padding is malformed. */
static long b64_data_len(const char *in, size_t len)
{
	size_t n = len;

	while (n && in[n - 1] == '=' && len - n < 2)
		n--;
	if (n < len && len % 4)
		return -1; /* padded input comes in whole quanta */
	if (n % 4 == 1)
		return -1;
	return (long)n;
}

int b64_decode(const char *in, size_t len, struct buf *out)
{
	size_t old = out->len, o;
	uint32_t acc = 0;
	long n = b64_data_len(in, len);
	int bits = 0, r;

	if (n < 0 || (size_t)n > LONG_MAX / 3)
		return -EINVAL;
	if (n == 0)
		return 0;
	r = buf_grow(out, (size_t)n / 4 * 3 + 2);
	if (r)
		return r;
	o = old;
	for (long i = 0; i < n; i++) {
		int v = b64_val((unsigned char)in[i]);

		if (v < 0)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc) /* non-canonical: leftover bits must be zero */
		goto bad;
	out->len = o;
	out->data[o] = '\0';
	return 0;
bad:
	out->len = o;
	buf_truncate(out, old);
	acc = 0;
	return -EINVAL;
}
