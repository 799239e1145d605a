/*
 * check_kmsuri.c - unit tests for keystore/kmsuri.c: the URI forms of
 * spec §3 (aws, aws-kms, gs, gcp-kms, azure-kms, file) split into the
 * right scheme, host, decoded path and parameters; Go's query decoding
 * ('+' is a space); leftover parameters reported by name; credentials
 * never in the redacted form or in any log line; malformed URIs refused.
 * Master key IDs through ks_kms_open for file:// (the cloud providers are
 * not built into the unit tests).
 */
#include "../keystore/kmsuri.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "../keystore/keystore.h"
#include "../lib/log.h"
#include "testlib.h"

#ifdef KMSFS_CLOUD_KMS
#define CLOUD_ERR (-EINVAL)
#else
#define CLOUD_ERR (-ENOTSUP)
#endif

static void assert_param(struct kmsuri *u, const char *name, const char *v)
{
	const char *got = kmsuri_take(u, name);

	ck_assert_msg(got != NULL, "parameter %s missing", name);
	ck_assert_str_eq(got, v);
}

static void parse_ok(const char *uri, struct kmsuri *u, const char *scheme,
		     const char *host, const char *path)
{
	ck_assert_msg(kmsuri_parse(uri, u) == 0, "%s", uri);
	ck_assert_str_eq(u->scheme, scheme);
	ck_assert_str_eq(u->host, host);
	ck_assert_str_eq(u->path, path);
}

START_TEST(test_aws)
{
	struct kmsuri u;

	parse_ok("aws:///arn:aws:kms:us-east-1:111122223333:key/"
		 "1234abcd-12ab-34cd-56ef-1234567890ab?AUTH=implicit&"
		 "REGION=us-east-1",
		 &u, "aws", "",
		 "/arn:aws:kms:us-east-1:111122223333:key/"
		 "1234abcd-12ab-34cd-56ef-1234567890ab");
	ck_assert_uint_eq(u.nparams, 2);
	assert_param(&u, "AUTH", "implicit");
	assert_param(&u, "REGION", "us-east-1");
	ck_assert_int_eq(kmsuri_check_unused(&u), 0);
	kmsuri_release(&u);

	parse_ok("AWS-KMS:///alias/my-key?AUTH=specified&AWS_ACCESS_KEY_ID=AK"
		 "&AWS_SECRET_ACCESS_KEY=ab%2Bcd+ef&REGION=eu-west-1&"
		 "AWS_SESSION_TOKEN=tok&ASSUME_ROLE=arn:aws:iam::1:role/r"
		 "%3Bexternal_id%3Dx&AWS_ENDPOINT=http://127.0.0.1:4566",
		 &u, "aws-kms", "", "/alias/my-key");
	assert_param(&u, "AWS_SECRET_ACCESS_KEY", "ab+cd ef");
	assert_param(&u, "ASSUME_ROLE", "arn:aws:iam::1:role/r;external_id=x");
	assert_param(&u, "AWS_ENDPOINT", "http://127.0.0.1:4566");
	assert_param(&u, "AWS_SESSION_TOKEN", "tok");
	ck_assert_ptr_null(kmsuri_take(&u, "auth")); /* case-sensitive */
	kmsuri_release(&u);
}
END_TEST

START_TEST(test_gs_azure_file)
{
	struct kmsuri u;

	parse_ok(
	    "gs:///projects/p/locations/global/keyRings/r/cryptoKeys/k/"
	    "cryptoKeyVersions/3?AUTH=specified&CREDENTIALS=eyJhIjoxfQ%3D%3D",
	    &u, "gs", "",
	    "/projects/p/locations/global/keyRings/r/cryptoKeys/k/"
	    "cryptoKeyVersions/3");
	assert_param(&u, "CREDENTIALS", "eyJhIjoxfQ==");
	kmsuri_release(&u);
	parse_ok("gcp-kms:///projects/p/locations/global/keyRings/r/"
		 "cryptoKeys/k?AUTH=implicit",
		 &u, "gcp-kms", "",
		 "/projects/p/locations/global/keyRings/r/cryptoKeys/k");
	kmsuri_release(&u);
	parse_ok("azure-kms:///my-key/0123abcd?AZURE_VAULT_NAME=v&"
		 "AZURE_CLIENT_ID=c&AZURE_CLIENT_SECRET=s&AZURE_TENANT_ID=t&"
		 "AZURE_ENVIRONMENT=AzureUSGovernmentCloud",
		 &u, "azure-kms", "", "/my-key/0123abcd");
	ck_assert_uint_eq(u.nparams, 5);
	assert_param(&u, "AZURE_ENVIRONMENT", "AzureUSGovernmentCloud");
	kmsuri_release(&u);
	parse_ok("file:///etc/kmsfs/master.key", &u, "file", "",
		 "/etc/kmsfs/master.key");
	ck_assert_uint_eq(u.nparams, 0);
	kmsuri_release(&u);
}
END_TEST

START_TEST(test_shapes)
{
	struct kmsuri u;

	parse_ok("aws:/key", &u, "aws", "", "/key");
	kmsuri_release(&u);
	parse_ok("aws:////key", &u, "aws", "", "//key");
	kmsuri_release(&u);
	parse_ok("aws:///", &u, "aws", "", "/");
	kmsuri_release(&u);
	parse_ok("aws://", &u, "aws", "", "");
	kmsuri_release(&u);
	parse_ok("aws://?REGION=x", &u, "aws", "", "");
	assert_param(&u, "REGION", "x");
	kmsuri_release(&u);
	parse_ok("file://host/x", &u, "file", "host", "/x");
	kmsuri_release(&u);
	parse_ok("aws://h:8080/a/./b/../c", &u, "aws", "h:8080", "/a/./b/../c");
	kmsuri_release(&u);
	parse_ok("aws:///a%20b%2Fc+d%41", &u, "aws", "", "/a b/c+dA");
	kmsuri_release(&u);
}
END_TEST

START_TEST(test_query_decoding)
{
	struct kmsuri u;

	parse_ok("aws:///k?A=1+2%2B3&&B&C=&=x&D=%e2%82%ac&A=second&", &u, "aws",
		 "", "/k");
	ck_assert_uint_eq(u.nparams, 6);
	assert_param(&u, "A", "1 2+3"); /* the first of two */
	assert_param(&u, "B", "");
	assert_param(&u, "C", "");
	assert_param(&u, "", "x");
	assert_param(&u, "D", "\xe2\x82\xac");
	ck_assert_int_eq(kmsuri_check_unused(&u), 0); /* both A taken */
	kmsuri_release(&u);
	parse_ok("aws:///k?a+b%3D=c%26d", &u, "aws", "", "/k");
	assert_param(&u, "a b=", "c&d");
	kmsuri_release(&u);
}
END_TEST

START_TEST(test_unknown_params)
{
	struct kmsuri u;
	char *log;

	parse_ok("aws:///k?ZED=1&REGION=r&AUTH=implicit&Alpha=2&ZED=3", &u,
		 "aws", "", "/k");
	kmsuri_take(&u, "REGION");
	kmsuri_take(&u, "AUTH");
	tl_capture_begin();
	ck_assert_int_eq(kmsuri_check_unused(&u), -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(
	    strstr(log, "unknown KMS query parameters: Alpha, ZED\n"));
	free(log);
	kmsuri_release(&u);
}
END_TEST

static const char *const secret_values[] = {
    "SeCrEtAwS",  "SeSsIoNtOk", "AzUrEsEcReT", "CrEdEnTiAlS", "BeArEr",
    "AcCoUnTkEy", "LoWeRcAsE",	"EnCoDeDnAmE", "UsErPaSs",
};

static void assert_no_secret(const char *text)
{
	for (size_t i = 0; i < sizeof(secret_values) / sizeof(*secret_values);
	     i++)
		ck_assert_msg(!strstr(text, secret_values[i]),
			      "%s leaked in %s", secret_values[i], text);
}

START_TEST(test_redaction)
{
	const char *uri =
	    "aws:///k?AWS_SECRET_ACCESS_KEY=SeCrEtAwS&AUTH=specified&"
	    "AWS_SESSION_TOKEN=SeSsIoNtOk&AZURE_CLIENT_SECRET=AzUrEsEcReT&"
	    "CREDENTIALS=CrEdEnTiAlS&BEARER_TOKEN=BeArEr&"
	    "AZURE_ACCOUNT_KEY=AcCoUnTkEy&aws_secret_access_key=LoWeRcAsE&"
	    "AWS%5FSECRET_ACCESS_KEY=EnCoDeDnAmE&REGION=us-east-1";
	struct kmsuri u;
	char *r, *log;

	tl_capture_begin();
	ck_assert_int_eq(kmsuri_parse(uri, &u), 0);
	assert_no_secret(u.redacted);
	ck_assert_ptr_nonnull(
	    strstr(u.redacted, "AWS_SECRET_ACCESS_KEY=redacted&"));
	ck_assert_ptr_nonnull(strstr(u.redacted, "AUTH=specified"));
	ck_assert_ptr_nonnull(strstr(u.redacted, "REGION=us-east-1"));
	ck_assert_str_eq(kmsuri_take(&u, "AWS_SECRET_ACCESS_KEY"), "SeCrEtAwS");
	ck_assert_int_eq(kmsuri_check_unused(&u), -EINVAL);
	kmsuri_release(&u);
	r = kmsuri_redact(uri);
	assert_no_secret(r);
	free(r);
	/* failures log the redacted form only */
	ck_assert_int_eq(kmsuri_parse("aws:///k?CREDENTIALS=CrEdEnTiAlS&"
				      "A=%zz",
				      &u),
			 -EINVAL);
	ck_assert_int_eq(kmsuri_parse("aws:///k?BEARER_TOKEN=BeArEr;x=1", &u),
			 -EINVAL);
	ck_assert_int_eq(kmsuri_parse("aws://me:UsErPaSs@host/k", &u), -EINVAL);
	ck_assert_int_eq(kmsuri_parse("aws:///k#AWS_SECRET_ACCESS_KEY="
				      "SeCrEtAwS",
				      &u),
			 -EINVAL);
	log = tl_capture_end();
	assert_no_secret(log);
	ck_assert_ptr_nonnull(strstr(log, "CREDENTIALS=redacted"));
	free(log);
	ck_assert(kmsuri_param_is_secret("AZURE_ACCOUNT_KEY"));
	ck_assert(!kmsuri_param_is_secret("AWS_ACCESS_KEY_ID"));
}
END_TEST

START_TEST(test_malformed)
{
	static const char *const bad[] = {
	    "",
	    "aws",
	    "aws:key",
	    "aws:",
	    "/path/only",
	    "1aws:///k",
	    "a_b:///k",
	    "aws:///k#frag",
	    "aws:///k?A=%zz",
	    "aws:///k?A=%4",
	    "aws:///k?A=%00",
	    "aws:///k?%G1=x",
	    "aws:///k?A=1;B=2",
	    "aws:///a%00b",
	    "aws:///a%zzb",
	    "aws:///a b",
	    "aws:///k\n",
	    "aws:///k?A=\x01",
	    "aws://h:99999/k",
	    "aws://u@h/k",
	    "aws://[zz/k",
	};
	struct kmsuri u;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		int r = kmsuri_parse(bad[i], &u);

		ck_assert_msg(r == -EINVAL, "accepted %s (%d)", bad[i], r);
		ck_assert_ptr_null(u.scheme);
		ck_assert_ptr_null(u.redacted);
		kmsuri_release(&u);
	}
	ck_assert_int_eq(kmsuri_parse(NULL, &u), -EINVAL);
}
END_TEST

START_TEST(test_long)
{
	size_t n = 70000;
	char *uri = malloc(n + 1);
	struct kmsuri u;

	ck_assert_ptr_nonnull(uri);
	memcpy(uri, "aws:///", 7);
	memset(uri + 7, 'k', n - 7);
	uri[n] = '\0';
	ck_assert_int_eq(kmsuri_parse(uri, &u), -EINVAL);
	uri[60000] = '\0';
	ck_assert_int_eq(kmsuri_parse(uri, &u), 0);
	ck_assert_uint_eq(strlen(u.path), 60000 - 6);
	kmsuri_release(&u);
	free(uri);
}
END_TEST

/* --- master key IDs through the keystore ------------------------------ */

START_TEST(test_file_key_id)
{
	char *dir = tl_tmpdir_new(), path[512], uri[600], *log;
	struct ks_kms *k, *k2;
	uint8_t mk[32], want[32];

	snprintf(path, sizeof(path), "%s/master.key", dir);
	ck_assert_int_eq(ks_local_keygen(path), 0);
	snprintf(uri, sizeof(uri), "file://%s", path);
	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	ck_assert_str_eq(ks_kms_name(k), uri);
	ck_assert_uint_eq(strlen(ks_kms_key_id(k)),
			  strlen("kmsfs-local:") + 32);
	ck_assert(strncmp(ks_kms_key_id(k), "kmsfs-local:", 12) == 0);
	ks_kms_map_key(k, mk);
	SHA256((const uint8_t *)ks_kms_key_id(k), strlen(ks_kms_key_id(k)),
	       want);
	ck_assert_mem_eq(mk, want, 32);
	/* the same file spelt with %-escapes: same ID */
	snprintf(uri, sizeof(uri), "file://%s/%%6Daster.key", dir);
	ck_assert_int_eq(ks_kms_open(uri, &k2), 0);
	ck_assert_str_eq(ks_kms_key_id(k), ks_kms_key_id(k2));
	ks_kms_free(k2);
	ks_kms_free(k);

	tl_capture_begin();
	snprintf(uri, sizeof(uri), "file://%s?B=1&A=2", path);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EINVAL);
	snprintf(uri, sizeof(uri), "file://localhost%s", path);
	ck_assert_int_eq(ks_kms_open(uri, &k), -EINVAL);
	/* incomplete cloud URIs: -EINVAL when built, -ENOTSUP when not */
	ck_assert_int_eq(ks_kms_open("aws-kms:///k?REGION=r", &k), CLOUD_ERR);
	ck_assert_int_eq(ks_kms_open("gcp-kms:///k", &k), CLOUD_ERR);
	ck_assert_int_eq(ks_kms_open("azure-kms:///k/v", &k), CLOUD_ERR);
	ck_assert_int_eq(ks_kms_open("s3:///k", &k), -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(
	    strstr(log, "unknown KMS query parameters: A, B"));
#ifndef KMSFS_CLOUD_KMS
	ck_assert_ptr_nonnull(strstr(log, "--enable-cloud-kms"));
#endif
	ck_assert_ptr_nonnull(strstr(log, "no KMS provider for scheme s3"));
	free(log);
	ck_assert_int_eq(tl_tmpdir_remove(dir), 0);
}
END_TEST

static Suite *kmsuri_suite(void)
{
	Suite *s = suite_create("kmsuri");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_aws);
	tcase_add_test(tc, test_gs_azure_file);
	tcase_add_test(tc, test_shapes);
	tcase_add_test(tc, test_query_decoding);
	tcase_add_test(tc, test_unknown_params);
	tcase_add_test(tc, test_redaction);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_long);
	tcase_add_test(tc, test_file_key_id);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	log_set_level(LOG_LVL_DEBUG);
	return tl_run(kmsuri_suite());
}
