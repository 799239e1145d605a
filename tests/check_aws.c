/*
 * check_aws.c - the AWS KMS provider against tests/emu/aws_emu.py.
 *
 * The emulator (started once, killed when this process ends) recomputes
 * every SigV4 signature with botocore, so each round trip here proves the
 * signer, the credential source and the wire format together.  Every
 * AUTH mode wraps and unwraps a 32-byte key through ks_provider_aws;
 * injected faults must give the documented errno within bounded time;
 * URIs are validated as CockroachDB does; no secret reaches the log.
 * The provider is driven through its callbacks (kmsuri_parse, open,
 * kmsuri_check_unused, wrap, unwrap), as keystore.c does.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <openssl/sha.h>

#include "../keystore/cred_aws.h"
#include "../keystore/cred_aws_sts.h"
#include "../keystore/http.h"
#include "../keystore/json.h"
#include "../keystore/kmsuri.h"
#include "../keystore/provider.h"
#include "../lib/log.h"

#ifndef KMSFS_SRCDIR
#define KMSFS_SRCDIR "."
#endif

#define KEY_ID "1234abcd-12ab-34cd-56ef-1234567890ab"
#define OTHER_KEY "0987dcba-09fe-87dc-65ba-ab0987654321"
#define AKID "AKIDEXAMPLE"
#define SECRET_ENC "wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
#define SECRET_RAW "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define ROLE_A "arn:aws:iam::111122223333:role/kmsfs-a"
#define ROLE_B "arn:aws:iam::111122223333:role/kmsfs-b"
#define ROLE_WEB "arn:aws:iam::111122223333:role/kmsfs-web"
#define WEB_TOKEN                                                              \
	"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrbXNmcy10ZXN0In0.c2lnbmF0dXJl"
#define ECS_TOKEN "ecs-authorization-token-123"

#define SPEC_Q                                                                 \
	"REGION=us-east-1&AWS_ACCESS_KEY_ID=" AKID                             \
	"&AWS_SECRET_ACCESS_KEY=" SECRET_ENC

static pid_t emu_pid;
static int emu_port;
static char emu_url[64];
static char tmpdir[64];

/* --- emulator -------------------------------------------------------- */

/* Start aws_emu.py with up to two extra arguments; returns its port. */
static int emu_spawn(const char *a1, const char *a2, pid_t *pid)
{
	int in[2], out[2];
	char line[32] = {0};
	size_t n = 0;

	if (pipe(in) || pipe(out))
		abort();
	*pid = fork();
	if (*pid < 0)
		abort();
	if (!*pid) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl("/usr/bin/python3", "python3",
		      KMSFS_SRCDIR "/tests/emu/aws_emu.py",
		      "--exit-on-stdin-eof", a1, a2, (char *)NULL);
		_exit(127);
	}
	close(in[0]); /* in[1] stays open: the emulator lives while we do */
	close(out[1]);
	fcntl(in[1], F_SETFD, FD_CLOEXEC);
	/* Read the whole first line: closing early would break its pipe. */
	while (n < sizeof(line) - 1 && !strchr(line, '\n')) {
		ssize_t k = read(out[0], line + n, sizeof(line) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(out[0]);
	return atoi(line);
}

static void emu_start(void)
{
	emu_port = emu_spawn(NULL, NULL, &emu_pid);
	if (emu_port <= 0) {
		fprintf(stderr, "check_aws: aws_emu.py did not start\n");
		exit(EXIT_FAILURE);
	}
	snprintf(emu_url, sizeof(emu_url), "http://127.0.0.1:%d", emu_port);
}

static void emu_stop(void)
{
	if (emu_pid > 0) {
		kill(emu_pid, SIGTERM);
		waitpid(emu_pid, NULL, 0);
	}
}

static void emu_hook(const char *name, const char *json)
{
	struct buf body;
	struct http_response rs = {0};
	char url[128];
	struct http_request rq = {
	    .method = "POST",
	    .url = url,
	    .body = &body,
	    .headers = {"Content-Type: application/json"}};

	snprintf(url, sizeof(url), "%s/_emu/%s", emu_url, name);
	buf_init(&body, 0);
	buf_init(&rs.body, 0);
	ck_assert_int_eq(buf_addstr(&body, json), 0);
	ck_assert_int_eq(http_do(&rq, &rs), 0);
	ck_assert_int_eq(rs.status, 200);
	buf_release(&body);
	buf_release(&rs.body);
}

/* stats.count[name] (0 when absent). */
static long emu_count(const char *name)
{
	struct http_response rs = {0};
	struct json_object *o;
	char url[128];
	struct http_request rq = {.method = "GET", .url = url};
	int64_t v = 0;

	snprintf(url, sizeof(url), "%s/_emu/stats", emu_url);
	buf_init(&rs.body, 0);
	ck_assert_int_eq(http_do(&rq, &rs), 0);
	ck_assert_int_eq(json_parse((char *)rs.body.data, rs.body.len, &o), 0);
	if (json_get_int64(json_get(o, "count"), name, &v))
		v = 0;
	json_free(o);
	buf_release(&rs.body);
	return (long)v;
}

/* stats.last[what][field] as a string, "" when absent. */
static void emu_last(const char *what, const char *field, char *out, size_t n)
{
	struct http_response rs = {0};
	struct json_object *o;
	char url[128];
	struct http_request rq = {.method = "GET", .url = url};
	const char *v;

	snprintf(url, sizeof(url), "%s/_emu/stats", emu_url);
	buf_init(&rs.body, 0);
	ck_assert_int_eq(http_do(&rq, &rs), 0);
	ck_assert_int_eq(json_parse((char *)rs.body.data, rs.body.len, &o), 0);
	v = json_get_str(json_get(json_get(o, "last"), what), field);
	snprintf(out, n, "%s", v ? v : "");
	json_free(o);
	buf_release(&rs.body);
}

/* --- provider helpers ---------------------------------------------------- */

static int open_uri(const char *uri, void **st)
{
	struct kmsuri u;
	int r = kmsuri_parse(uri, &u);

	*st = NULL;
	if (r)
		return r;
	r = ks_provider_aws.open(&u, st);
	if (!r) {
		r = kmsuri_check_unused(&u);
		if (r) {
			ks_provider_aws.free(*st);
			*st = NULL;
		}
	}
	kmsuri_release(&u);
	return r;
}

/* aws:///<key>?<query>&AWS_ENDPOINT=<emulator> */
static char *uri_of(const char *key, const char *query)
{
	char *s;

	ck_assert_int_ge(asprintf(&s, "aws:///%s?%s%sAWS_ENDPOINT=%s", key,
				  query, *query ? "&" : "", emu_url),
			 0);
	return s;
}

/* Wrap a fresh 32-byte key and unwrap it again; returns the first error. */
static int roundtrip_uri(const char *uri)
{
	struct secret *dk = NULL, *back = NULL;
	struct buf blob;
	void *st;
	int r = open_uri(uri, &st);

	if (r)
		return r;
	buf_init(&blob, KS_MAX_BLOB);
	ck_assert_int_eq(secret_random(&dk, 32), 0);
	r = ks_provider_aws.wrap(st, dk, &blob);
	if (!r) {
		ck_assert_uint_gt(blob.len, 32);
		r = ks_provider_aws.unwrap(st, blob.data, blob.len, &back);
	}
	if (!r)
		ck_assert(secret_equal(dk, back));
	secret_free(dk);
	secret_free(back);
	buf_release(&blob);
	ks_provider_aws.free(st);
	return r;
}

static int roundtrip(const char *key, const char *query)
{
	char *uri = uri_of(key, query);
	int r = roundtrip_uri(uri);

	free(uri);
	return r;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void write_file(const char *name, const char *text, char *path_out,
		       size_t n)
{
	FILE *f;

	snprintf(path_out, n, "%s/%s", tmpdir, name);
	f = fopen(path_out, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

/* Every test starts from an empty credential environment. */
static void setup(void)
{
	static const char *const vars[] = {
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_SESSION_TOKEN",
	    "AWS_SECURITY_TOKEN",
	    "AWS_PROFILE",
	    "AWS_DEFAULT_PROFILE",
	    "AWS_WEB_IDENTITY_TOKEN_FILE",
	    "AWS_ROLE_ARN",
	    "AWS_ROLE_SESSION_NAME",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
	    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	    "AWS_ENDPOINT_URL_STS",
	    "AWS_CREDENTIAL_EXPIRATION"};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	emu_hook("reset", "{}");
	emu_hook("config", "{\"cred_ttl\": 3600}");
}

/* --- AUTH modes ---------------------------------------------------------- */

START_TEST(test_specified)
{
	ck_assert_int_eq(roundtrip(KEY_ID,
				   "REGION=us-east-1&AUTH=specified"
				   "&AWS_ACCESS_KEY_ID=" AKID
				   "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC),
			 0);
	/* AUTH defaults to specified; a raw '+' decodes to ' ' and is
	 * turned back, as CockroachDB does; alias and alias ARN work. */
	ck_assert_int_eq(
	    roundtrip("alias/kmsfs-test",
		      "REGION=us-east-1&AWS_ACCESS_KEY_ID=AKIDPLUSSECRET"
		      "&AWS_SECRET_ACCESS_KEY=ab+cd/ef+gh/ij+kl/mn+op/"
		      "qr+st/uv+wx/yz+0"),
	    0);
	ck_assert_int_eq(emu_count("kms.Encrypt"), 2);
	ck_assert_int_eq(emu_count("kms.Decrypt"), 2);
	/* CockroachDB's requests: nothing but these members. */
	{
		char v[128];

		emu_last("kms.Encrypt", "members_str", v, sizeof(v));
		ck_assert_str_eq(v, "KeyId,Plaintext");
		emu_last("kms.Decrypt", "members_str", v, sizeof(v));
		ck_assert_str_eq(v, "CiphertextBlob,KeyId");
		emu_last("sigv4", "signed_headers", v, sizeof(v));
		ck_assert_str_eq(v,
				 "content-type;host;x-amz-date;x-amz-target");
	}
}
END_TEST

/* Temporary credentials from STS through the credential module. */
static void temp_creds(char **akid, char **secret, struct buf *token)
{
	struct aws_cred_cfg cfg = {.access_key_id = AKID,
				   .secret_key = SECRET_RAW,
				   .region = "us-east-1",
				   .endpoint = emu_url,
				   .assume_role = ROLE_A ";external_id=kmsfs-"
							 "ext-1"};
	struct aws_cred *c;
	struct sigv4_creds sc;
	struct buf b;

	ck_assert_int_eq(aws_cred_new(&cfg, &c), 0);
	ck_assert_int_eq(aws_cred_get(c, &sc), 0);
	*akid = strdup(sc.access_key_id);
	buf_init(&b, 0);
	ck_assert_int_eq(http_urlencode(&b, (const char *)sc.secret_key->bytes,
					sc.secret_key->len),
			 0);
	*secret = strdup((char *)b.data);
	ck_assert_int_eq(
	    http_urlencode(token, sc.session_token, strlen(sc.session_token)),
	    0);
	buf_release(&b);
	aws_cred_free(c);
}

START_TEST(test_specified_token)
{
	struct buf tok;
	char *akid, *secret, *q;

	buf_init(&tok, 0);
	temp_creds(&akid, &secret, &tok);
	ck_assert_int_ge(
	    asprintf(&q,
		     "REGION=us-east-1&AWS_ACCESS_KEY_ID=%s"
		     "&AWS_SECRET_ACCESS_KEY=%s&AWS_SESSION_TOKEN=%s",
		     akid, secret, (char *)tok.data),
	    0);
	ck_assert_int_eq(roundtrip(KEY_ID, q), 0);
	free(q);
	/* The same keys without their token are not valid. */
	ck_assert_int_ge(asprintf(&q,
				  "REGION=us-east-1&AWS_ACCESS_KEY_ID=%s"
				  "&AWS_SECRET_ACCESS_KEY=%s",
				  akid, secret),
			 0);
	ck_assert_int_eq(roundtrip(KEY_ID, q), -EACCES);
	free(q);
	free(akid);
	free(secret);
	buf_release(&tok);
}
END_TEST

START_TEST(test_implicit_env)
{
	setenv("AWS_ACCESS_KEY_ID", AKID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET_RAW, 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	/* Implicit credentials feed an ASSUME_ROLE chain too. */
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"
					   "&ASSUME_ROLE=" ROLE_A
					   "%3Bexternal_id%3Dkmsfs-ext-1"),
			 0);
	ck_assert_int_eq(emu_count("sts.AssumeRole"), 1);
	/* A wrong secret is refused by the signature check. */
	setenv("AWS_SECRET_ACCESS_KEY",
	       "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
	ck_assert_int_eq(emu_count("kms.error.InvalidSignatureException"), 1);
	/* Nothing anywhere: no credentials. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
}
END_TEST

START_TEST(test_implicit_shared_files)
{
	char cred[256], conf[256];

	write_file("credentials",
		   "[default]\naws_access_key_id = AKIDUNKNOWN\n"
		   "aws_secret_access_key = nope\n\n"
		   "# the one to use\n[kmsfs]\n"
		   "aws_access_key_id=" AKID "\n"
		   "aws_secret_access_key = " SECRET_RAW "  \n",
		   cred, sizeof(cred));
	write_file("config",
		   "[default]\nregion = us-east-1\n"
		   "[profile  cfgonly ]\naws_access_key_id = " AKID "\n"
		   "aws_secret_access_key = " SECRET_RAW "\n"
		   "[profile rolep]\nrole_arn = " ROLE_A "\n"
		   "source_profile = kmsfs\n",
		   conf, sizeof(conf));
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
	setenv("AWS_CONFIG_FILE", conf, 1);
	setenv("AWS_PROFILE", "kmsfs", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	setenv("AWS_PROFILE", "cfgonly", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	setenv("AWS_PROFILE", "rolep", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -ENOTSUP);
	setenv("AWS_PROFILE", "missing", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
	unsetenv("AWS_PROFILE"); /* [default] has an unknown key id */
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
	ck_assert_int_eq(emu_count("kms.error.UnrecognizedClientException"), 1);
}
END_TEST

START_TEST(test_implicit_web_identity)
{
	char tok[256];

	write_file("web-token", WEB_TOKEN "\n", tok, sizeof(tok));
	setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok, 1);
	setenv("AWS_ROLE_ARN", ROLE_WEB, 1);
	setenv("AWS_ROLE_SESSION_NAME", "kmsfs-web-test", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	ck_assert_int_eq(emu_count("sts.AssumeRoleWithWebIdentity"), 1);
	write_file("web-token", "forged", tok, sizeof(tok));
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
}
END_TEST

START_TEST(test_implicit_ecs)
{
	char full[128];

	snprintf(full, sizeof(full), "%s/v2/credentials/task-1", emu_url);
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", full, 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_TOKEN, 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	ck_assert_int_eq(emu_count("ecs.creds"), 1);
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
	/* Plain http to a non-loopback host is refused. */
	setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://192.0.2.1/x", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EINVAL);
}
END_TEST

START_TEST(test_implicit_imds)
{
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", emu_url, 1);
	unsetenv("AWS_EC2_METADATA_DISABLED");
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 0);
	ck_assert_int_eq(emu_count("imds.token"), 1);
	ck_assert_int_eq(emu_count("imds.creds"), 1);
	setenv("AWS_EC2_METADATA_DISABLED", "TRUE", 1);
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"),
			 -EACCES);
	ck_assert_int_eq(emu_count("imds.token"), 1);
}
END_TEST

START_TEST(test_assume_role_chain)
{
	char v[256];

	ck_assert_int_eq(roundtrip(KEY_ID,
				   "REGION=us-east-1&AWS_ACCESS_KEY_ID=" AKID
				   "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC
				   "&ASSUME_ROLE=" ROLE_A
				   "%3Bexternal_id%3Dkmsfs-ext-1," ROLE_B),
			 0);
	ck_assert_int_eq(emu_count("sts.AssumeRole"), 2);
	emu_last("sts.AssumeRole", "caller", v, sizeof(v));
	ck_assert_str_eq(v, ROLE_A);
	emu_last("kms.Decrypt", "principal", v, sizeof(v));
	ck_assert_str_eq(v, ROLE_B);
	/* Implicit base credentials feed the chain too (none here). */
	ck_assert_int_eq(roundtrip(KEY_ID, "REGION=us-east-1&AUTH=implicit"
					   "&ASSUME_ROLE=" ROLE_A
					   "%3Bexternal_id%3Dkmsfs-ext-1"),
			 -EACCES);
	/* Wrong order (B trusts only A) and a missing external id. */
	ck_assert_int_eq(roundtrip(KEY_ID,
				   "REGION=us-east-1&AWS_ACCESS_KEY_ID=" AKID
				   "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC
				   "&ASSUME_ROLE=" ROLE_B),
			 -EACCES);
	ck_assert_int_eq(roundtrip(KEY_ID,
				   "REGION=us-east-1&AWS_ACCESS_KEY_ID=" AKID
				   "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC
				   "&ASSUME_ROLE=" ROLE_A),
			 -EACCES);
}
END_TEST

/* Credentials that expire within the refresh margin are fetched again
 * before every call; long-lived ones are reused. */
START_TEST(test_refresh)
{
	static const char q[] =
	    "REGION=us-east-1&AWS_ACCESS_KEY_ID=" AKID
	    "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC "&ASSUME_ROLE=" ROLE_A
	    "%3Bexternal_id%3Dkmsfs-ext-1";

	ck_assert_int_eq(roundtrip(KEY_ID, q), 0);
	ck_assert_int_eq(emu_count("sts.AssumeRole"), 1);
	emu_hook("config", "{\"cred_ttl\": 200}");
	ck_assert_int_eq(roundtrip(KEY_ID, q), 0);
	ck_assert_int_eq(emu_count("sts.AssumeRole"), 3);
	/* KMS calls the cached token expired: drop it, fetch, try again. */
	emu_hook("config", "{\"cred_ttl\": 3600}");
	emu_hook("fault", "{\"mode\":\"expired\",\"target\":\"kms\","
			  "\"count\":1}");
	ck_assert_int_eq(roundtrip(KEY_ID, q), 0);
	ck_assert_int_eq(emu_count("sts.AssumeRole"), 5);
	ck_assert_int_eq(emu_count("fault.expired"), 1);
	/* Static keys cannot be refreshed: one retry, then -EACCES. */
	emu_hook("fault", "{\"mode\":\"expired\",\"target\":\"kms\"}");
	ck_assert_int_eq(roundtrip(KEY_ID, SPEC_Q), -EACCES);
	ck_assert_int_eq(emu_count("fault.expired"), 3);
}
END_TEST

/* --- faults and bad blobs ------------------------------------------------ */

static int wrap_only(double *secs)
{
	struct secret *dk = NULL;
	struct buf blob;
	char *uri = uri_of(KEY_ID, SPEC_Q);
	void *st;
	double t0;
	int r;

	ck_assert_int_eq(open_uri(uri, &st), 0);
	buf_init(&blob, KS_MAX_BLOB);
	ck_assert_int_eq(secret_random(&dk, 32), 0);
	t0 = now_s();
	r = ks_provider_aws.wrap(st, dk, &blob);
	*secs = now_s() - t0;
	if (r)
		ck_assert_uint_eq(blob.len, 0);
	secret_free(dk);
	buf_release(&blob);
	ks_provider_aws.free(st);
	free(uri);
	return r;
}

START_TEST(test_faults)
{
	double s;

	emu_hook("fault", "{\"mode\":\"throttle\",\"target\":\"kms\"}");
	ck_assert_int_eq(wrap_only(&s), -EAGAIN);
	ck_assert_int_eq(emu_count("fault.throttle"), 3); /* retried, bounded */
	emu_hook("fault",
		 "{\"mode\":\"throttle\",\"target\":\"kms\",\"count\":1}");
	ck_assert_int_eq(wrap_only(&s), 0); /* a passing throttle is absorbed */
	emu_hook("fault", "{\"mode\":\"denied\",\"target\":\"kms\"}");
	ck_assert_int_eq(wrap_only(&s), -EACCES);
	emu_hook("fault", "{\"mode\":\"500\",\"target\":\"kms\",\"count\":1}");
	ck_assert_int_eq(wrap_only(&s), 0); /* retried once */
	emu_hook("fault", "{\"mode\":\"500\",\"target\":\"kms\"}");
	ck_assert_int_eq(wrap_only(&s), -EAGAIN);
	ck_assert_int_eq(emu_count("fault.500"), 4); /* 1 + 3 tries */
	ck_assert(s < 10.0);
	emu_hook("fault", "{\"mode\":\"down\",\"target\":\"kms\"}");
	ck_assert_int_eq(wrap_only(&s), -ETIMEDOUT);
	ck_assert(s < 5.0);
	emu_hook("fault", "{\"mode\":\"slow\",\"target\":\"kms\","
			  "\"delay\":6}");
	ck_assert_int_eq(wrap_only(&s), -ETIMEDOUT);
	ck_assert(s >= 2.5 && s < 5.0); /* one 3 s try, no retry */
	emu_hook("fault", "{\"mode\":\"off\"}");
	ck_assert_int_eq(wrap_only(&s), 0);
	/* Nothing listens at all. */
	ck_assert_int_eq(roundtrip_uri("aws:///k?REGION=r&AWS_ACCESS_KEY_ID=a"
				       "&AWS_SECRET_ACCESS_KEY=b&AWS_ENDPOINT="
				       "http://127.0.0.1:1"),
			 -ETIMEDOUT);
}
END_TEST

START_TEST(test_sts_faults)
{
	static const char q[] =
	    SPEC_Q "&ASSUME_ROLE=" ROLE_A "%3Bexternal_id%3Dkmsfs-ext-1";

	emu_hook("fault", "{\"mode\":\"throttle\",\"target\":\"sts\"}");
	ck_assert_int_eq(roundtrip(KEY_ID, q), -EAGAIN);
	emu_hook("fault", "{\"mode\":\"denied\",\"target\":\"sts\"}");
	ck_assert_int_eq(roundtrip(KEY_ID, q), -EACCES);
	emu_hook("fault", "{\"mode\":\"down\",\"target\":\"sts\"}");
	ck_assert_int_eq(roundtrip(KEY_ID, q), -ETIMEDOUT);
}
END_TEST

START_TEST(test_bad_blobs)
{
	struct secret *dk = NULL, *back = NULL;
	struct buf blob;
	char *uri = uri_of(KEY_ID, SPEC_Q), *uri2 = uri_of(OTHER_KEY, SPEC_Q);
	void *st, *st2;

	ck_assert_int_eq(open_uri(uri, &st), 0);
	ck_assert_int_eq(open_uri(uri2, &st2), 0);
	buf_init(&blob, KS_MAX_BLOB);
	ck_assert_int_eq(secret_random(&dk, 32), 0);
	ck_assert_int_eq(ks_provider_aws.wrap(st, dk, &blob), 0);
	/* Another key's URI: IncorrectKeyException. */
	ck_assert_int_eq(
	    ks_provider_aws.unwrap(st2, blob.data, blob.len, &back), -ENOKEY);
	ck_assert_ptr_null(back);
	/* Tampered anywhere: InvalidCiphertextException. */
	for (size_t i = 0; i < blob.len; i += 13) {
		blob.data[i] ^= 0x40;
		ck_assert_int_eq(
		    ks_provider_aws.unwrap(st, blob.data, blob.len, &back),
		    -EBADMSG);
		blob.data[i] ^= 0x40;
	}
	ck_assert_int_eq(
	    ks_provider_aws.unwrap(st, blob.data, blob.len - 1, &back),
	    -EBADMSG);
	ck_assert_int_eq(ks_provider_aws.unwrap(st, blob.data, blob.len, &back),
			 0);
	ck_assert(secret_equal(dk, back));
	secret_free(back);
	secret_free(dk);
	buf_release(&blob);
	ks_provider_aws.free(st);
	ks_provider_aws.free(st2);
	free(uri);
	free(uri2);
}
END_TEST

/* --- error mapping through the transport seam ---------------------------- */

struct canned {
	long status;
	const char *errtype; /* x-amzn-ErrorType header, or NULL */
	const char *body;
};

static const struct canned *canned_reply;
static int canned_calls;

static int canned_transport(const struct http_request *req,
			    struct http_response *resp, void *ctx)
{
	(void)ctx;
	canned_calls++;
	ck_assert_str_eq(req->method, "POST");
	if (!canned_reply->status)
		return -ETIMEDOUT;
	resp->status = canned_reply->status;
	if (canned_reply->errtype)
		snprintf(resp->header_error_type,
			 sizeof(resp->header_error_type), "%s",
			 canned_reply->errtype);
	return buf_addstr(&resp->body, canned_reply->body);
}

START_TEST(test_error_mapping)
{
	static const struct {
		struct canned c;
		int want;
		int calls;
	} v[] = {
	    {{400, NULL,
	      "{\"__type\":\"com.amazonaws.kms#NotFoundException"
	      ":http://internal.amazon.com/coral/\"}"},
	     -ENOKEY,
	     1},
	    {{400, NULL, "{\"__type\":\"DisabledException\"}"}, -ENOKEY, 1},
	    {{400, NULL, "{\"__type\":\"KMSInvalidStateException\"}"},
	     -ENOKEY,
	     1},
	    {{400, NULL, "{\"__type\":\"InvalidCiphertextException\"}"},
	     -EBADMSG,
	     1},
	    {{400, NULL, "{\"__type\":\"IncorrectKeyException\"}"}, -ENOKEY, 1},
	    {{400, NULL,
	      "{\"__type\":\"AccessDeniedException\","
	      "\"Message\":\"no\"}"},
	     -EACCES,
	     1},
	    {{403, "UnrecognizedClientException:http://x/", "<html>"},
	     -EACCES,
	     1},
	    {{400, NULL, "{\"__type\":\"ValidationException\"}"}, -EINVAL, 1},
	    /* throttling is retried with backoff, like 5xx */
	    {{429, NULL, ""}, -EAGAIN, 3},
	    {{400, NULL, "{\"__type\":\"LimitExceededException\"}"},
	     -EAGAIN,
	     3},
	    {{400, NULL, "{\"__type\":\"DependencyTimeoutException\"}"},
	     -EAGAIN,
	     3},
	    {{503, NULL, "Service Unavailable"}, -EAGAIN, 3},
	    {{0, NULL, NULL}, -ETIMEDOUT, 3},
	    {{302, NULL, ""}, -EPROTO, 1},
	    {{200, NULL, "not json"}, -EPROTO, 1},
	    {{200, NULL, "{\"CiphertextBlob\":\"!!\"}"}, -EPROTO, 1},
	    {{200, NULL, "{\"CiphertextBlob\":\"\"}"}, -EPROTO, 1},
	    {{200, NULL, "{\"CiphertextBlob\":42}"}, -EPROTO, 1},
	    {{200, NULL, "{\"KeyId\":\"k\"}"}, -EPROTO, 1},
	    {{200, NULL, "{\"CiphertextBlob\":\"AAEC\"}"}, 0, 1},
	};
	struct secret *dk = NULL;
	struct buf blob;
	void *st;

	ck_assert_int_eq(open_uri("aws:///k?" SPEC_Q, &st), 0);
	ck_assert_int_eq(secret_random(&dk, 32), 0);
	buf_init(&blob, KS_MAX_BLOB);
	http_set_transport(canned_transport, NULL);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		canned_reply = &v[i].c;
		canned_calls = 0;
		buf_reset(&blob);
		ck_assert_msg(ks_provider_aws.wrap(st, dk, &blob) == v[i].want,
			      "case %zu", i);
		ck_assert_msg(canned_calls == v[i].calls, "case %zu: %d calls",
			      i, canned_calls);
	}
	ck_assert_uint_eq(blob.len, 3);
	http_set_transport(NULL, NULL);
	buf_release(&blob);
	secret_free(dk);
	ks_provider_aws.free(st);
}
END_TEST

/* --- URIs ---------------------------------------------------------------- */

START_TEST(test_uri_validation)
{
	static const char *const bad[] = {
	    "aws:///k?AUTH=implicit",
	    "aws:///k?REGION=us-east-1",
	    "aws:///k?REGION=us-east-1&AUTH=specified&AWS_ACCESS_KEY_ID=a",
	    "aws:///k?REGION=us-east-1&AWS_SECRET_ACCESS_KEY=s",
	    "aws:///k?REGION=us-east-1&AUTH=magic",
	    "aws:///k?REGION=us-east-1&AUTH=implicit&AWS_REGION=x",
	    "aws:///?REGION=us-east-1&AUTH=implicit",
	    "aws:///k?REGION=us-east-1&AUTH=implicit&ASSUME_ROLE=a,,b",
	    "aws:///k?REGION=us-east-1&AUTH=implicit&ASSUME_ROLE=a,",
	    "aws:///k?REGION=us/east&AUTH=implicit",
	    "aws:///k?AUTH=implicit&AWS_ENDPOINT=ftp://x",
	    "aws:///k?AUTH=implicit&AWS_ENDPOINT=https://u@x",
	};
	void *st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(open_uri(bad[i], &st) == -EINVAL, "%s", bad[i]);
		ck_assert_ptr_null(st);
	}
	/* A custom endpoint stands without REGION (default-region). */
	ck_assert_int_eq(open_uri("aws:///k?AUTH=implicit&AWS_ENDPOINT="
				  "kms.internal:8443",
				  &st),
			 0);
	ks_provider_aws.free(st);
	ck_assert_int_eq(roundtrip(KEY_ID,
				   "AWS_ACCESS_KEY_ID=" AKID
				   "&AWS_SECRET_ACCESS_KEY=" SECRET_ENC),
			 0);
	{
		char v[64];

		emu_last("sigv4", "region", v, sizeof(v));
		ck_assert_str_eq(v, "default-region");
	}
}
END_TEST

START_TEST(test_master_key_id)
{
	static const char arn[] = "arn:aws:kms:us-east-1:111122223333:key/"
				  "1234abcd-12ab-34cd-56ef-1234567890ab";
	uint8_t md[32];
	char hex[65];
	void *st;

	ck_assert_int_eq(open_uri("aws-kms:///arn:aws:kms:us-east-1:"
				  "111122223333:key/1234abcd-12ab-34cd-56ef-"
				  "1234567890ab?REGION=us-east-1&AUTH=implicit",
				  &st),
			 0);
	ck_assert_str_eq(ks_provider_aws.master_key_id(st), arn);
	SHA256((const uint8_t *)ks_provider_aws.master_key_id(st), strlen(arn),
	       md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ck_assert_msg(!strncmp(hex, "e292c505", 8) &&
			  !strcmp(hex + 58, "fb0f5d"),
		      "%s", hex);
	ks_provider_aws.free(st);
	/* As typed: an alias stays an alias, one leading '/' only. */
	ck_assert_int_eq(
	    open_uri("aws:///alias/Name?REGION=r&AUTH=implicit", &st), 0);
	ck_assert_str_eq(ks_provider_aws.master_key_id(st), "alias/Name");
	ks_provider_aws.free(st);
	ck_assert_int_eq(open_uri("aws:////k?REGION=r&AUTH=implicit", &st), 0);
	ck_assert_str_eq(ks_provider_aws.master_key_id(st), "/k");
	ks_provider_aws.free(st);
	ck_assert_str_eq(ks_provider_aws.aliases[0], "aws-kms");
	ck_assert(ks_provider_aws.built);
}
END_TEST

START_TEST(test_endpoints_and_times)
{
	static const struct {
		const char *s;
		time_t t;
	} times[] = {{"2030-01-01T00:00:00Z", 1893456000},
		     {"2030-01-01T00:00:00.123Z", 1893456000},
		     {"2030-01-01T00:00:01+00:00", 1893456001}};
	static const char *const bad_times[] = {
	    "", "2030-01-01", "2030-01-01T00:00:00",
	    "2030-01-01T00:00:00+01:00", "2030-01-01T00:00:00Zx"};
	char *s;
	time_t t;

	ck_assert_int_eq(aws_sts_endpoint(NULL, "eu-west-1", &s), 0);
	ck_assert_str_eq(s, "https://sts.eu-west-1.amazonaws.com/");
	free(s);
	setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9/", 1);
	ck_assert_int_eq(aws_sts_endpoint(NULL, "eu-west-1", &s), 0);
	ck_assert_str_eq(s, "http://127.0.0.1:9/");
	free(s);
	ck_assert_int_eq(aws_sts_endpoint("kms.internal:8443", "r", &s), 0);
	ck_assert_str_eq(s, "https://kms.internal:8443/");
	free(s);
	unsetenv("AWS_ENDPOINT_URL_STS");
	ck_assert_int_eq(aws_endpoint_base("http://h:1//", &s), 0);
	ck_assert_str_eq(s, "http://h:1");
	free(s);
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		ck_assert_int_eq(aws_parse_time(times[i].s, &t), 0);
		ck_assert_int_eq(t, times[i].t);
	}
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++)
		ck_assert_int_eq(aws_parse_time(bad_times[i], &t), -EPROTO);
}
END_TEST

/* HTTPS with a private CA: verified with KMSFS_CA_BUNDLE, refused
 * without it. */
/* A throw-away self-signed certificate for 127.0.0.1 (or another CN). */
static void make_cert(const char *name, const char *cn, char *crt, char *key,
		      size_t n)
{
	char cmd[1024];

	snprintf(crt, n, "%s/%s.crt", tmpdir, name);
	snprintf(key, n, "%s/%s.key", tmpdir, name);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt "
		 "ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=%s "
		 "-addext subjectAltName=IP:127.0.0.1 -keyout '%s' -out '%s' "
		 ">/dev/null 2>&1",
		 cn, key, crt);
	ck_assert_int_eq(system(cmd), 0);
}

/* HTTPS with a private CA: verified with KMSFS_CA_BUNDLE, refused with
 * a CA that did not sign the server's certificate.  (Small CA files:
 * the system bundle takes seconds to parse under valgrind.) */
START_TEST(test_tls)
{
	char crt[256], key[256], other[256], okey[256], a1[300], a2[300];
	char *uri;
	pid_t pid;
	int port;

	if (system("openssl version >/dev/null 2>&1") != 0) {
		printf("check_aws: no openssl CLI, TLS round trip skipped\n");
		return;
	}
	make_cert("tls", "127.0.0.1", crt, key, sizeof(crt));
	make_cert("other", "other-ca", other, okey, sizeof(other));
	snprintf(a1, sizeof(a1), "--tls-cert=%s", crt);
	snprintf(a2, sizeof(a2), "--tls-key=%s", key);
	port = emu_spawn(a1, a2, &pid);
	ck_assert_int_gt(port, 0);
	ck_assert_int_ge(asprintf(&uri,
				  "aws:///" KEY_ID "?%s"
				  "&AWS_ENDPOINT=https://127.0.0.1:%d",
				  SPEC_Q, port),
			 0);
	setenv("KMSFS_CA_BUNDLE", other, 1);
	ck_assert_int_eq(roundtrip_uri(uri), -EPROTO);
	setenv("KMSFS_CA_BUNDLE", crt, 1);
	ck_assert_int_eq(roundtrip_uri(uri), 0);
	unsetenv("KMSFS_CA_BUNDLE");
	free(uri);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
END_TEST

/* Full verbosity, then grep the log for every secret that was used. */
START_TEST(test_no_secret_logged)
{
	struct buf tok, log;
	char *akid, *secret, *q, path[256];
	int fd, saved;

	buf_init(&tok, 0);
	temp_creds(&akid, &secret, &tok);
	snprintf(path, sizeof(path), "%s/log", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	saved = dup(2);
	dup2(fd, 2);
	log_set_level(LOG_LVL_DEBUG);
	ck_assert_int_ge(
	    asprintf(&q,
		     "REGION=us-east-1&AWS_ACCESS_KEY_ID=%s"
		     "&AWS_SECRET_ACCESS_KEY=%s&AWS_SESSION_TOKEN=%s"
		     "&ASSUME_ROLE=" ROLE_B,
		     akid, secret, (char *)tok.data),
	    0);
	ck_assert_int_eq(roundtrip(KEY_ID, q), 0);
	emu_hook("fault", "{\"mode\":\"denied\",\"target\":\"kms\"}");
	ck_assert_int_ne(roundtrip(KEY_ID, q), 0);
	ck_assert_int_ne(roundtrip(KEY_ID, SPEC_Q "&AUTH=bogus"), 0);
	log_set_level(LOG_LVL_INFO);
	dup2(saved, 2);
	close(saved);
	close(fd);
	buf_init(&log, 0);
	ck_assert_int_eq(buf_read_file(&log, path), 0);
	ck_assert_ptr_nonnull(strstr((char *)log.data, "AccessDenied"));
	ck_assert_ptr_null(strstr((char *)log.data, secret));
	ck_assert_ptr_null(strstr((char *)log.data, (char *)tok.data));
	ck_assert_ptr_null(strstr((char *)log.data, SECRET_ENC));
	ck_assert_ptr_null(strstr((char *)log.data, "EXAMPLEKEY"));
	ck_assert_ptr_null(strstr((char *)log.data, "Authorization"));
	free(q);
	free(akid);
	free(secret);
	buf_release(&tok);
	buf_release(&log);
}
END_TEST

static Suite *aws_suite(void)
{
	Suite *s = suite_create("aws");
	TCase *a = tcase_create("auth");
	TCase *f = tcase_create("faults");
	TCase *u = tcase_create("uri");

	tcase_add_checked_fixture(a, setup, NULL);
	tcase_add_checked_fixture(f, setup, NULL);
	tcase_add_checked_fixture(u, setup, NULL);
	tcase_set_timeout(a, 60);
	tcase_set_timeout(f, 60);
	tcase_set_timeout(u, 30);
	tcase_add_test(a, test_specified);
	tcase_add_test(a, test_specified_token);
	tcase_add_test(a, test_implicit_env);
	tcase_add_test(a, test_implicit_shared_files);
	tcase_add_test(a, test_implicit_web_identity);
	tcase_add_test(a, test_implicit_ecs);
	tcase_add_test(a, test_implicit_imds);
	tcase_add_test(a, test_assume_role_chain);
	tcase_add_test(a, test_refresh);
	tcase_add_test(f, test_faults);
	tcase_add_test(f, test_sts_faults);
	tcase_add_test(f, test_bad_blobs);
	tcase_add_test(f, test_error_mapping);
	tcase_add_test(u, test_uri_validation);
	tcase_add_test(u, test_master_key_id);
	tcase_add_test(u, test_no_secret_logged);
	tcase_add_test(u, test_tls);
	tcase_add_test(u, test_endpoints_and_times);
	suite_add_tcase(s, a);
	suite_add_tcase(s, f);
	suite_add_tcase(s, u);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* Exit status 77: automake's "skipped". */
	if (system("/usr/bin/python3 -c 'import botocore, cryptography' "
		   ">/dev/null 2>&1") != 0) {
		printf("SKIP: check_aws needs /usr/bin/python3 with botocore "
		       "and cryptography (Debian python3-botocore, "
		       "python3-cryptography)\n");
		return 77;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_aws.XXXXXX");
	if (!mkdtemp(tmpdir))
		return EXIT_FAILURE;
	emu_start();
	sr = srunner_create(aws_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	emu_stop();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "check_aws: could not remove %s\n",
				tmpdir);
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
