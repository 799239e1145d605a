/*
 * check_kmsuri.c - unit tests for keystore/kmsuri.c: the URI forms of
 * spec §3 (aws, aws-kms, gs, gcp-kms, azure-kms, file) split into the
 * right scheme, host, decoded path and parameters; Go's query decoding
 * ('+' is a space); leftover parameters reported by name; credentials
 * never in the redacted form or in any log line, including unknown
 * (misspelt) parameters and values split by an unencoded '&'; the class
 * of each parameter on the one list, as the command line check sees it;
 * malformed URIs refused.
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
	/* the second ZED follows an unknown value: maybe its tail */
	ck_assert_ptr_nonnull(strstr(
	    log, "unknown KMS query parameters: Alpha, ZED, and 1 not shown"));
	free(log);
	kmsuri_release(&u);
}
END_TEST

static const char *const secret_values[] = {
    "SeCrEtAwS",  "SeSsIoNtOk", "AzUrEsEcReT", "CrEdEnTiAlS", "BeArEr",
    "AcCoUnTkEy", "LoWeRcAsE",	"EnCoDeDnAmE", "UsErPaSs",    "MiSsPeLt",
    "TaIlOnE",	  "TaIlTwO",	"TaIlThReE",   "TaIlFoUr",
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

/* Parse (expecting r), take AUTH and REGION, check leftovers; the redacted
 * form, kmsuri_redact and every log line must hide the secret values. */
static void assert_hidden(const char *uri, int r, const char *shown)
{
	struct kmsuri u;
	char *red, *log;

	tl_capture_begin();
	ck_assert_int_eq(kmsuri_parse(uri, &u), r);
	if (!r) {
		assert_no_secret(u.redacted);
		kmsuri_take(&u, "AUTH");
		kmsuri_take(&u, "REGION");
		ck_assert_int_eq(kmsuri_check_unused(&u), -EINVAL);
	}
	kmsuri_release(&u);
	log = tl_capture_end();
	assert_no_secret(log);
	ck_assert_msg(strstr(log, shown) != NULL, "'%s' not in %s", shown, log);
	free(log);
	red = kmsuri_redact(uri);
	assert_no_secret(red);
	free(red);
}

/* A parameter no provider takes may be a misspelt credential. */
START_TEST(test_unknown_redacted)
{
	assert_hidden("aws:///k?AUTH=specified&AWS_SECRET_KEY=MiSsPeLt&"
		      "REGION=r",
		      0,
		      "AWS_SECRET_KEY=redacted&REGION=r: unknown KMS query "
		      "parameters: AWS_SECRET_KEY\n");
	assert_hidden("aws:///k?aws_secret_key=MiSsPeLt", 0,
		      "aws_secret_key=redacted");
	assert_hidden("aws:///k?AWS_SECRET_KEY=MiSsPeLt%zz", -EINVAL,
		      "bad %-escape in query parameter AWS_SECRET_KEY");
	ck_assert(kmsuri_param_is_secret("AWS_SECRET_KEY"));
	ck_assert(kmsuri_param_is_secret("Region2"));
	ck_assert(!kmsuri_param_is_secret("region"));
}
END_TEST

/* A value with an unencoded '&' is split there: its tail becomes the
 * name of a parameter, which must not be echoed either. */
START_TEST(test_split_value)
{
	assert_hidden("aws:///k?AUTH=specified&AWS_SECRET_ACCESS_KEY=SeCrEt"
		      "AwS&TaIlOnE&REGION=r",
		      0,
		      "AWS_SECRET_ACCESS_KEY=redacted&redacted&REGION=r: "
		      "unknown KMS query parameters: AWS_SECRET_ACCESS_KEY, "
		      "and 1 not shown");
	/* tails with '=' in them, several, after an unknown value */
	assert_hidden("aws:///k?AWS_SECRET_KEY=MiSsPeLt&TaIlTwO=TaIlThReE&"
		      "TaIlFoUr",
		      0, "parameters: AWS_SECRET_KEY, and 2 not shown");
	/* after a plain value, an unknown name is shown */
	assert_hidden("aws:///k?REGION=r&Stray=x", 0, "parameters: Stray\n");
	/* a tail whose own escape is bad */
	assert_hidden("aws:///k?CREDENTIALS=CrEdEnTiAlS&TaIlOnE%zz=1", -EINVAL,
		      "bad %-escape in a query parameter");
	assert_hidden("aws:///k?BEARER_TOKEN=BeArEr&&TaIlTwO%zz", -EINVAL,
		      "BEARER_TOKEN=redacted&&redacted:");
}
END_TEST

START_TEST(test_param_class)
{
	static const struct {
		const char *uri;
		enum kmsuri_pclass cls;
		enum ks_uri_exposure exp;
	} cases[] = {
	    {"file:///etc/kmsfs/k", KMSURI_PLAIN, KS_URI_SHOWABLE},
	    {"aws:///k?", KMSURI_PLAIN, KS_URI_SHOWABLE},
	    {"aws:///k?AUTH=implicit&&REGION=r&ASSUME_ROLE=a&AWS_ENDPOINT=e",
	     KMSURI_PLAIN, KS_URI_SHOWABLE},
	    {"azure-kms:///k/v?AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=c&"
	     "AZURE_TENANT_ID=t&AZURE_ENVIRONMENT=e&auth=x",
	     KMSURI_PLAIN, KS_URI_SHOWABLE},
	    {"aws:///k?AWS_ACCESS_KEY_ID=AK", KMSURI_IDENTITY,
	     KS_URI_CREDENTIALS},
	    {"aws:///k?REGION=r&AWS_SECRET_ACCESS_KEY=s", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"aws:///k?aws%5Fsession%5ftoken=s", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"gs:///k?CREDENTIALS=c", KMSURI_SECRET, KS_URI_CREDENTIALS},
	    {"gs:///k?BEARER_TOKEN=c", KMSURI_SECRET, KS_URI_CREDENTIALS},
	    {"azure-kms:///k/v?AZURE_CLIENT_SECRET=s", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"azure-kms:///k/v?AZURE_ACCOUNT_KEY=s", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"aws:///k?AUTH=specified&AWS_SECRET_KEY=x", KMSURI_UNKNOWN,
	     KS_URI_UNKNOWN_PARAM},
	    {"aws:///k?=x", KMSURI_UNKNOWN, KS_URI_UNKNOWN_PARAM},
	    {"aws:///k?REG%zzION=x", KMSURI_UNKNOWN, KS_URI_UNKNOWN_PARAM},
	    {"aws:///k?AWS_SECRET_KEY=x&CREDENTIALS=y", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    /* what the parser refuses still counts: argv shows it */
	    {"aws:///k?REGION=r;CREDENTIALS=y", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"aws:///k?REGION=r#AWS_SECRET_ACCESS_KEY=y", KMSURI_SECRET,
	     KS_URI_CREDENTIALS},
	    {"aws://user:pw@host/k", KMSURI_SECRET, KS_URI_CREDENTIALS},
	    {"aws://user@host/k", KMSURI_PLAIN, KS_URI_SHOWABLE},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		ck_assert_msg(kmsuri_uri_class(cases[i].uri) == cases[i].cls,
			      "%s: class %d", cases[i].uri,
			      kmsuri_uri_class(cases[i].uri));
		ck_assert_int_eq(ks_uri_exposure(cases[i].uri), cases[i].exp);
	}
	ck_assert_int_eq(kmsuri_param_class("AWS_ACCESS_KEY_ID"),
			 KMSURI_IDENTITY);
	ck_assert_int_eq(kmsuri_param_class("aws_secret_access_key"),
			 KMSURI_SECRET);
	ck_assert_int_eq(kmsuri_param_class(""), KMSURI_UNKNOWN);
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
	    strstr(log, "unknown KMS query parameters: B, and 1 not shown"));
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
	tcase_add_test(tc, test_unknown_redacted);
	tcase_add_test(tc, test_split_value);
	tcase_add_test(tc, test_param_class);
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
