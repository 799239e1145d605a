/*
 * check_config.c - unit tests for src/config.c against src/config.h: a
 * full valid file, every unknown-key / type / value error naming the key
 * and line, ownership and mode refusals, string vs list forms, libconfig
 * syntax errors, @include, size limits, and command-line overrides.
 */
#include "../src/config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

static char *dir;
static char path[4096];
static char err[512];

static void setup(void)
{
	dir = tl_tmpdir_new();
	snprintf(path, sizeof(path), "%s/kmsfs.conf", dir);
	err[0] = '\0';
}

static void teardown(void)
{
	tl_tmpdir_remove(dir);
	dir = NULL;
}

/* Write text to the config file (mode 0600) and load it into c. */
static int load(struct cfg *c, const char *text)
{
	ck_assert_int_eq(tl_write_file(path, text, strlen(text)), 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
	cfg_init(c);
	return cfg_load(c, path, err, sizeof(err));
}

static void assert_empty(const struct cfg *c)
{
	ck_assert_ptr_null(c->backing);
	ck_assert_ptr_null(c->mountpoint);
	ck_assert_uint_eq(c->kms.n, 0);
	ck_assert_uint_eq(c->kms_files.n, 0);
	ck_assert_ptr_null(c->passphrase_file);
	ck_assert(!c->foreground);
	ck_assert_ptr_null(c->options);
	ck_assert_ptr_null(c->profile);
	ck_assert_ptr_null(c->log_level);
}

static void assert_err_has(const char *what)
{
	ck_assert_msg(strstr(err, what), "'%s' not in error '%s'", what, err);
}

START_TEST(test_full)
{
	struct cfg c;

	ck_assert_int_eq(
	    load(&c, "# every key\n"
		     "backing = \"/srv/backup\";\n"
		     "mountpoint = \"/mnt/backup\";\n"
		     "kms = [\"file:///etc/kmsfs/a.key\", "
		     "\"aws:///alias/b?REGION=us-east-1&AUTH=implicit\"];\n"
		     "kms_file = \"/etc/kmsfs/kms\";\n"
		     "foreground = true;\n"
		     "options = \"allow_other,default_permissions\";\n"
		     "profile = \"toplevel\";\n"
		     "log_level = \"debug\";\n"),
	    0);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(c.backing, "/srv/backup");
	ck_assert_str_eq(c.mountpoint, "/mnt/backup");
	ck_assert_uint_eq(c.kms.n, 2);
	ck_assert_str_eq(c.kms.v[0], "file:///etc/kmsfs/a.key");
	ck_assert_str_eq(c.kms.v[1],
			 "aws:///alias/b?REGION=us-east-1&AUTH=implicit");
	ck_assert_uint_eq(c.kms_files.n, 1);
	ck_assert_str_eq(c.kms_files.v[0], "/etc/kmsfs/kms");
	ck_assert_ptr_null(c.passphrase_file);
	ck_assert(c.foreground);
	ck_assert_str_eq(c.options, "allow_other,default_permissions");
	ck_assert_str_eq(c.profile, "toplevel");
	ck_assert_str_eq(c.log_level, "debug");
	ck_assert(cfg_has_keys(&c));
	cfg_release(&c);
	assert_empty(&c);
}
END_TEST

START_TEST(test_passphrase_and_empty)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "passphrase_file = \"/etc/kmsfs/pw\";\n"
				  "options = \"\";\n"
				  "foreground = false;\n"),
			 0);
	ck_assert_str_eq(c.passphrase_file, "/etc/kmsfs/pw");
	ck_assert_str_eq(c.options, "");
	ck_assert(!c.foreground);
	ck_assert(cfg_has_keys(&c));
	cfg_release(&c);

	ck_assert_int_eq(load(&c, ""), 0);
	assert_empty(&c);
	ck_assert(!cfg_has_keys(&c));
	cfg_release(&c);
}
END_TEST

START_TEST(test_unknown_key)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "backing = \"/srv\";\n"
				  "\n"
				  "colour = \"blue\";\n"),
			 -EINVAL);
	assert_err_has(path);
	assert_err_has(":3:");
	assert_err_has("unknown key 'colour'");
	assert_empty(&c);
	cfg_release(&c);
}
END_TEST

START_TEST(test_unknown_group)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "mount = { backing = \"/srv\"; };\n"),
			 -EINVAL);
	assert_err_has(":1:");
	assert_err_has("unknown key 'mount'");
	cfg_release(&c);
}
END_TEST

/* One line of bad config, the key it must name, and what it must say. */
static const struct {
	const char *text;
	const char *key;
	const char *says;
} type_errors[] = {
    {"backing = 1;", "'backing'", "must be a string"},
    {"mountpoint = true;", "'mountpoint'", "must be a string"},
    {"kms = 5;", "'kms'", "string or a list of strings"},
    {"kms = [1, 2];", "'kms'", "string or a list of strings"},
    {"kms = (\"file:///a\", 3);", "'kms'", "string or a list of strings"},
    {"kms = { a = \"b\"; };", "'kms'", "string or a list of strings"},
    {"kms_file = true;", "'kms_file'", "string or a list of strings"},
    {"passphrase_file = [\"/a\"];", "'passphrase_file'", "must be a string"},
    {"foreground = \"yes\";", "'foreground'", "must be true or false"},
    {"foreground = 1;", "'foreground'", "must be true or false"},
    {"options = 3;", "'options'", "must be a string"},
    {"profile = 1.5;", "'profile'", "must be a string"},
    {"log_level = 2;", "'log_level'", "must be a string"},
    {"profile = \"flat\";", "profile", "invalid profile 'flat'"},
    {"log_level = \"loud\";", "log_level", "invalid log_level 'loud'"},
    {"backing = \"\";", "'backing'", "must not be empty"},
    {"kms = [\"\"];", "'kms'", "must not be empty"},
};

START_TEST(test_type_error)
{
	char text[256];
	struct cfg c;

	/* Line 2, after a comment, so the line number is checked. */
	snprintf(text, sizeof(text), "# kmsfs\n%s\n", type_errors[_i].text);
	ck_assert_int_eq(load(&c, text), -EINVAL);
	assert_err_has(":2:");
	assert_err_has(type_errors[_i].key);
	assert_err_has(type_errors[_i].says);
	assert_empty(&c);
	cfg_release(&c);
}
END_TEST

START_TEST(test_syntax_error)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "backing = \"/srv\";\nmountpoint = ;\n"),
			 -EINVAL);
	assert_err_has(":2:");
	assert_empty(&c);
	cfg_release(&c);
}
END_TEST

START_TEST(test_duplicate_key)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "backing = \"/a\";\nbacking = \"/b\";\n"),
			 -EINVAL);
	assert_empty(&c);
	cfg_release(&c);
}
END_TEST

START_TEST(test_include_refused)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "backing = \"/a\";\n"
				  "  @include \"/etc/passwd\"\n"),
			 -EINVAL);
	assert_err_has(":2:");
	assert_err_has("@include");
	cfg_release(&c);
}
END_TEST

START_TEST(test_nul_refused)
{
	static const char text[] = "backing = \"/a\";\n\0colour = 1;\n";
	struct cfg c;

	ck_assert_int_eq(tl_write_file(path, text, sizeof(text) - 1), 0);
	cfg_init(&c);
	ck_assert_int_eq(cfg_load(&c, path, err, sizeof(err)), -EINVAL);
	assert_err_has("NUL");
	cfg_release(&c);
}
END_TEST

static const mode_t bad_modes[] = {0640, 0604, 0660, 0602, 0620, 0700 | 07};

START_TEST(test_mode_refused)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "backing = \"/srv\";\n"), 0);
	cfg_release(&c);
	ck_assert_int_eq(chmod(path, bad_modes[_i]), 0);
	ck_assert_int_eq(cfg_load(&c, path, err, sizeof(err)), -EPERM);
	assert_err_has(path);
	assert_err_has("chmod 600");
	assert_empty(&c);
	cfg_release(&c);
}
END_TEST

START_TEST(test_owner_refused)
{
	struct cfg c;

	if (geteuid() != 0)
		return; /* needs root to give the file away */
	ck_assert_int_eq(load(&c, "backing = \"/srv\";\n"), 0);
	cfg_release(&c);
	ck_assert_int_eq(chown(path, 65534, 65534), 0);
	ck_assert_int_eq(cfg_load(&c, path, err, sizeof(err)), -EPERM);
	assert_err_has("owned by uid 0");
	assert_err_has("is uid 65534");
	cfg_release(&c);
}
END_TEST

START_TEST(test_not_regular)
{
	struct cfg c;

	cfg_init(&c);
	ck_assert_int_eq(chmod(dir, 0700), 0);
	ck_assert_int_eq(cfg_load(&c, dir, err, sizeof(err)), -EINVAL);
	assert_err_has("not a regular file");
	ck_assert_int_eq(cfg_load(&c, path, err, sizeof(err)), -ENOENT);
	assert_err_has(path);
	cfg_release(&c);
}
END_TEST

START_TEST(test_too_big)
{
	size_t n = CFG_MAX_SIZE + 1;
	char *text = malloc(n + 1);
	struct cfg c;

	ck_assert_ptr_nonnull(text);
	memset(text, '#', n);
	text[n] = '\0';
	ck_assert_int_eq(load(&c, text), -E2BIG);
	free(text);
	cfg_release(&c);
}
END_TEST

START_TEST(test_list_forms)
{
	struct cfg c;

	ck_assert_int_eq(load(&c, "kms = \"file:///a\";\n"
				  "kms_file = [\"/x\", \"/y\"];\n"),
			 0);
	ck_assert_uint_eq(c.kms.n, 1);
	ck_assert_str_eq(c.kms.v[0], "file:///a");
	ck_assert_uint_eq(c.kms_files.n, 2);
	ck_assert_str_eq(c.kms_files.v[1], "/y");
	cfg_release(&c);

	ck_assert_int_eq(load(&c, "kms = (\"file:///a\", \"file:///b\");\n"
				  "kms_file = \"/x\";\n"),
			 0);
	ck_assert_uint_eq(c.kms.n, 2);
	ck_assert_str_eq(c.kms.v[1], "file:///b");
	ck_assert_uint_eq(c.kms_files.n, 1);
	ck_assert_str_eq(c.kms_files.v[0], "/x");
	cfg_release(&c);

	ck_assert_int_eq(load(&c, "kms = [];\nkms_file = ();\n"), 0);
	ck_assert_uint_eq(c.kms.n, 0);
	ck_assert_uint_eq(c.kms_files.n, 0);
	ck_assert(!cfg_has_keys(&c));
	cfg_release(&c);
}
END_TEST

START_TEST(test_list_limit)
{
	char text[8192];
	size_t len = 0;
	struct cfg c;

	len += (size_t)snprintf(text, sizeof(text), "kms = [");
	for (unsigned i = 0; i <= CFG_MAX_LIST; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
					"%s\"file:///k%u\"", i ? ", " : "", i);
	snprintf(text + len, sizeof(text) - len, "];\n");
	ck_assert_int_eq(load(&c, text), -E2BIG);
	assert_err_has("more than");
	cfg_release(&c);
}
END_TEST

START_TEST(test_override)
{
	struct cfg file, cli;

	ck_assert_int_eq(load(&file, "backing = \"/srv\";\n"
				     "mountpoint = \"/mnt\";\n"
				     "kms = [\"file:///a\"];\n"
				     "kms_file = \"/k\";\n"
				     "options = \"ro\";\n"),
			 0);
	cfg_init(&cli);
	ck_assert_int_eq(cfg_set(&cli.passphrase_file, "/pw"), 0);
	ck_assert_int_eq(cfg_set(&cli.mountpoint, "/elsewhere"), 0);
	cli.foreground = true;
	cfg_override(&file, &cli);
	assert_empty(&cli);
	ck_assert_str_eq(file.backing, "/srv");
	ck_assert_str_eq(file.mountpoint, "/elsewhere");
	ck_assert_str_eq(file.options, "ro");
	ck_assert_str_eq(file.passphrase_file, "/pw");
	ck_assert_uint_eq(file.kms.n, 0); /* replaced, not merged */
	ck_assert_uint_eq(file.kms_files.n, 0);
	ck_assert(file.foreground);
	cfg_release(&file);
}
END_TEST

START_TEST(test_override_keeps_file_keys)
{
	struct cfg file, cli;

	ck_assert_int_eq(load(&file, "kms = \"file:///a\";\n"), 0);
	cfg_init(&cli);
	ck_assert_int_eq(cfg_set(&cli.log_level, "warn"), 0);
	cfg_override(&file, &cli);
	ck_assert_uint_eq(file.kms.n, 1);
	ck_assert_str_eq(file.log_level, "warn");
	cfg_release(&file);
}
END_TEST

START_TEST(test_profile)
{
	ck_assert_int_eq(cfg_check_profile("toplevel"), 0);
	ck_assert_int_eq(cfg_check_profile("flat"), -EINVAL);
	ck_assert_int_eq(cfg_check_profile(""), -EINVAL);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_full);
	tcase_add_test(tc, test_passphrase_and_empty);
	tcase_add_test(tc, test_unknown_key);
	tcase_add_test(tc, test_unknown_group);
	tcase_add_loop_test(tc, test_type_error, 0,
			    sizeof(type_errors) / sizeof(type_errors[0]));
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_duplicate_key);
	tcase_add_test(tc, test_include_refused);
	tcase_add_test(tc, test_nul_refused);
	tcase_add_loop_test(tc, test_mode_refused, 0,
			    sizeof(bad_modes) / sizeof(bad_modes[0]));
	tcase_add_test(tc, test_owner_refused);
	tcase_add_test(tc, test_not_regular);
	tcase_add_test(tc, test_too_big);
	tcase_add_test(tc, test_list_forms);
	tcase_add_test(tc, test_list_limit);
	tcase_add_test(tc, test_override);
	tcase_add_test(tc, test_override_keeps_file_keys);
	tcase_add_test(tc, test_profile);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return tl_run(config_suite());
}
