/*
 * check_azure.c - the azure-kms provider (keystore/azure.c, cred_azure.c)
 * through the public keystore API.
 *
 * Conformance runs against tests/emu/azure_emu.py, started once per run
 * on 127.0.0.1 with a throw-away CA and server certificate made here with
 * the openssl CLI; TLS is verified (KMSFS_CA_BUNDLE) and one test proves
 * it by trusting another CA.  Each AUTH mode round-trips a 32-byte key;
 * faults injected through the emulator's control endpoint must give the
 * keystore's error codes within bounded time.  Exact request shapes
 * (URLs per cloud, form and JSON bodies, headers) are checked through
 * http_set_transport, and URI validation needs no server at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include "../keystore/http.h"
#include "../keystore/json.h"
#include "../keystore/keystore.h"
#include "../lib/log.h"
#include "testlib.h"

#define PYTHON "/usr/bin/python3"
#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define APP "11111111-2222-3333-4444-555555555555"
#define SECRET "s3cret~with+odd/&=chars"
#define SECRET_Q "s3cret~with%2Bodd%2F%26%3Dchars"
#define FED_APP "66666666-7777-8888-9999-000000000000"
#define ASSERTION "eyJhbGciOiJSUzI1NiJ9.federated.assertion"
#define UAI "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
#define IDHEADER "app-service-identity-header"
#define URI_EXPLICIT                                                           \
	"azure-kms:///my-key/v1?AZURE_VAULT_NAME=myvault&AZURE_CLIENT_ID=" APP \
	"&AZURE_CLIENT_SECRET=" SECRET_Q "&AZURE_TENANT_ID=" TENANT
#define URI_IMPLICIT "azure-kms:///my-key/v1?AUTH=implicit&AZURE_VAULT_NAME=v"
/* spec §3.4 gives 5e78863e...c8c0f732; the middle is sha256sum's */
#define MY_KEY_SHA                                                             \
	"5e78863ed1ffb9fc66b1d61634b126bf8eb20267e7996297eeeb9b19c8c0f732"

static char *tmpdir;
static pid_t emu_pid = -1;
static int emu_stdin = -1;
static int emu_port, emu_hport;
static char ca_path[512], other_ca_path[512];
static time_t clock_offset;

/* --- the emulator, once per run ---------------------------------------- */

static void die(const char *what)
{
	fprintf(stderr, "check_azure: %s\n", what);
	abort();
}

static void make_ca(const char *dir, const char *name, bool server)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes "
		 "-keyout %s-key.pem -out %s.pem -days 2 -subj /CN=%s "
		 ">/dev/null 2>&1",
		 dir, name, name, name);
	if (system(cmd) != 0)
		die("openssl: cannot make a CA");
	if (!server)
		return;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && printf '[srv]\\nsubjectAltName=IP:127.0.0.1\\n"
		 "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
		 "openssl req -newkey rsa:2048 -nodes -keyout srv-key.pem "
		 "-out srv.csr -subj /CN=127.0.0.1 >/dev/null 2>&1 && "
		 "openssl x509 -req -in srv.csr -CA %s.pem -CAkey %s-key.pem "
		 "-CAcreateserial -out srv.pem -days 2 -extfile ext.cnf "
		 "-extensions srv >/dev/null 2>&1",
		 dir, name, name);
	if (system(cmd) != 0)
		die("openssl: cannot make the server certificate");
}

static int read_port(int fd)
{
	char line[32];
	size_t n = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};

	while (n < sizeof(line) - 1) {
		if (poll(&p, 1, 30000) != 1 || read(fd, line + n, 1) != 1)
			die("the emulator did not start");
		if (line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	return atoi(line);
}

static void emu_exec(int in, int out)
{
	char cert[600], key[600];

	snprintf(cert, sizeof(cert), "%s/srv.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/srv-key.pem", tmpdir);
	dup2(in, 0);
	dup2(out, 1);
	execl(PYTHON, PYTHON, KMSFS_SRCDIR "/tests/emu/azure_emu.py", "--cert",
	      cert, "--key", key, "--tenant", TENANT, "--app", APP ":" SECRET,
	      "--federated", FED_APP ":" ASSERTION, "--mi-system",
	      "--mi-client-id", UAI, "--identity-header", IDHEADER,
	      "--vault-key", "my-key/v1", "--vault-key", "my-key/v2",
	      "--watch-stdin", (char *)NULL);
	_exit(127);
}

static void emu_start(void)
{
	int in[2], out[2];

	tmpdir = tl_tmpdir_new();
	make_ca(tmpdir, "ca", true);
	make_ca(tmpdir, "other-ca", false);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	snprintf(other_ca_path, sizeof(other_ca_path), "%s/other-ca.pem",
		 tmpdir);
	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		die("pipe");
	emu_pid = fork();
	if (emu_pid < 0)
		die("fork");
	if (emu_pid == 0)
		emu_exec(in[0], out[1]);
	close(in[0]);
	close(out[1]);
	emu_stdin = in[1];
	emu_port = read_port(out[0]);
	emu_hport = read_port(out[0]);
	close(out[0]);
}

static void emu_stop(void)
{
	int st;

	if (emu_pid > 0) {
		close(emu_stdin); /* --watch-stdin: the emulator exits */
		for (int i = 0; i < 50 && waitpid(emu_pid, &st, WNOHANG) == 0;
		     i++)
			usleep(100000);
		if (waitpid(emu_pid, &st, WNOHANG) == 0) {
			kill(emu_pid, SIGKILL);
			waitpid(emu_pid, &st, 0);
		}
		emu_pid = -1;
	}
	tl_tmpdir_remove(tmpdir);
	tmpdir = NULL;
}

/* --- per test ----------------------------------------------------------- */

static time_t shifted_clock(void)
{
	return time(NULL) + clock_offset;
}

/* A request to the emulator's control endpoint (plain HTTP). */
static void emu_control(const char *what, const char *json)
{
	char url[128];
	struct buf body;
	struct http_request req = {.method = json ? "POST" : "GET", .url = url};
	struct http_response resp = {0};

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_emu/%s", emu_hport,
		 what);
	buf_init(&body, 0);
	buf_init(&resp.body, 0);
	buf_addstr(&body, json ? json : "");
	req.body = &body;
	ck_assert_int_eq(http_do(&req, &resp), 0);
	ck_assert_int_eq(resp.status, 200);
	buf_release(&body);
	buf_release(&resp.body);
}

static long emu_stat(const char *name)
{
	char url[128];
	struct http_request req = {.method = "GET", .url = url};
	struct http_response resp = {0};
	struct json_object *o = NULL;
	int64_t v = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_emu/stats", emu_hport);
	buf_init(&resp.body, 0);
	ck_assert_int_eq(http_do(&req, &resp), 0);
	ck_assert_int_eq(
	    json_parse((const char *)resp.body.data, resp.body.len, &o), 0);
	if (json_get_int64(o, name, &v))
		v = 0;
	json_free(o);
	buf_release(&resp.body);
	return (long)v;
}

static void env_clear(void)
{
	static const char *const clear[] = {
	    "AZURE_TENANT_ID",
	    "AZURE_CLIENT_ID",
	    "AZURE_CLIENT_SECRET",
	    "AZURE_FEDERATED_TOKEN_FILE",
	    "IDENTITY_ENDPOINT",
	    "IDENTITY_HEADER",
	    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
	    "COCKROACH_AZURE_APPLICATION_CREDENTIALS_FILE",
	    "KMSFS_AZURE_TIMEOUT_MS",
	    "AZURE_AUTHORITY_HOST",
	    "KMSFS_AZURE_VAULT_URL",
	    "KMSFS_CA_BUNDLE",
	    "http_proxy",
	    "https_proxy",
	    "HTTPS_PROXY",
	    "ALL_PROXY"};

	for (size_t i = 0; i < sizeof(clear) / sizeof(*clear); i++)
		unsetenv(clear[i]);
	http_set_transport(NULL, NULL);
	clock_offset = 0;
	http_set_clock(shifted_clock);
}

static void setup_offline(void)
{
	env_clear();
}

static void setup(void)
{
	char url[64];

	env_clear();
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", emu_port);
	setenv("AZURE_AUTHORITY_HOST", url, 1);
	setenv("KMSFS_AZURE_VAULT_URL", url, 1);
	setenv("KMSFS_CA_BUNDLE", ca_path, 1);
	emu_control("reset", "{}");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct ks_kms *open_ok(const char *uri)
{
	struct ks_kms *k = NULL;

	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	ck_assert_ptr_nonnull(k);
	return k;
}

/* Wrap a fresh 32-byte key and unwrap it again; returns the wrap error. */
static int roundtrip(struct ks_kms *k)
{
	struct secret *dk = NULL, *back = NULL;
	struct buf blob;
	int r;

	buf_init(&blob, 0);
	ck_assert_int_eq(secret_random(&dk, KS_DATA_KEY_SIZE), 0);
	r = ks_kms_wrap(k, dk, &blob);
	if (!r) {
		ck_assert_uint_eq(blob.len, 256); /* RSA-2048 ciphertext */
		ck_assert_int_eq(ks_kms_unwrap(k, blob.data, blob.len, &back),
				 0);
		ck_assert(secret_equal(dk, back));
	}
	secret_free(dk);
	secret_free(back);
	buf_release(&blob);
	return r;
}

static int wrap_once(const char *uri)
{
	struct ks_kms *k = open_ok(uri);
	struct secret *dk = NULL;
	struct buf blob;
	int r;

	buf_init(&blob, 0);
	ck_assert_int_eq(secret_random(&dk, KS_DATA_KEY_SIZE), 0);
	r = ks_kms_wrap(k, dk, &blob);
	secret_free(dk);
	buf_release(&blob);
	ks_kms_free(k);
	return r;
}

/* --- auth modes --------------------------------------------------------- */

START_TEST(explicit_roundtrip)
{
	struct ks_kms *k = open_ok(URI_EXPLICIT);
	char hex[TL_SHA256_HEX_SIZE];
	uint8_t mk[32];

	ck_assert_str_eq(ks_kms_key_id(k), "my-key");
	ks_kms_map_key(k, mk);
	tl_hex_encode(mk, sizeof(mk), hex);
	ck_assert_str_eq(hex, MY_KEY_SHA);
	ck_assert(strncmp(hex, "5e78863e", 8) == 0);
	ck_assert_str_eq(hex + 56, "c8c0f732");
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(roundtrip(k), 0);
	/* one token served four Key Vault calls */
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	ck_assert_int_eq(emu_stat("kv_encrypt"), 2);
	ck_assert_int_eq(emu_stat("kv_decrypt"), 2);
	ks_kms_free(k);
}
END_TEST

START_TEST(implicit_env)
{
	struct ks_kms *k = open_ok(URI_IMPLICIT);

	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", APP, 1);
	setenv("AZURE_CLIENT_SECRET", SECRET, 1);
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	ck_assert_int_eq(emu_stat("imds"), 0);
	ks_kms_free(k);
}
END_TEST

START_TEST(implicit_imds)
{
	char url[64];
	struct ks_kms *k;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", emu_hport);
	setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", url, 1);
	k = open_ok(URI_IMPLICIT);
	ck_assert_int_eq(roundtrip(k), 0);
	ks_kms_free(k);
	ck_assert_int_eq(emu_stat("imds_ok"), 1);
	setenv("AZURE_CLIENT_ID", UAI, 1); /* user-assigned identity */
	k = open_ok(URI_IMPLICIT);
	ck_assert_int_eq(roundtrip(k), 0);
	ks_kms_free(k);
	ck_assert_int_eq(emu_stat("imds_ok"), 2);
	setenv("AZURE_CLIENT_ID", "not-assigned", 1);
	ck_assert_int_eq(wrap_once(URI_IMPLICIT), -EACCES);
	ck_assert_int_eq(emu_stat("token"), 0);
}
END_TEST

START_TEST(implicit_app_service)
{
	char url[64];
	struct ks_kms *k;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/msi/token", emu_hport);
	setenv("IDENTITY_ENDPOINT", url, 1);
	setenv("IDENTITY_HEADER", IDHEADER, 1);
	k = open_ok(URI_IMPLICIT);
	ck_assert_int_eq(roundtrip(k), 0);
	ks_kms_free(k);
	ck_assert_int_eq(emu_stat("appservice_ok"), 1);
	setenv("IDENTITY_HEADER", "wrong", 1);
	ck_assert_int_eq(wrap_once(URI_IMPLICIT), -EACCES);
}
END_TEST

START_TEST(implicit_workload_identity)
{
	char path[600];
	struct ks_kms *k;

	snprintf(path, sizeof(path), "%s/federated-token", tmpdir);
	ck_assert_int_eq(
	    tl_write_file(path, ASSERTION "\n", strlen(ASSERTION) + 1), 0);
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", FED_APP, 1);
	setenv("AZURE_FEDERATED_TOKEN_FILE", path, 1);
	k = open_ok(URI_IMPLICIT);
	ck_assert_int_eq(roundtrip(k), 0);
	ks_kms_free(k);
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	ck_assert_int_eq(tl_write_file(path, "forged", 6), 0);
	ck_assert_int_eq(wrap_once(URI_IMPLICIT), -EACCES);
}
END_TEST

START_TEST(implicit_cockroach_file)
{
	static const char yaml[] = "# kmsfs test\n"
				   "azure_tenant_id: " TENANT "\n"
				   "azure_client_id: \"" APP "\"\n"
				   "azure_client_secret: '" SECRET "'\n";
	char path[600];
	struct ks_kms *k;

	snprintf(path, sizeof(path), "%s/azure-creds.yaml", tmpdir);
	ck_assert_int_eq(tl_write_file(path, yaml, strlen(yaml)), 0);
	setenv("COCKROACH_AZURE_APPLICATION_CREDENTIALS_FILE", path, 1);
	k = open_ok(URI_IMPLICIT);
	ck_assert_int_eq(roundtrip(k), 0);
	ks_kms_free(k);
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	/* an unusable file is skipped, as CockroachDB does: IMDS is next */
	ck_assert_int_eq(tl_write_file(path, "bogus: 1\n", 9), 0);
	setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1", 1);
	ck_assert_int_eq(wrap_once(URI_IMPLICIT), -ETIMEDOUT);
}
END_TEST

/* --- tokens -------------------------------------------------------------- */

START_TEST(token_cache_and_refresh)
{
	struct ks_kms *k = open_ok(URI_EXPLICIT);

	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	clock_offset = 3599 - 400; /* still outside the refresh margin */
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(emu_stat("token_ok"), 1);
	clock_offset = 3599 - 200; /* inside it: a new token */
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(emu_stat("token_ok"), 2);
	ks_kms_free(k);
}
END_TEST

START_TEST(token_revoked_401)
{
	struct ks_kms *k = open_ok(URI_EXPLICIT);

	ck_assert_int_eq(roundtrip(k), 0);
	emu_control("fault", "{\"target\":\"kv\",\"status\":401,\"count\":1}");
	ck_assert_int_eq(roundtrip(k), 0);
	ck_assert_int_eq(emu_stat("token_ok"), 2);
	emu_control("fault", "{\"target\":\"kv\",\"status\":401,\"count\":-1}");
	ck_assert_int_eq(roundtrip(k), -EACCES);
	ks_kms_free(k);
}
END_TEST

START_TEST(wrong_secret)
{
	static const char uri[] =
	    "azure-kms:///my-key/v1?AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=" APP
	    "&AZURE_CLIENT_SECRET=nope&AZURE_TENANT_ID=" TENANT;

	ck_assert_int_eq(wrap_once(uri), -EACCES);
	ck_assert_int_eq(emu_stat("kv"), 0);
}
END_TEST

/* --- faults -------------------------------------------------------------- */

static void expect_fault(const char *fault, int want, double max_s)
{
	double t0;

	emu_control("reset", "{}");
	if (fault)
		emu_control("fault", fault);
	t0 = now_s();
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), want);
	ck_assert_msg(now_s() - t0 < max_s, "%s took %.1f s", fault,
		      now_s() - t0);
}

START_TEST(faults)
{
	expect_fault("{\"target\":\"kv\",\"status\":403,\"count\":-1}", -EACCES,
		     5);
	expect_fault("{\"target\":\"kv\",\"status\":429,\"count\":-1}", -EAGAIN,
		     5);
	expect_fault("{\"target\":\"kv\",\"status\":500,\"count\":2}", 0, 5);
	expect_fault("{\"target\":\"kv\",\"status\":503,\"count\":-1}", -EAGAIN,
		     5);
	ck_assert_int_eq(emu_stat("fault_kv"), 3); /* bounded retries */
	expect_fault("{\"target\":\"token\",\"status\":503,\"count\":-1}",
		     -EAGAIN, 5);
	expect_fault("{\"target\":\"token\",\"status\":429,\"count\":-1}",
		     -EAGAIN, 5);
	expect_fault("{\"target\":\"kv\",\"mode\":\"drop\",\"count\":-1}",
		     -ETIMEDOUT, 5);
	setenv("KMSFS_AZURE_TIMEOUT_MS", "500", 1);
	expect_fault("{\"target\":\"kv\",\"mode\":\"slow\",\"delay\":3,"
		     "\"count\":-1}",
		     -ETIMEDOUT, 2.5);
}
END_TEST

START_TEST(service_down)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char url[64];
	double t0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd); /* nothing listens there now */
	snprintf(url, sizeof(url), "https://127.0.0.1:%d", ntohs(a.sin_port));
	setenv("KMSFS_AZURE_VAULT_URL", url, 1);
	t0 = now_s();
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), -ETIMEDOUT);
	setenv("AZURE_AUTHORITY_HOST", url, 1);
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), -ETIMEDOUT);
	ck_assert(now_s() - t0 < 5);
}
END_TEST

START_TEST(key_errors)
{
	static const char nokey[] =
	    "azure-kms:///nokey/v1?AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=" APP
	    "&AZURE_CLIENT_SECRET=" SECRET_Q "&AZURE_TENANT_ID=" TENANT;
	static const char v2[] =
	    "azure-kms:///my-key/v2?AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=" APP
	    "&AZURE_CLIENT_SECRET=" SECRET_Q "&AZURE_TENANT_ID=" TENANT;
	struct ks_kms *k1 = open_ok(URI_EXPLICIT), *k2 = open_ok(v2);
	struct secret *dk = NULL, *back = NULL;
	uint8_t m1[32], m2[32];
	struct buf blob;

	ck_assert_int_eq(wrap_once(nokey), -ENOKEY);
	/* versions share the map key (CockroachDB), but not the RSA key */
	ks_kms_map_key(k1, m1);
	ks_kms_map_key(k2, m2);
	ck_assert(memcmp(m1, m2, 32) == 0);
	buf_init(&blob, 0);
	ck_assert_int_eq(secret_random(&dk, KS_DATA_KEY_SIZE), 0);
	ck_assert_int_eq(ks_kms_wrap(k1, dk, &blob), 0);
	ck_assert_int_eq(ks_kms_unwrap(k2, blob.data, blob.len, &back),
			 -EBADMSG);
	ck_assert_ptr_null(back);
	secret_free(dk);
	buf_release(&blob);
	ks_kms_free(k1);
	ks_kms_free(k2);
}
END_TEST

START_TEST(tls_verified)
{
	setenv("KMSFS_CA_BUNDLE", other_ca_path, 1);
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), -EPROTO);
	unsetenv("KMSFS_CA_BUNDLE"); /* the system store does not know it */
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), -EPROTO);
	ck_assert_int_eq(emu_stat("token"), 0);
}
END_TEST

/* --- request shapes through the transport seam ------------------------- */

struct fake {
	char url[4][256];
	char body[4][512];
	char hdr[4][3][128];
	int n;
};

static int fake_do(const struct http_request *req, struct http_response *resp,
		   void *ctx)
{
	struct fake *f = ctx;
	int i = f->n++ & 3;

	snprintf(f->url[i], sizeof(f->url[i]), "%s", req->url);
	snprintf(f->body[i], sizeof(f->body[i]), "%s",
		 req->body ? (const char *)req->body->data : "");
	for (int h = 0; h < 3 && req->headers[h]; h++)
		snprintf(f->hdr[i][h], sizeof(f->hdr[i][h]), "%s",
			 req->headers[h]);
	resp->status = 200;
	if (strstr(req->url, "/keys/"))
		return buf_addstr(&resp->body,
				  "{\"kid\":\"k\",\"value\":\"AQID\"}");
	return buf_addstr(&resp->body, "{\"access_token\":\"t0k.en\","
				       "\"expires_in\":\"3599\","
				       "\"token_type\":\"Bearer\"}");
}

static void fake_wrap(const char *uri, struct fake *f)
{
	struct ks_kms *k = open_ok(uri);
	struct secret *dk = secret_new(KS_DATA_KEY_SIZE);
	struct buf blob;

	memset(f, 0, sizeof(*f));
	http_set_transport(fake_do, f);
	memset(dk->bytes, 0xfb, dk->len);
	buf_init(&blob, 0);
	ck_assert_int_eq(ks_kms_wrap(k, dk, &blob), 0);
	ck_assert_uint_eq(blob.len, 3);
	ck_assert_int_eq(f->n, 2);
	ck_assert_str_eq(f->hdr[1][0], "Authorization: Bearer t0k.en");
	ck_assert_str_eq(f->hdr[1][1], "Content-Type: application/json");
	ck_assert_str_eq(f->body[1], "{\"alg\":\"RSA-OAEP-256\",\"value\":\""
				     "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7"
				     "-_s\"}");
	http_set_transport(NULL, NULL);
	buf_release(&blob);
	secret_free(dk);
	ks_kms_free(k);
}

START_TEST(request_shapes)
{
	static const char *const clouds[][4] = {
	    {"", "login.microsoftonline.com", "vault.azure.net"},
	    {"&AZURE_ENVIRONMENT=AzureChinaCloud", "login.chinacloudapi.cn",
	     "vault.azure.cn"},
	    {"&AZURE_ENVIRONMENT=azureusgovernmentcloud",
	     "login.microsoftonline.us", "vault.usgovcloudapi.net"},
	};
	char uri[512], want[256];
	struct fake f;

	for (size_t i = 0; i < 3; i++) {
		snprintf(uri, sizeof(uri), "%s%s", URI_EXPLICIT, clouds[i][0]);
		fake_wrap(uri, &f);
		snprintf(want, sizeof(want),
			 "https://%s/" TENANT "/oauth2/v2.0/token",
			 clouds[i][1]);
		ck_assert_str_eq(f.url[0], want);
		snprintf(want, sizeof(want),
			 "client_id=" APP "&scope=https%%3A%%2F%%2F%s%%2F"
			 ".default&grant_type=client_credentials&client_secret="
			 "s3cret~with%%2Bodd%%2F%%26%%3Dchars",
			 clouds[i][2]);
		ck_assert_str_eq(f.body[0], want);
		snprintf(want, sizeof(want),
			 "https://myvault.%s/keys/my-key/v1/encrypt"
			 "?api-version=7.4",
			 clouds[i][2]);
		ck_assert_str_eq(f.url[1], want);
	}
}
END_TEST

START_TEST(request_shapes_imds)
{
	struct fake f;

	setenv("AZURE_CLIENT_ID", UAI, 1);
	fake_wrap(URI_IMPLICIT, &f);
	ck_assert_str_eq(f.url[0], "http://169.254.169.254/metadata/identity/"
				   "oauth2/token?api-version=2018-02-01&"
				   "resource=https%3A%2F%2Fvault.azure.net&"
				   "client_id=" UAI);
	ck_assert_str_eq(f.hdr[0][0], "Metadata: true");
	ck_assert_str_eq(f.url[1], "https://v.vault.azure.net/keys/my-key/v1/"
				   "encrypt?api-version=7.4");
}
END_TEST

/* --- URI validation ------------------------------------------------------ */

START_TEST(uri_errors)
{
	static const char *const bad[] = {
	    "azure-kms:///my-key?AUTH=implicit&AZURE_VAULT_NAME=v",
	    "azure-kms:///a/b/c?AUTH=implicit&AZURE_VAULT_NAME=v",
	    "azure-kms:///a/?AUTH=implicit&AZURE_VAULT_NAME=v",
	    "azure-kms:///?AUTH=implicit&AZURE_VAULT_NAME=v",
	    "azure-kms:///a/b?AUTH=implicit",
	    "azure-kms:///a/b?AZURE_VAULT_NAME=v&AZURE_CLIENT_ID=c"
	    "&AZURE_TENANT_ID=t",
	    "azure-kms:///a/b?AUTH=specified&AZURE_VAULT_NAME=v"
	    "&AZURE_CLIENT_SECRET=s&AZURE_TENANT_ID=t",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_CLIENT_SECRET=s",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_TENANT_ID=t",
	    "azure-kms:///a/b?AZURE_VAULT_NAME=v&AZURE_ACCOUNT_KEY=k",
	    "azure-kms:///a/b?AUTH=bogus&AZURE_VAULT_NAME=v",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_ENVIRONMENT=AzureStackCloud",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=v&REGION=x",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=evil.com%2Fx",
	    "azure-kms:///a/b?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_ACCOUNT_KEY=k",
	};
	struct ks_kms *k = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		ck_assert_msg(ks_kms_open(bad[i], &k) == -EINVAL, "%s", bad[i]);
		ck_assert_ptr_null(k);
	}
	setenv("KMSFS_AZURE_VAULT_URL", "http://127.0.0.1:1", 1);
	ck_assert_int_eq(ks_kms_open(URI_IMPLICIT, &k), -EINVAL);
	setenv("KMSFS_AZURE_VAULT_URL", "https://127.0.0.1:1", 1);
	setenv("AZURE_AUTHORITY_HOST", "http://login.example", 1);
	ck_assert_int_eq(ks_kms_open(URI_EXPLICIT, &k), -EINVAL);
	unsetenv("AZURE_AUTHORITY_HOST");
	setenv("KMSFS_AZURE_TIMEOUT_MS", "5", 1);
	ck_assert_int_eq(ks_kms_open(URI_EXPLICIT, &k), -EINVAL);
}
END_TEST

START_TEST(uri_good)
{
	static const char *const good[] = {
	    URI_IMPLICIT,
	    URI_EXPLICIT,
	    "azure-kms:///my-key/v1?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_ENVIRONMENT=AzureUSGovernmentCloud",
	    "azure-kms:///my-key/v1?AUTH=implicit&AZURE_VAULT_NAME=v"
	    "&AZURE_ENVIRONMENT=AzureGermanCloud",
	};
	struct ks_kms *k;

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		k = NULL;
		ck_assert_msg(ks_kms_open(good[i], &k) == 0, "%s", good[i]);
		ck_assert_str_eq(ks_kms_key_id(k), "my-key");
		ks_kms_free(k);
	}
}
END_TEST

/* --- secrets stay out of the log ----------------------------------------- */

START_TEST(no_secrets_logged)
{
	char path[600];
	int saved = dup(2), fd;
	uint8_t *log = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/log.txt", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	dup2(fd, 2);
	log_set_level(LOG_LVL_DEBUG);
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), 0);
	emu_control("fault", "{\"target\":\"kv\",\"status\":403,\"count\":1}");
	ck_assert_int_eq(wrap_once(URI_EXPLICIT), -EACCES);
	ck_assert_int_eq(wrap_once("azure-kms:///my-key/v1?AZURE_VAULT_NAME="
				   "v&AZURE_CLIENT_ID=" APP
				   "&AZURE_CLIENT_SECRET=" SECRET_Q
				   "x&AZURE_TENANT_ID=" TENANT),
			 -EACCES);
	log_set_level(LOG_LVL_WARN);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	ck_assert_int_eq(tl_read_file(path, &log, &len), 0);
	ck_assert_msg(len > 0, "nothing was logged");
	ck_assert_ptr_null(strstr((char *)log, "s3cret"));
	ck_assert_ptr_null(strstr((char *)log, SECRET_Q));
	ck_assert_ptr_null(strstr((char *)log, "eyJ")); /* no JWT */
	ck_assert_ptr_nonnull(strstr((char *)log, "HTTP 403 Forbidden"));
	ck_assert_ptr_nonnull(strstr((char *)log, "AADSTS7000215"));
	free(log);
}
END_TEST

static Suite *azure_suite(void)
{
	Suite *s = suite_create("azure");
	TCase *live = tcase_create("emulator");
	TCase *offline = tcase_create("offline");

	tcase_add_unchecked_fixture(live, emu_start, emu_stop);
	tcase_add_checked_fixture(live, setup, NULL);
	tcase_set_timeout(live, 120);
	tcase_add_test(live, explicit_roundtrip);
	tcase_add_test(live, implicit_env);
	tcase_add_test(live, implicit_imds);
	tcase_add_test(live, implicit_app_service);
	tcase_add_test(live, implicit_workload_identity);
	tcase_add_test(live, implicit_cockroach_file);
	tcase_add_test(live, token_cache_and_refresh);
	tcase_add_test(live, token_revoked_401);
	tcase_add_test(live, wrong_secret);
	tcase_add_test(live, faults);
	tcase_add_test(live, service_down);
	tcase_add_test(live, key_errors);
	tcase_add_test(live, tls_verified);
	tcase_add_test(live, no_secrets_logged);
	suite_add_tcase(s, live);

	tcase_add_checked_fixture(offline, setup_offline, NULL);
	tcase_set_timeout(offline, 60);
	tcase_add_test(offline, request_shapes);
	tcase_add_test(offline, request_shapes_imds);
	tcase_add_test(offline, uri_errors);
	tcase_add_test(offline, uri_good);
	suite_add_tcase(s, offline);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* automake's SKIP when the emulator cannot run here */
	if (system(PYTHON " -c 'import cryptography' >/dev/null 2>&1") ||
	    system("openssl version >/dev/null 2>&1")) {
		fprintf(stderr, "check_azure: skipped: needs " PYTHON
				" with python3-cryptography and openssl\n");
		return 77;
	}
	sr = srunner_create(azure_suite());
	log_init("check_azure");
	log_set_level(LOG_LVL_WARN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
