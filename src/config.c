/*
 * config.c - the configuration file, read with libconfig and checked.
 *
 * The file is opened once and checked through the open descriptor
 * (owner, mode, type; lib/privfile.c), read into a bounded buffer and
 * handed to libconfig as a string, so that what is checked is what is
 * parsed.  @include is refused: it would read files whose permissions
 * nobody checked.  Every root key is looked up in a const table that says
 * its type and where it goes in struct cfg; anything else is an error
 * naming the key and line.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "../fs/layout.h"
#include "../lib/buf.h"
#include "../lib/log.h"
#include "../lib/privfile.h"
#include "../lib/secret.h"

enum cfg_kind { CFG_STRING, CFG_TEXT, CFG_LIST, CFG_BOOL };

struct cfg_key {
	const char *name;
	enum cfg_kind kind; /* CFG_TEXT: a string that may be empty */
	size_t off;
	int (*check)(const char *value);
};

static int cfg_check_log_level(const char *value)
{
	enum log_level lvl;

	return log_parse_level(value, &lvl);
}

static const struct cfg_key cfg_keys[] = {
    {"backing", CFG_STRING, offsetof(struct cfg, backing), NULL},
    {"mountpoint", CFG_STRING, offsetof(struct cfg, mountpoint), NULL},
    {"kms", CFG_LIST, offsetof(struct cfg, kms), NULL},
    {"kms_file", CFG_LIST, offsetof(struct cfg, kms_files), NULL},
    {"passphrase_file", CFG_STRING, offsetof(struct cfg, passphrase_file),
     NULL},
    {"foreground", CFG_BOOL, offsetof(struct cfg, foreground), NULL},
    {"allow_v1", CFG_BOOL, offsetof(struct cfg, allow_v1), NULL},
    {"options", CFG_TEXT, offsetof(struct cfg, options), NULL},
    {"profile", CFG_STRING, offsetof(struct cfg, profile), cfg_check_profile},
    {"log_level", CFG_STRING, offsetof(struct cfg, log_level),
     cfg_check_log_level},
    {"known_keys", CFG_STRING, offsetof(struct cfg, known_keys), NULL},
    {"accept_new_keys", CFG_BOOL, offsetof(struct cfg, accept_new_keys), NULL},
};

#define CFG_NKEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* What cfg_load is working on, so that errors can name file and line. */
struct cfg_ctx {
	const char *path;
	char *err;
	size_t errlen;
};

/* Format "PATH[:LINE]: message" into x->err and return r. */
__attribute__((format(printf, 4, 5))) static int
cfg_fail(const struct cfg_ctx *x, int r, unsigned int line, const char *fmt,
	 ...)
{
	va_list ap;
	int n;

	if (line)
		n = snprintf(x->err, x->errlen, "%s:%u: ", x->path, line);
	else
		n = snprintf(x->err, x->errlen, "%s: ", x->path);

	if (n < 0 || (size_t)n >= x->errlen)
		return r;
	va_start(ap, fmt);
	vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return r;
}

void cfg_init(struct cfg *c)
{
	memset(c, 0, sizeof(*c));
}

void cfg_list_release(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		secret_wipe(l->v[i], strlen(l->v[i]));
		free(l->v[i]);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static void cfg_release_keys(struct cfg *c)
{
	cfg_list_release(&c->kms);
	cfg_list_release(&c->kms_files);
	free(c->passphrase_file);
	c->passphrase_file = NULL;
}

void cfg_release(struct cfg *c)
{
	cfg_release_keys(c);
	free(c->backing);
	free(c->mountpoint);
	free(c->options);
	free(c->profile);
	free(c->log_level);
	free(c->known_keys);
	cfg_init(c);
}

int cfg_set(char **field, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

int cfg_list_add(struct cfg_list *l, const char *value)
{
	char **v;
	char *s;

	if (l->n >= CFG_MAX_LIST)
		return -E2BIG;
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	s = strdup(value);
	if (!s)
		return -ENOMEM;
	l->v[l->n++] = s;
	return 0;
}

bool cfg_has_keys(const struct cfg *c)
{
	return c->kms.n || c->kms_files.n || c->passphrase_file;
}

static void cfg_move_str(char **dst, char **src)
{
	if (!*src)
		return;
	free(*dst);
	*dst = *src;
	*src = NULL;
}

static void cfg_move_list(struct cfg_list *dst, struct cfg_list *src)
{
	*dst = *src;
	src->v = NULL;
	src->n = 0;
}

void cfg_override(struct cfg *base, struct cfg *over)
{
	if (cfg_has_keys(over)) {
		cfg_release_keys(base);
		cfg_move_list(&base->kms, &over->kms);
		cfg_move_list(&base->kms_files, &over->kms_files);
		cfg_move_str(&base->passphrase_file, &over->passphrase_file);
	}
	cfg_move_str(&base->backing, &over->backing);
	cfg_move_str(&base->mountpoint, &over->mountpoint);
	cfg_move_str(&base->options, &over->options);
	cfg_move_str(&base->profile, &over->profile);
	cfg_move_str(&base->log_level, &over->log_level);
	cfg_move_str(&base->known_keys, &over->known_keys);
	base->foreground = base->foreground || over->foreground;
	base->accept_new_keys = base->accept_new_keys || over->accept_new_keys;
	base->allow_v1 = base->allow_v1 || over->allow_v1;
	cfg_release(over);
}

int cfg_check_profile(const char *name)
{
	return layout_find(name) ? 0 : -EINVAL;
}

/* --- reading the file ---------------------------------------------- */

/* Refuse NUL bytes (libconfig would stop there) and @include lines. */
static int cfg_check_text(const struct cfg_ctx *x, const struct buf *text)
{
	const char *p = (const char *)text->data;
	unsigned int line = 1;

	if (memchr(p, '\0', text->len))
		return cfg_fail(x, -EINVAL, 0, "contains a NUL byte");
	while (*p) {
		p += strspn(p, " \t\r");
		if (strncmp(p, "@include", 8) == 0)
			return cfg_fail(x, -EINVAL, line,
					"@include is not supported");
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
		line++;
	}
	return 0;
}

static int cfg_read_text(const struct cfg_ctx *x, struct buf *text)
{
	char why[PRIVFILE_WHY_MAX];
	int r = privfile_read_buf(x->path, text, why);

	if (r)
		return cfg_fail(x, r, 0, "%s", why);
	return cfg_check_text(x, text);
}

/* --- storing settings ---------------------------------------------- */

static int cfg_take_string(const struct cfg_ctx *x, const struct cfg_key *k,
			   config_setting_t *s, char **field)
{
	unsigned int line = config_setting_source_line(s);
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return cfg_fail(x, -EINVAL, line, "'%s' must be a string",
				k->name);
	v = config_setting_get_string(s);
	if (k->kind != CFG_TEXT && !*v)
		return cfg_fail(x, -EINVAL, line, "'%s' must not be empty",
				k->name);
	if (k->check && k->check(v))
		return cfg_fail(x, -EINVAL, line, "invalid %s '%s'", k->name,
				v);
	if (cfg_set(field, v))
		return cfg_fail(x, -ENOMEM, 0, "out of memory");
	return 0;
}

static int cfg_list_add_setting(const struct cfg_ctx *x,
				const struct cfg_key *k, config_setting_t *s,
				struct cfg_list *l)
{
	unsigned int line = config_setting_source_line(s);
	const char *v = config_setting_get_string(s);
	int r;

	if (!*v)
		return cfg_fail(x, -EINVAL, line,
				"'%s' entries must not be empty", k->name);
	r = cfg_list_add(l, v);
	if (r == -E2BIG)
		return cfg_fail(x, r, line, "'%s' has more than %u entries",
				k->name, CFG_MAX_LIST);
	if (r)
		return cfg_fail(x, r, 0, "out of memory");
	return 0;
}

static int cfg_take_list(const struct cfg_ctx *x, const struct cfg_key *k,
			 config_setting_t *s, struct cfg_list *l)
{
	int type = config_setting_type(s);
	int n, r;

	if (type == CONFIG_TYPE_STRING)
		return cfg_list_add_setting(x, k, s, l);
	if (type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY)
		goto bad;
	n = config_setting_length(s);
	for (int i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			goto bad;
		r = cfg_list_add_setting(x, k, e, l);
		if (r)
			return r;
	}
	return 0;
bad:
	return cfg_fail(x, -EINVAL, config_setting_source_line(s),
			"'%s' must be a string or a list of strings", k->name);
}

static int cfg_take(const struct cfg_ctx *x, config_setting_t *s, struct cfg *c)
{
	const char *name = config_setting_name(s);
	const struct cfg_key *k = NULL;
	char *field;

	for (size_t i = 0; i < CFG_NKEYS && name; i++)
		if (strcmp(cfg_keys[i].name, name) == 0)
			k = &cfg_keys[i];
	if (!k)
		return cfg_fail(x, -EINVAL, config_setting_source_line(s),
				"unknown key '%s'", name ? name : "?");
	field = (char *)c + k->off;
	switch (k->kind) {
	case CFG_STRING:
	case CFG_TEXT:
		return cfg_take_string(x, k, s, (char **)(void *)field);
	case CFG_LIST:
		return cfg_take_list(x, k, s, (struct cfg_list *)(void *)field);
	case CFG_BOOL:
		break;
	}
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return cfg_fail(x, -EINVAL, config_setting_source_line(s),
				"'%s' must be true or false", k->name);
	*(bool *)(void *)field = config_setting_get_bool(s);
	return 0;
}

/*
 * libconfig frees its strings without wiping them; KMS URIs may carry
 * credentials, so wipe every string value before config_destroy().
 */
static void cfg_wipe_tree(config_setting_t *s)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		char *v = (char *)config_setting_get_string(s);

		secret_wipe(v, strlen(v));
		return;
	}
	if (!config_setting_is_aggregate(s))
		return;
	for (int i = 0; i < config_setting_length(s); i++)
		cfg_wipe_tree(config_setting_get_elem(s, (unsigned)i));
}

static int cfg_parse(const struct cfg_ctx *x, const char *text, struct cfg *c)
{
	config_t lc;
	config_setting_t *root;
	int r = 0;

	config_init(&lc);
	if (config_read_string(&lc, text) != CONFIG_TRUE) {
		r = cfg_fail(x, -EINVAL, (unsigned)config_error_line(&lc), "%s",
			     config_error_text(&lc));
		goto out;
	}
	root = config_root_setting(&lc);
	for (int i = 0; i < config_setting_length(root) && !r; i++)
		r = cfg_take(x, config_setting_get_elem(root, (unsigned)i), c);
	cfg_wipe_tree(config_root_setting(&lc));
out:
	config_destroy(&lc);
	return r;
}

int cfg_load(struct cfg *c, const char *path, char *err, size_t errlen)
{
	struct cfg_ctx x = {.path = path, .err = err, .errlen = errlen};
	struct buf text;
	int r;

	if (errlen)
		err[0] = '\0';
	buf_init_secret(&text, CFG_MAX_SIZE);
	r = cfg_read_text(&x, &text);
	if (!r)
		r = cfg_parse(&x, (const char *)text.data, c);
	buf_release(&text);
	if (r)
		cfg_release(c);
	return r;
}
