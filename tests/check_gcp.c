/*
 * check_gcp.c - keystore/gcp.c, cred_gcp.c and gcp_rest.c against the
 * request-verifying Google emulator (tests/emu/gcp_emu.py).
 *
 * One emulator serves every test: it verifies the JWT grants with
 * google-auth, plays the metadata server and IAM Credentials, and really
 * encrypts with AES-GCM per CryptoKey, so a round trip proves the request
 * shapes and the auth chain.  Its /_emu/ hooks count requests and inject
 * faults.  Each test starts from a reset emulator and a clean environment,
 * so the suite also runs without fork (CK_FORK=no, e.g. under valgrind).
 * Needs Debian's python3 with google-auth and cryptography ($KMSFS_PYTHON
 * overrides /usr/bin/python3).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "../keystore/cred_gcp.h"
#include "../keystore/http.h"
#include "../keystore/json.h"
#include "../keystore/keystore.h"
#include "../lib/log.h"
#include "testlib.h"

#define KEY "projects/p/locations/global/keyRings/r/cryptoKeys/k"
#define SA_DOMAIN "emu-project.iam.gserviceaccount.com"
#define STATIC_TOKEN "ya29.static-kmsfs-check-token"
#define BLOB_MAX 8192
#define MAP_KEY_HEX                                                            \
	"e2da5e581d18974e61b55dbf7c5175c1e58f4e3a7e3b5e6e2ee51692ce41c20f"

static pid_t emu_pid;
static int emu_stdin = -1;
static int emu_port;
static char *tmpdir;
static char sa_path[512];
static char base_url[64];
static struct buf creds_b64;   /* CREDENTIALS: base64 of the SA JSON */
static struct buf creds_param; /* the same, percent-encoded */

/* --- the emulator -------------------------------------------------------- */

static void emu_start(void)
{
	const char *py = getenv("KMSFS_PYTHON");
	char script[1024], line[32] = "";
	int in[2], out[2];
	struct pollfd pfd;
	ssize_t n;

	if (!py || !*py)
		py = "/usr/bin/python3";
	snprintf(script, sizeof(script), "%s/tests/emu/gcp_emu.py",
		 KMSFS_SRCDIR);
	tmpdir = tl_tmpdir_new();
	snprintf(sa_path, sizeof(sa_path), "%s/sa.json", tmpdir);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		abort();
	emu_pid = fork();
	if (emu_pid < 0)
		abort();
	if (emu_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execl(py, py, script, "--sa-out", sa_path, "--static-token",
		      STATIC_TOKEN, "--exit-on-stdin-eof", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	emu_stdin = in[1];
	pfd.fd = out[0];
	pfd.events = POLLIN;
	/* The first line is the port; stop at its newline. */
	for (size_t len = 0; len < sizeof(line) - 1 && !strchr(line, '\n');) {
		if (poll(&pfd, 1, 30000) != 1)
			break;
		n = read(out[0], line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		line[len] = '\0';
	}
	close(out[0]);
	emu_port = atoi(line);
	if (emu_port <= 0) {
		fprintf(stderr, "gcp emulator did not start (%s %s)\n", py,
			script);
		exit(EXIT_FAILURE);
	}
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", emu_port);
}

static void emu_stop(void)
{
	int st;

	close(emu_stdin); /* it exits on EOF; make sure */
	kill(emu_pid, SIGTERM);
	waitpid(emu_pid, &st, 0);
	tl_tmpdir_remove(tmpdir);
}

static void creds_init(void)
{
	struct buf json;

	buf_init(&json, 0);
	buf_init(&creds_b64, 0);
	buf_init(&creds_param, 0);
	if (buf_read_file(&json, sa_path) ||
	    b64_encode(json.data, json.len, false, true, &creds_b64) ||
	    http_urlencode(&creds_param, (const char *)creds_b64.data,
			   creds_b64.len))
		abort();
	buf_release(&json);
}

/* An /_emu/ request; returns the HTTP status, the reply in out if given. */
static long emu_req(const char *method, const char *path, const char *json,
		    struct buf *out)
{
	char url[256];
	struct buf body;
	struct http_request req = {
	    .method = method,
	    .url = url,
	    .headers = {"Content-Type: application/json"},
	    .body = &body,
	};
	struct http_response resp = {0};

	snprintf(url, sizeof(url), "%s/_emu/%s", base_url, path);
	buf_init(&body, 0);
	buf_init(&resp.body, 0);
	if (json)
		ck_assert_int_eq(buf_addstr(&body, json), 0);
	ck_assert_int_eq(http_do(&req, &resp), 0);
	if (out)
		ck_assert_int_eq(buf_add(out, resp.body.data, resp.body.len),
				 0);
	buf_release(&body);
	buf_release(&resp.body);
	return resp.status;
}

static void emu_ctl(const char *path, const char *json)
{
	ck_assert_int_eq(emu_req("POST", path, json, NULL), 200);
}

static void emu_fault(const char *mode, const char *target, int count)
{
	char json[160];

	snprintf(json, sizeof(json),
		 "{\"mode\":\"%s\",\"target\":\"%s\",\"count\":%d}", mode,
		 target, count);
	emu_ctl("fault", json);
}

/* The raw stats JSON (caller releases). */
static void emu_stats(struct buf *out)
{
	buf_init(out, 0);
	ck_assert_int_eq(emu_req("GET", "stats", NULL, out), 200);
}

static long long emu_count(const char *name)
{
	struct json_object *o;
	struct buf b;
	int64_t v = -1;

	emu_stats(&b);
	ck_assert_int_eq(json_parse((const char *)b.data, b.len, &o), 0);
	ck_assert_int_eq(json_get_int64(o, name, &v), 0);
	json_free(o);
	buf_release(&b);
	return (long long)v;
}

static void emu_expect(const char *fragment)
{
	struct buf b;

	emu_stats(&b);
	ck_assert_msg(strstr((const char *)b.data, fragment), "%s not in %s",
		      fragment, (const char *)b.data);
	buf_release(&b);
}

/* Send stderr (the log) to path until stderr_restore(). */
static int stderr_to(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int saved;

	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(2);
	ck_assert_int_ge(saved, 0);
	dup2(fd, 2);
	close(fd);
	return saved;
}

static void stderr_restore(int saved)
{
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
}

/* Fresh emulator state and environment before each test. */
static void setup(void)
{
	setenv("KMSFS_GCP_KMS_ENDPOINT", base_url, 1);
	setenv("KMSFS_GCP_IAM_ENDPOINT", base_url, 1);
	setenv("GCE_METADATA_HOST", base_url + 7, 1);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	unsetenv("KMSFS_GCP_TIMEOUT_MS");
	emu_ctl("reset", NULL);
	emu_ctl("config", "{\"token_ttl\":3600}");
}

/* --- helpers ------------------------------------------------------------- */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "gs:///KEY?<params>", with CREDENTIALS=... where %C appears. */
static struct ks_kms *open_ok(const char *path, const char *params)
{
	struct ks_kms *k = NULL;
	struct buf uri;
	const char *c = strstr(params, "%C");

	buf_init(&uri, 0);
	ck_assert_int_eq(buf_addf(&uri, "gs:///%s?", path), 0);
	if (c) {
		ck_assert_int_eq(buf_add(&uri, params, (size_t)(c - params)),
				 0);
		ck_assert_int_eq(buf_addf(&uri, "CREDENTIALS=%s%s",
					  (const char *)creds_param.data,
					  c + 2),
				 0);
	} else {
		ck_assert_int_eq(buf_addstr(&uri, params), 0);
	}
	ck_assert_int_eq(ks_kms_open((const char *)uri.data, &k), 0);
	buf_release(&uri);
	return k;
}

static int open_err(const char *uri)
{
	struct ks_kms *k = NULL;
	int r = ks_kms_open(uri, &k);

	ck_assert_ptr_null(k);
	return r;
}

static struct secret *new_dk(void)
{
	struct secret *dk = NULL;

	ck_assert_int_eq(secret_random(&dk, KS_DATA_KEY_SIZE), 0);
	return dk;
}

/* Wrap and unwrap a fresh 32-byte key; the blob must be opaque bytes. */
static void roundtrip(struct ks_kms *k)
{
	struct secret *dk = new_dk(), *back = NULL;
	struct buf blob;

	buf_init(&blob, BLOB_MAX);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_uint_gt(blob.len, KS_DATA_KEY_SIZE);
	ck_assert_ptr_null(memmem(blob.data, blob.len, dk->bytes, dk->len));
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &back), 0);
	ck_assert(secret_equal(dk, back));
	secret_free(back);
	secret_free(dk);
	buf_release(&blob);
}

static int wrap_err(struct ks_kms *k)
{
	struct secret *dk = new_dk();
	struct buf blob;
	int r;

	buf_init(&blob, BLOB_MAX);
	r = ks_kms_wrap(k, dk, &blob);
	if (r)
		ck_assert_uint_eq(blob.len, 0);
	secret_free(dk);
	buf_release(&blob);
	return r;
}

/* --- URI and MasterKeyID ------------------------------------------------- */

START_TEST(test_master_key_id)
{
	static const char *const uris[] = {
	    "gs:///" KEY "?AUTH=implicit",
	    "gs:///" KEY "/cryptoKeyVersions/3?AUTH=implicit",
	    "gcp-kms:///" KEY "?BEARER_TOKEN=" STATIC_TOKEN,
	};
	char hex[65];
	uint8_t mk[32];

	for (size_t i = 0; i < 3; i++) {
		struct ks_kms *k = NULL;

		ck_assert_int_eq(ks_kms_open(uris[i], &k), 0);
		ck_assert_str_eq(ks_kms_key_id(k), KEY);
		ks_kms_map_key(k, mk);
		tl_hex_encode(mk, sizeof(mk), hex);
		ck_assert_str_eq(hex, MAP_KEY_HEX);
		ks_kms_free(k);
	}
}
END_TEST

START_TEST(test_uri_errors)
{
	ck_assert_int_eq(open_err("gs:///?AUTH=implicit"), -EINVAL);
	ck_assert_int_eq(open_err("gs://?AUTH=implicit"), -EINVAL);
	ck_assert_int_eq(open_err("gs:///cryptoKeyVersions/3?AUTH=implicit"),
			 -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY), -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=specified"), -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=bogus"), -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=implicit&REGION=x"),
			 -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?CREDENTIALS=%21%21"), -EINVAL);
	/* base64 of {"type":"authorized_user"} */
	ck_assert_int_eq(open_err("gs:///" KEY "?CREDENTIALS="
				  "eyJ0eXBlIjoiYXV0aG9yaXplZF91c2VyIn0%3D"),
			 -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?BEARER_TOKEN=a%0Ab"), -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=implicit&ASSUME_ROLE="
				  "a@" SA_DOMAIN ",,b@" SA_DOMAIN),
			 -EINVAL);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=implicit&ASSUME_ROLE="
				  "a%2Fb@" SA_DOMAIN),
			 -EINVAL);
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json", 1);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=implicit"), -EINVAL);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	setenv("KMSFS_GCP_KMS_ENDPOINT", "ftp://x", 1);
	ck_assert_int_eq(open_err("gs:///" KEY "?AUTH=implicit"), -EINVAL);
}
END_TEST

/* --- each AUTH mode ------------------------------------------------------ */

START_TEST(test_credentials)
{
	struct ks_kms *k = open_ok(KEY, "%C");

	roundtrip(k);
	ck_assert_int_eq(emu_count("token"), 1);
	ck_assert_int_eq(emu_count("encrypt"), 1);
	ck_assert_int_eq(emu_count("decrypt"), 1);
	emu_expect("\"encrypt_fields\": [\"plaintext\", \"plaintextCrc32c\"]");
	emu_expect("\"decrypt_fields\": [\"ciphertext\", "
		   "\"ciphertextCrc32c\"]");
	emu_expect("\"token_scope\": \"https://www.googleapis.com/auth/"
		   "cloud-platform https://www.googleapis.com/auth/cloudkms\"");
	emu_expect("\"kms_principal\": \"kmsfs-test@" SA_DOMAIN "\"");
	ks_kms_free(k);
}
END_TEST

START_TEST(test_credentials_version_and_spaces)
{
	struct ks_kms *k;
	struct buf b;

	/* A version in the URI: encrypt and decrypt still name the key. */
	k = open_ok(KEY "/cryptoKeyVersions/3", "AUTH=specified&%C");
	roundtrip(k);
	ks_kms_free(k);
	/* An unescaped '+' in CREDENTIALS reaches us as ' '. */
	buf_init(&b, 0);
	ck_assert_int_eq(buf_addstr(&b, "gs:///" KEY "?CREDENTIALS="), 0);
	for (size_t i = 0; i < creds_param.len; i++) {
		if (!strncmp((const char *)creds_param.data + i, "%2B", 3)) {
			ck_assert_int_eq(buf_addch(&b, '+'), 0);
			i += 2;
		} else {
			ck_assert_int_eq(
			    buf_addch(&b, (char)creds_param.data[i]), 0);
		}
	}
	ck_assert_int_eq(ks_kms_open((const char *)b.data, &k), 0);
	roundtrip(k);
	ks_kms_free(k);
	buf_release(&b);
}
END_TEST

START_TEST(test_bearer_token)
{
	struct ks_kms *k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);

	roundtrip(k);
	ck_assert_int_eq(emu_count("token"), 0);
	ck_assert_int_eq(emu_count("metadata_token"), 0);
	emu_expect("\"kms_principal\": \"static-bearer@");
	ks_kms_free(k);
	/* A token the service does not know: denied, no retry loop. */
	k = open_ok(KEY, "BEARER_TOKEN=ya29.unknown");
	ck_assert_int_eq(wrap_err(k), -EACCES);
	ck_assert_int_eq(emu_count("kms_rejected"), 1);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_implicit_key_file)
{
	struct ks_kms *k;

	setenv("GOOGLE_APPLICATION_CREDENTIALS", sa_path, 1);
	k = open_ok(KEY, "AUTH=implicit");
	roundtrip(k);
	ck_assert_int_eq(emu_count("token"), 1);
	ck_assert_int_eq(emu_count("metadata_token"), 0);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_implicit_metadata)
{
	struct ks_kms *k = open_ok(KEY, "AUTH=implicit&CREDENTIALS=ignored");

	roundtrip(k);
	ck_assert_int_eq(emu_count("metadata_token"), 1);
	ck_assert_int_eq(emu_count("token"), 0);
	emu_expect("\"kms_principal\": \"gce-default@" SA_DOMAIN "\"");
	emu_expect("\"metadata_scopes\": [\"https://www.googleapis.com/auth/"
		   "cloud-platform\", \"https://www.googleapis.com/auth/"
		   "cloudkms\"]");
	ks_kms_free(k);
	/* Something on that address that is not a metadata server. */
	k = open_ok(KEY, "AUTH=implicit");
	emu_fault("no_flavor", "metadata", -1);
	ck_assert_int_eq(wrap_err(k), -EPROTO);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_assume_role)
{
	struct ks_kms *k;

	k = open_ok(KEY, "%C&ASSUME_ROLE=middle@" SA_DOMAIN
			 "%3Bexternal_id=x,kms-user@" SA_DOMAIN);
	roundtrip(k);
	ck_assert_int_eq(emu_count("token"), 1);
	ck_assert_int_eq(emu_count("iam"), 1);
	emu_expect("\"kms_principal\": \"kms-user@" SA_DOMAIN "\"");
	emu_expect("\"caller\": \"kmsfs-test@" SA_DOMAIN "\", \"target\": "
		   "\"kms-user@" SA_DOMAIN
		   "\", \"delegates\": [\"middle@" SA_DOMAIN "\"]");
	emu_expect("\"lifetime\": \"3600s\"");
	ks_kms_free(k);
	/* Implicit source, single target, no delegates. */
	k = open_ok(KEY, "AUTH=implicit&ASSUME_ROLE=kms-user@" SA_DOMAIN);
	roundtrip(k);
	emu_expect("\"caller\": \"gce-default@" SA_DOMAIN "\"");
	emu_expect("\"delegates\": []");
	ks_kms_free(k);
	/* The IAM service refuses the impersonation. */
	k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN
			 "&ASSUME_ROLE=deny-me@" SA_DOMAIN);
	ck_assert_int_eq(wrap_err(k), -EACCES);
	ks_kms_free(k);
}
END_TEST

/* --- token cache --------------------------------------------------------- */

START_TEST(test_token_cache)
{
	struct ks_kms *k = open_ok(KEY, "%C");
	struct secret *dk = new_dk();
	struct buf blob;

	buf_init(&blob, BLOB_MAX);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(emu_count("token"), 1);
	ck_assert_int_eq(emu_count("encrypt"), 2);
	ks_kms_free(k);

	/* A 4 s token is refreshed once three quarters of it have passed. */
	emu_ctl("config", "{\"token_ttl\":4}");
	k = open_ok(KEY, "%C");
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(emu_count("token"), 2);
	sleep(4);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(emu_count("token"), 3);
	ks_kms_free(k);

	/* A revoked token (401) is dropped and fetched again, once. */
	emu_ctl("config", "{\"token_ttl\":3600}");
	k = open_ok(KEY, "%C");
	emu_fault("401", "kms", 1);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_int_eq(emu_count("token"), 5);
	emu_fault("401", "kms", -1);
	ck_assert_int_eq(wrap_err(k), -EACCES);
	ks_kms_free(k);
	secret_free(dk);
	buf_release(&blob);
}
END_TEST

struct hdr_thread {
	pthread_t th;
	struct gcp_cred *cred;
	struct buf hdr;
	int r;
};

static void *hdr_main(void *arg)
{
	struct hdr_thread *t = arg;

	t->r = gcp_cred_auth_header(t->cred, &t->hdr);
	return NULL;
}

/* Eight threads ask one credential at once: one token fetch, one token. */
START_TEST(test_token_cache_threads)
{
	struct hdr_thread t[8];
	struct gcp_endpoints ep;
	struct gcp_cred *c = NULL;

	ck_assert_int_eq(gcp_endpoints_load(&ep), 0);
	ck_assert_int_eq(gcp_cred_new("specified", (const char *)creds_b64.data,
				      NULL, NULL, "gs:///test", &ep, &c),
			 0);
	for (size_t i = 0; i < 8; i++) {
		t[i].cred = c;
		buf_init_secret(&t[i].hdr, 0);
		ck_assert_int_eq(
		    pthread_create(&t[i].th, NULL, hdr_main, &t[i]), 0);
	}
	for (size_t i = 0; i < 8; i++) {
		ck_assert_int_eq(pthread_join(t[i].th, NULL), 0);
		ck_assert_int_eq(t[i].r, 0);
		ck_assert_str_eq((const char *)t[i].hdr.data,
				 (const char *)t[0].hdr.data);
	}
	ck_assert_int_eq(strncmp((const char *)t[0].hdr.data,
				 "Authorization: Bearer ya29.", 27),
			 0);
	ck_assert_int_eq(emu_count("token"), 1);
	for (size_t i = 0; i < 8; i++)
		buf_release(&t[i].hdr);
	gcp_cred_free(c);
}
END_TEST

/* --- faults -------------------------------------------------------------- */

START_TEST(test_fault_status)
{
	struct ks_kms *k = open_ok(KEY, "%C");
	double t;

	roundtrip(k); /* token cached from here on */
	emu_fault("403", "kms", -1);
	ck_assert_int_eq(wrap_err(k), -EACCES);
	emu_fault("429", "kms", -1);
	ck_assert_int_eq(wrap_err(k), -EAGAIN);
	emu_fault("500", "kms", 2); /* two 500s, then it recovers */
	roundtrip(k);
	emu_fault("503", "kms", -1);
	t = mono();
	ck_assert_int_eq(wrap_err(k), -EAGAIN);
	ck_assert(mono() - t < 3.0);
	emu_fault("off", "any", 0);
	ks_kms_free(k);
	/* Unknown CryptoKey and unknown version. */
	k = open_ok(KEY "-missing", "BEARER_TOKEN=" STATIC_TOKEN);
	ck_assert_int_eq(wrap_err(k), -ENOKEY);
	ks_kms_free(k);
	/* The token endpoint refuses or fails. */
	k = open_ok(KEY, "%C");
	emu_fault("403", "token", -1);
	ck_assert_int_eq(wrap_err(k), -EACCES);
	emu_fault("503", "token", -1);
	ck_assert_int_eq(wrap_err(k), -EAGAIN);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_fault_network)
{
	struct ks_kms *k;
	double t;

	setenv("KMSFS_GCP_TIMEOUT_MS", "1000", 1);
	k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);
	emu_ctl("fault", "{\"mode\":\"slow\",\"target\":\"kms\",\"count\":1,"
			 "\"delay\":3}");
	t = mono();
	ck_assert_int_eq(wrap_err(k), -ETIMEDOUT);
	ck_assert(mono() - t < 2.5);
	emu_fault("drop", "kms", 1);
	ck_assert_int_eq(wrap_err(k), -ETIMEDOUT);
	roundtrip(k);
	ks_kms_free(k);
	/* Nothing listens on port 1. */
	setenv("KMSFS_GCP_KMS_ENDPOINT", "http://127.0.0.1:1", 1);
	k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);
	t = mono();
	ck_assert_int_eq(wrap_err(k), -ETIMEDOUT);
	ck_assert(mono() - t < 2.5);
	ks_kms_free(k);
	/* Nor on the metadata server's. */
	setenv("GCE_METADATA_HOST", "127.0.0.1:1", 1);
	k = open_ok(KEY, "AUTH=implicit");
	ck_assert_int_eq(wrap_err(k), -ETIMEDOUT);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_integrity)
{
	struct ks_kms *k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);
	struct secret *dk = new_dk(), *back = NULL;
	struct buf blob;

	buf_init(&blob, BLOB_MAX);
	emu_fault("bad_crc", "kms", 1);
	ck_assert_int_eq(wrap_err(k), -EPROTO);
	emu_fault("unverified", "kms", 1);
	ck_assert_int_eq(wrap_err(k), -EPROTO);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	emu_fault("bad_crc", "kms", 1);
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &back), -EPROTO);
	ck_assert_ptr_null(back);
	/* A flipped bit in the stored blob: the service refuses it. */
	blob.data[blob.len - 1] ^= 1;
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &back),
			 -EBADMSG);
	blob.data[blob.len - 1] ^= 1;
	ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &back), 0);
	ck_assert(secret_equal(dk, back));
	secret_free(back);
	secret_free(dk);
	buf_release(&blob);
	ks_kms_free(k);
}
END_TEST

/* --- secrets never reach the log ----------------------------------------- */

START_TEST(test_no_secrets_logged)
{
	char path[600];
	struct ks_kms *k;
	struct buf logb;
	int saved;

	snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
	saved = stderr_to(path);
	log_set_level(LOG_LVL_DEBUG);
	k = open_ok(KEY, "%C&ASSUME_ROLE=kms-user@" SA_DOMAIN);
	roundtrip(k);
	emu_fault("403", "kms", 1);
	ck_assert_int_eq(wrap_err(k), -EACCES);
	ks_kms_free(k);
	k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);
	emu_fault("500", "kms", -1);
	ck_assert_int_eq(wrap_err(k), -EAGAIN);
	ks_kms_free(k);
	ck_assert_int_eq(open_err("gs:///" KEY "?CREDENTIALS=QUJD"), -EINVAL);
	stderr_restore(saved);
	log_set_level(LOG_LVL_INFO);
	buf_init(&logb, 0);
	ck_assert_int_eq(buf_read_file(&logb, path), 0);
	ck_assert_ptr_nonnull(strstr((const char *)logb.data, "HTTP 403"));
	ck_assert_ptr_null(strstr((const char *)logb.data, "ya29."));
	ck_assert_ptr_null(strstr((const char *)logb.data, "PRIVATE KEY"));
	ck_assert_ptr_null(strstr((const char *)logb.data, "QUJD"));
	ck_assert_ptr_null(strstr((const char *)logb.data,
				  (const char *)creds_param.data + 8));
	ck_assert_ptr_null(strstr((const char *)logb.data, "assertion"));
	buf_release(&logb);
}
END_TEST

/* --- reply parsing through the transport seam ---------------------------- */

struct canned {
	const char *url_part; /* first entry whose text is in the URL wins */
	long status;
	const char *body;
	size_t len; /* 0: strlen(body) */
};

static struct canned canned[4];

static int canned_transport(const struct http_request *req,
			    struct http_response *resp, void *ctx)
{
	(void)ctx;
	for (size_t i = 0; i < 4 && canned[i].url_part; i++) {
		const struct canned *c = &canned[i];

		if (!strstr(req->url, c->url_part))
			continue;
		resp->status = c->status;
		return buf_add(&resp->body, c->body,
			       c->len ? c->len : strlen(c->body));
	}
	return -ETIMEDOUT;
}

#define ENC_OK                                                                 \
	"{\"ciphertext\":\"QUJD\",\"ciphertextCrc32c\":\"2285480319\","        \
	"\"verifiedPlaintextCrc32c\":true}"
#define DEC_OK                                                                 \
	"{\"plaintext\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","     \
	"\"plaintextCrc32c\":\"1188919630\"}"
#define TOKEN_OK                                                               \
	"{\"access_token\":\"ya29.canned\",\"expires_in\":3599,"               \
	"\"token_type\":\"Bearer\"}"

/* Every truncation of a good reply must fail with -EPROTO, and so must
 * every single-bit flip unless flips_ok (a token reply: a flipped token
 * is still a token); the reply itself must work. */
static void sweep(struct ks_kms *k, int slot, const char *good, bool wrap,
		  bool flips_ok)
{
	size_t n = strlen(good);
	char *b = strdup(good);
	struct secret *dk = new_dk(), *back = NULL;
	struct buf blob;
	int r, saved;

	ck_assert_ptr_nonnull(b);
	buf_init(&blob, BLOB_MAX);
	saved = stderr_to("/dev/null"); /* one error line per case */
	for (size_t i = 0; i <= n * 9; i++) {
		size_t at = i < n ? 0 : (i - n) / 8;

		memcpy(b, good, n + 1);
		canned[slot].body = b;
		canned[slot].len = i < n ? (i ? i : 1) : n;
		if (i == 0)
			b[0] = ' '; /* an empty reply */
		if (i >= n)
			b[at] ^= (char)(1u << ((i - n) % 8));
		if (i == n * 9)
			memcpy(b, good, n + 1); /* the good one, last */
		buf_reset(&blob);
		if (wrap) {
			r = ks_kms_wrap(k, dk, &blob);
		} else {
			r = ks_kms_unwrap(k, (const uint8_t *)"ABC", 3, &back);
			secret_free(back);
			back = NULL;
		}
		if (flips_ok && i >= n && r == 0)
			continue;
		ck_assert_msg(r == (i == n * 9 ? 0 : -EPROTO),
			      "case %zu: r=%d body=%.*s", i, r,
			      (int)canned[slot].len, b);
	}
	stderr_restore(saved);
	buf_release(&blob);
	secret_free(dk);
	free(b);
}

START_TEST(test_reply_sweep_kms)
{
	struct ks_kms *k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN);

	http_set_transport(canned_transport, NULL);
	canned[0] = (struct canned){":encrypt", 200, ENC_OK, 0};
	canned[1] = (struct canned){":decrypt", 200, DEC_OK, 0};
	sweep(k, 0, ENC_OK, true, false);
	sweep(k, 1, DEC_OK, false, false);
	http_set_transport(NULL, NULL);
	ks_kms_free(k);
}
END_TEST

START_TEST(test_reply_sweep_token)
{
	struct ks_kms *k = open_ok(KEY, "%C");

	http_set_transport(canned_transport, NULL);
	canned[0] = (struct canned){"/token", 200, TOKEN_OK, 0};
	canned[1] = (struct canned){":encrypt", 200, ENC_OK, 0};
	sweep(k, 0, TOKEN_OK, true, true);
	http_set_transport(NULL, NULL);
	ks_kms_free(k);
}
END_TEST

static int iam_reply(const char *body)
{
	struct ks_kms *k = open_ok(KEY, "BEARER_TOKEN=" STATIC_TOKEN
					"&ASSUME_ROLE=kms-user@" SA_DOMAIN);
	int r;

	canned[0] = (struct canned){":generateAccessToken", 200, body, 0};
	canned[1] = (struct canned){":encrypt", 200, ENC_OK, 0};
	r = wrap_err(k);
	ks_kms_free(k);
	return r;
}

START_TEST(test_reply_iam)
{
	static const char *const good[] = {
	    "2099-01-01T00:00:00Z", "2099-01-01T00:00:00.123456789Z",
	    "2099-01-01T00:00:00+01:00", "2099-01-01T00:00:00-00:30"};
	static const char *const bad[] = {
	    "2099-01-01 00:00:00Z", "2099-01-01T00:00:00",
	    "2000-01-01T00:00:00Z", "2099-01-01T00:00:00+0100", "soon"};
	char body[256];

	http_set_transport(canned_transport, NULL);
	for (size_t i = 0; i < 4 + 5; i++) {
		snprintf(body, sizeof(body),
			 "{\"accessToken\":\"ya29.imp\",\"expireTime\":\"%s\"}",
			 i < 4 ? good[i] : bad[i - 4]);
		ck_assert_int_eq(iam_reply(body), i < 4 ? 0 : -EPROTO);
	}
	ck_assert_int_eq(iam_reply("{\"accessToken\":\"ya29 imp\","
				   "\"expireTime\":\"2099-01-01T00:00:00Z\"}"),
			 -EPROTO);
	ck_assert_int_eq(iam_reply("{\"expireTime\":\"2099-01-01T00:00:00Z\"}"),
			 -EPROTO);
	http_set_transport(NULL, NULL);
}
END_TEST

static Suite *gcp_suite(void)
{
	Suite *s = suite_create("gcp");
	TCase *u = tcase_create("uri");
	TCase *a = tcase_create("auth");
	TCase *f = tcase_create("faults");
	TCase *p = tcase_create("replies");

	tcase_add_checked_fixture(u, setup, NULL);
	tcase_add_checked_fixture(a, setup, NULL);
	tcase_add_checked_fixture(f, setup, NULL);
	tcase_add_checked_fixture(p, setup, NULL);
	tcase_set_timeout(p, 60);
	tcase_set_timeout(a, 60);
	tcase_set_timeout(f, 60);
	tcase_add_test(u, test_master_key_id);
	tcase_add_test(u, test_uri_errors);
	tcase_add_test(a, test_credentials);
	tcase_add_test(a, test_credentials_version_and_spaces);
	tcase_add_test(a, test_bearer_token);
	tcase_add_test(a, test_implicit_key_file);
	tcase_add_test(a, test_implicit_metadata);
	tcase_add_test(a, test_assume_role);
	tcase_add_test(a, test_token_cache);
	tcase_add_test(a, test_token_cache_threads);
	tcase_add_test(f, test_fault_status);
	tcase_add_test(f, test_fault_network);
	tcase_add_test(f, test_integrity);
	tcase_add_test(f, test_no_secrets_logged);
	tcase_add_test(p, test_reply_sweep_kms);
	tcase_add_test(p, test_reply_sweep_token);
	tcase_add_test(p, test_reply_iam);
	suite_add_tcase(s, u);
	suite_add_tcase(s, a);
	suite_add_tcase(s, f);
	suite_add_tcase(s, p);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	emu_start();
	creds_init();
	sr = srunner_create(gcp_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	buf_release(&creds_param);
	buf_release(&creds_b64);
	emu_stop();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
