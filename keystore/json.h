/*
 * json.h - the only user of json-c, plus base64 (std and url) and
 * JSON string escaping for request bodies.
 *
 * Owns: parsing KMS/token responses with bounded size and depth, typed
 * field access, base64 in both alphabets.  Must not know: any KMS API.
 * Thread-safety: reentrant.
 */
#ifndef KMSFS_JSON_H
#define KMSFS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/buf.h"

struct json_object;

/* Parse text[0..len) as one JSON value (depth <= 32).  -EPROTO if it is
 * not JSON.  Free with json_free. */
int json_parse(const char *text, size_t len, struct json_object **out);
void json_free(struct json_object *o); /* accepts NULL */
/* Member of an object; NULL if o is not an object or has no such key. */
struct json_object *json_get(struct json_object *o, const char *key);
/* String member, or NULL if absent / not a string.  Owned by o. */
const char *json_get_str(struct json_object *o, const char *key);
/* Integer member given as a JSON number or a decimal string ("42"). */
int json_get_int64(struct json_object *o, const char *key, int64_t *out);
/* Boolean member; -ENOENT if absent or not a boolean. */
int json_get_bool(struct json_object *o, const char *key, bool *out);
/* Base64 member (std or url alphabet, padded or not) decoded into out. */
int json_get_b64(struct json_object *o, const char *key, struct buf *out);

/* Append s as a quoted, escaped JSON string. */
int json_add_str(struct buf *out, const char *s);

/* Base64.  url selects the url-safe alphabet; pad adds '=' padding. */
int b64_encode(const uint8_t *in, size_t len, bool url, bool pad,
	       struct buf *out);
/* Accepts both alphabets, with or without padding; -EINVAL on bad input. */
int b64_decode(const char *in, size_t len, struct buf *out);

#endif
