/*
 * check_http.c - keystore/http.c and keystore/json.c.
 *
 * HTTP runs against a tiny one-shot server thread on 127.0.0.1 (no
 * network needed): it reads one request and answers with a canned
 * response, echoing the request body when asked.  Timeouts are checked
 * against a closed port and against a listener that never answers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <check.h>
#include <json-c/json.h>

#include "../keystore/http.h"
#include "../keystore/json.h"
#include "../keystore/keystore.h"
#include "../lib/secret.h"
#include "testlib.h"

struct srv {
	int lfd;
	int port;
	const char *reply; /* full response; "%s" replaced by the body */
	char got[4096];	   /* request as received */
	pthread_t th;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 4), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	size_t n = 0;
	char *body, *cl;
	char out[16384];
	int fd = accept(s->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t k = read(fd, s->got + n, sizeof(s->got) - 1 - n);

		if (k <= 0)
			break;
		n += (size_t)k;
		s->got[n] = '\0';
		if ((unsigned char)s->got[0] == 0x16)
			break; /* a TLS ClientHello: answer in plain text */
		body = strstr(s->got, "\r\n\r\n");
		if (!body)
			continue;
		body += 4;
		cl = strcasestr(s->got, "\r\nContent-Length:");
		if (!cl ||
		    (size_t)(s->got + n - body) >= strtoul(cl + 17, NULL, 10))
			break;
	}
	body = strstr(s->got, "\r\n\r\n");
	cl = strstr(s->reply, "%s");
	if (cl)
		snprintf(out, sizeof(out), "%.*s%s%s", (int)(cl - s->reply),
			 s->reply, body ? body + 4 : "", cl + 2);
	else
		snprintf(out, sizeof(out), "%s", s->reply);
	if (write(fd, out, strlen(out)) < 0)
		perror("write");
	/* Half-close and drain, so that unread bytes (a TLS ClientHello)
	 * do not turn the close into a reset that hides the reply. */
	shutdown(fd, SHUT_WR);
	{
		struct timeval tv = {2, 0};
		char sink[512];

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (read(fd, sink, sizeof(sink)) > 0)
			;
	}
	close(fd);
	return NULL;
}

static void srv_start(struct srv *s, const char *reply)
{
	memset(s, 0, sizeof(*s));
	s->reply = reply;
	s->lfd = listen_any(&s->port);
	ck_assert_int_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	pthread_join(s->th, NULL);
	close(s->lfd);
}

static int do_get(const char *url, long timeout_ms, struct http_response *rs)
{
	struct http_request rq = {
	    .method = "GET", .url = url, .timeout_ms = timeout_ms};

	return http_do(&rq, rs);
}

START_TEST(test_get_headers)
{
	struct srv s;
	struct http_response rs = {0};
	char url[64];

	srv_start(&s, "HTTP/1.1 400 Bad\r\nContent-Length: 5\r\n"
		      "X-Amzn-ErrorType: ThrottlingException:http://x/\r\n"
		      "metadata-flavor:  Google \r\nConnection: close\r\n"
		      "\r\nhello");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/a?secret=1", s.port);
	buf_init(&rs.body, 0);
	ck_assert_int_eq(do_get(url, 2000, &rs), 0);
	srv_stop(&s);
	ck_assert_int_eq(rs.status, 400);
	ck_assert_str_eq((char *)rs.body.data, "hello");
	ck_assert_str_eq(rs.header_error_type, "ThrottlingException:http://x/");
	ck_assert_str_eq(rs.header_metadata_flavor, "Google");
	ck_assert_ptr_nonnull(strstr(s.got, "GET /a?secret=1 HTTP/1.1\r\n"));
	buf_release(&rs.body);
}
END_TEST

START_TEST(test_post_put_body)
{
	static const char *const methods[] = {"POST", "PUT"};
	struct srv s;
	struct http_response rs = {0};
	struct buf body;
	char url[64];

	for (int i = 0; i < 2; i++) {
		struct http_request rq = {.method = methods[i], .url = url};

		srv_start(&s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n%s");
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
		buf_init_secret(&body, 0);
		ck_assert_int_eq(buf_addstr(&body, "{\"k\":\"v\"}"), 0);
		rq.body = &body;
		rq.headers[0] = "Content-Type: application/x-amz-json-1.1";
		rq.headers[1] = "X-Amz-Target: TrentService.Encrypt";
		buf_init_secret(&rs.body, 0);
		ck_assert_int_eq(http_do(&rq, &rs), 0);
		srv_stop(&s);
		ck_assert_int_eq(rs.status, 200);
		ck_assert_str_eq((char *)rs.body.data, "{\"k\":\"v\"}");
		ck_assert_ptr_nonnull(strstr(s.got, methods[i]));
		ck_assert_ptr_nonnull(strstr(s.got, "X-Amz-Target: Trent"));
		ck_assert_ptr_null(strcasestr(s.got, "Expect:"));
		buf_release(&rs.body);
		buf_release(&body);
	}
}
END_TEST

START_TEST(test_size_limit)
{
	static const char reply[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n"
				    "\r\n0123456789012345678901234567890123456"
				    "789";
	struct srv s;
	struct http_response rs = {0};
	char url[64];

	/* Chunk-free, length-less reply: the limit is hit while reading. */
	srv_start(&s, reply);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	buf_init(&rs.body, 39);
	ck_assert_int_eq(do_get(url, 2000, &rs), -E2BIG);
	ck_assert_uint_eq(rs.body.len, 0);
	ck_assert_int_eq(rs.status, 0);
	srv_stop(&s);
	buf_release(&rs.body);

	/* Announced length over the limit: refused before the body. */
	srv_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n"
		      "01234567890123456789012345678901234567890");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	buf_init(&rs.body, 40);
	ck_assert_int_eq(do_get(url, 2000, &rs), -E2BIG);
	srv_stop(&s);
	buf_release(&rs.body);

	/* Exactly at the limit is fine. */
	srv_start(&s, reply);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	buf_init(&rs.body, 40);
	ck_assert_int_eq(do_get(url, 2000, &rs), 0);
	ck_assert_uint_eq(rs.body.len, 40);
	srv_stop(&s);
	buf_release(&rs.body);
}
END_TEST

START_TEST(test_closed_port)
{
	struct http_response rs = {0};
	char url[64];
	int port, fd = listen_any(&port);
	double t0;

	close(fd);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	buf_init(&rs.body, 0);
	t0 = now_s();
	ck_assert_int_eq(do_get(url, 1000, &rs), -ETIMEDOUT);
	ck_assert(now_s() - t0 < 1.0);
	buf_release(&rs.body);
}
END_TEST

START_TEST(test_silent_server)
{
	struct http_response rs = {0};
	char url[64];
	int port, fd = listen_any(&port);
	double t0;

	/* The kernel completes the handshake; nobody ever answers. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
	buf_init(&rs.body, 0);
	t0 = now_s();
	ck_assert_int_eq(do_get(url, 300, &rs), -ETIMEDOUT);
	ck_assert(now_s() - t0 >= 0.25);
	ck_assert(now_s() - t0 < 2.0);
	close(fd);
	buf_release(&rs.body);
}
END_TEST

/* A self-signed CA nothing here chains to (its key was thrown away). */
static const char unrelated_ca[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBmjCCAUGgAwIBAgIUA5G5DA3gVKzfQTAjz/IR//4sA14wCgYIKoZIzj0EAwIw\n"
    "IjEgMB4GA1UEAwwXa21zZnMtdGVzdC11bnJlbGF0ZWQtY2EwIBcNMjYxMTIyMTk0\n"
    "MjQ4WhgPMjEyNjEwMjkxOTQyNDhaMCIxIDAeBgNVBAMMF2ttc2ZzLXRlc3QtdW5y\n"
    "ZWxhdGVkLWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7YQNKhE2YNm+mhrh\n"
    "YJGT2aqV4zCvpT80Ov5FFkdyH++ZZ6IWBSks+LUGBTptNSHs7v77Z6rv4n9VGXAj\n"
    "UIGikqNTMFEwHQYDVR0OBBYEFML7q8K4U8xyGEoHRYqGYK+FRlMxMB8GA1UdIwQY\n"
    "MBaAFML7q8K4U8xyGEoHRYqGYK+FRlMxMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI\n"
    "zj0EAwIDRwAwRAIgChIABQFrldnoW1RaeYlG4a6fLCLRLAkmC+M/6DStZY4CIDts\n"
    "6eX6D+mtvhXS7/AbwnqZuybLHEgHqelsb8Khjo0Y\n"
    "-----END CERTIFICATE-----\n";

START_TEST(test_tls_to_plain)
{
	struct srv s;
	struct http_response rs = {0};
	char url[64], ca[64];
	FILE *f;

	/* A one-certificate CA file keeps the handshake fast (parsing the
	 * system bundle takes seconds under valgrind). */
	snprintf(ca, sizeof(ca), "/tmp/check_http_ca.%d.pem", (int)getpid());
	f = fopen(ca, "w");
	ck_assert_ptr_nonnull(f);
	fputs(unrelated_ca, f);
	fclose(f);
	setenv("KMSFS_CA_BUNDLE", ca, 1);
	srv_start(&s, "HTTP/1.1 200 OK\r\n\r\n");
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/", s.port);
	buf_init(&rs.body, 0);
	ck_assert_int_eq(do_get(url, 10000, &rs), -EPROTO);
	srv_stop(&s);
	/* Only http and https (refused before libcurl runs). */
	ck_assert_int_eq(do_get("file:///etc/passwd", 2000, &rs), -EINVAL);
	ck_assert_int_eq(do_get("ftp://127.0.0.1/", 2000, &rs), -EINVAL);
	unsetenv("KMSFS_CA_BUNDLE");
	unlink(ca);
	buf_release(&rs.body);
}
END_TEST

static int fake_calls;

static int fake_transport(const struct http_request *req,
			  struct http_response *resp, void *ctx)
{
	fake_calls++;
	ck_assert_ptr_eq(ctx, &fake_calls);
	ck_assert_str_eq(req->url, "https://kms.example/");
	resp->status = 418;
	snprintf(resp->header_error_type, sizeof(resp->header_error_type),
		 "Teapot");
	return buf_addstr(&resp->body, "short and stout");
}

static time_t fake_now(void)
{
	return 1440938160; /* 2015-08-30T12:36:00Z */
}

START_TEST(test_transport_seam)
{
	struct http_request rq = {.method = "POST",
				  .url = "https://kms.example/"};
	struct http_response rs = {0};

	buf_init(&rs.body, 0);
	http_set_transport(fake_transport, &fake_calls);
	http_set_clock(fake_now);
	ck_assert_int_eq(http_do(&rq, &rs), 0);
	ck_assert_int_eq(fake_calls, 1);
	ck_assert_int_eq(rs.status, 418);
	ck_assert_str_eq((char *)rs.body.data, "short and stout");
	ck_assert_str_eq(rs.header_error_type, "Teapot");
	ck_assert_int_eq(http_now(), 1440938160);
	/* Each call starts from a clean response. */
	rq.method = "DELETE";
	ck_assert_int_eq(http_do(&rq, &rs), -EINVAL);
	ck_assert_uint_eq(rs.body.len, 0);
	ck_assert_str_eq(rs.header_error_type, "");
	http_set_transport(NULL, NULL);
	http_set_clock(NULL);
	ck_assert(labs((long)(http_now() - time(NULL))) <= 1);
	buf_release(&rs.body);
}
END_TEST

/* --- plain http ---------------------------------------------------------- */

static int seen_calls;

static int seen_transport(const struct http_request *req,
			  struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	seen_calls++;
	resp->status = 200;
	return 0;
}

/* http_do through the seam: 0 if the request reached the transport,
 * else http_do's error (and the transport must not have run). */
static int try_url(const char *url)
{
	struct http_request rq = {.method = "GET", .url = url};
	struct http_response rs = {0};
	int before = seen_calls, r;

	buf_init(&rs.body, 0);
	r = http_do(&rq, &rs);
	ck_assert_int_eq(seen_calls - before, r ? 0 : 1);
	buf_release(&rs.body);
	return r;
}

static const char *const local_urls[] = {
    "https://kms.example/",
    "http://127.0.0.1:1/x",
    "http://127.9.8.7/",
    "http://127.1/", /* libcurl reads it as 127.0.0.1 */
    "http://localhost:8080/",
    "HTTP://LOCALHOST/",
    "http://[::1]:5/",
    "http://169.254.169.254/latest/api/token", /* EC2, GCE, Azure */
    "http://169.254.170.2/v2/credentials/x",   /* ECS */
    "http://169.254.255.2:8081/msi/token",     /* App Service */
    "http://[fd00:ec2::254]/latest/api/token", /* EC2 IMDS, IPv6 */
    "http://[fd00:ec2::23]/v1/credentials",    /* EKS Pod Identity */
    "http://metadata.google.internal/computeMetadata/v1/",
};

static const char *const remote_urls[] = {
    "http://kms.example/",
    "http://10.0.0.1/",
    "http://192.168.1.1:8080/",
    "http://169.255.0.1/",
    "http://126.255.255.255/",
    "http://0.0.0.0/",
    "http://[fe80::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[fd00:ec2::1]/",
    "http://127.0.0.1.nip.io/",
    "http://localhost.example/",
    "http://metadata.google.internal.example/",
    "http://127.0.0.1:80@kms.example/", /* user info, then the host */
    "http://kms.example#@127.0.0.1/",
    "kms.example/x", /* libcurl would guess http */
    "file:///etc/passwd",
    "ftp://127.0.0.1/",
    "",
};

START_TEST(test_plain_http_refused)
{
	char *log;

	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	http_set_transport(seen_transport, NULL);
	for (size_t i = 0; i < sizeof(local_urls) / sizeof(*local_urls); i++)
		ck_assert_msg(try_url(local_urls[i]) == 0, "%s", local_urls[i]);
	for (size_t i = 0; i < sizeof(remote_urls) / sizeof(*remote_urls); i++)
		ck_assert_msg(try_url(remote_urls[i]) == -EINVAL, "%s",
			      remote_urls[i]);
	/* Only "1" opts in. */
	setenv("KMSFS_ALLOW_INSECURE_HTTP", "yes", 1);
	ck_assert_int_eq(try_url("http://kms.example/"), -EINVAL);
	setenv("KMSFS_ALLOW_INSECURE_HTTP", "0", 1);
	ck_assert_int_eq(try_url("http://kms.example/"), -EINVAL);
	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	/* One line that says why and what to do, with the host only. */
	tl_capture_begin();
	ck_assert_int_eq(
	    try_url("http://user:hunter2@kms.example:8080/p?tok=s3cret"),
	    -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(
	    strstr(log, "refusing plain http to kms.example"));
	ck_assert_ptr_nonnull(strstr(log, "KMSFS_ALLOW_INSECURE_HTTP=1"));
	ck_assert_ptr_null(strstr(log, "hunter2"));
	ck_assert_ptr_null(strstr(log, "s3cret"));
	ck_assert_ptr_eq(strchr(log, '\n'), log + strlen(log) - 1);
	free(log);
	http_set_transport(NULL, NULL);
}
END_TEST

START_TEST(test_plain_http_allowed)
{
	char *log;

	setenv("KMSFS_ALLOW_INSECURE_HTTP", "1", 1);
	http_set_transport(seen_transport, NULL);
	tl_capture_begin();
	ck_assert_int_eq(try_url("http://kms.example/"), 0);
	ck_assert_int_eq(try_url("http://10.0.0.1/"), 0);
	log = tl_capture_end();
	/* one warning per process, not one per request */
	ck_assert_ptr_nonnull(strstr(log, "allowed by KMSFS_ALLOW_INSECURE"));
	ck_assert_ptr_eq(strchr(log, '\n'), log + strlen(log) - 1);
	free(log);
	/* the opt-in is for http only, not for other schemes */
	ck_assert_int_eq(try_url("ftp://kms.example/"), -EINVAL);
	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	http_set_transport(NULL, NULL);
}
END_TEST

/* The same rule where an endpoint setting is read, naming the setting. */
START_TEST(test_url_check_setting)
{
	char *log;

	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	ck_assert_int_eq(http_url_check("AWS_ENDPOINT", "https://kms.example"),
			 0);
	ck_assert_int_eq(http_url_check("AWS_ENDPOINT", "http://127.0.0.1:9"),
			 0);
	tl_capture_begin();
	ck_assert_int_eq(
	    http_url_check("AWS_ENDPOINT_URL_STS", "http://sts.example/"),
	    -EINVAL);
	ck_assert_int_eq(http_url_check("GCE_METADATA_HOST", "nonsense"),
			 -EINVAL);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "AWS_ENDPOINT_URL_STS: refusing "
					  "plain http to sts.example"));
	ck_assert_ptr_nonnull(
	    strstr(log, "GCE_METADATA_HOST: not an http:// or https:// URL"));
	free(log);
	setenv("KMSFS_ALLOW_INSECURE_HTTP", "1", 1);
	tl_capture_begin();
	ck_assert_int_eq(
	    http_url_check("AWS_ENDPOINT_URL_STS", "http://sts.example/"), 0);
	log = tl_capture_end();
	ck_assert_ptr_nonnull(strstr(log, "AWS_ENDPOINT_URL_STS: plain http "
					  "to sts.example allowed"));
	free(log);
	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
}
END_TEST

#ifdef KMSFS_CLOUD_KMS
/* Each provider refuses a remote plain-http endpoint when it reads the
 * setting, and the one log line names that setting. */
struct endpoint_case {
	const char *env, *val, *uri, *setting;
};

#define AWS_URI                                                                \
	"aws:///"                                                              \
	"k?REGION=us-east-1&AWS_ACCESS_KEY_ID=a&AWS_SECRET_ACCESS_KEY=s"
#define GCP_URI "gs:///projects/p/locations/global/keyRings/r/cryptoKeys/k"

static void endpoint_case_run(const struct endpoint_case *c)
{
	struct ks_kms *k = NULL;
	char *log, want[96];

	if (c->env)
		setenv(c->env, c->val, 1);
	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	tl_capture_begin();
	ck_assert_int_eq(ks_kms_open(c->uri, &k), -EINVAL);
	log = tl_capture_end();
	snprintf(want, sizeof(want), "%s: refusing plain http to ", c->setting);
	ck_assert_msg(strstr(log, want) != NULL, "%s", c->setting);
	ck_assert_ptr_eq(strchr(log, '\n'), log + strlen(log) - 1);
	free(log);
	setenv("KMSFS_ALLOW_INSECURE_HTTP", "1", 1);
	ck_assert_int_eq(ks_kms_open(c->uri, &k), 0);
	ks_kms_free(k);
	unsetenv("KMSFS_ALLOW_INSECURE_HTTP");
	if (c->env)
		unsetenv(c->env);
}

START_TEST(test_provider_endpoints)
{
	static const struct endpoint_case cases[] = {
	    {NULL, NULL, AWS_URI "&AWS_ENDPOINT=http://kms.example",
	     "AWS_ENDPOINT"},
	    {"AWS_ENDPOINT_URL_STS", "http://sts.example", AWS_URI,
	     "AWS_ENDPOINT_URL_STS"},
	    {"KMSFS_GCP_KMS_ENDPOINT", "http://kms.example",
	     GCP_URI "?AUTH=implicit", "KMSFS_GCP_KMS_ENDPOINT"},
	    {"KMSFS_GCP_IAM_ENDPOINT", "http://10.0.0.1:8080",
	     GCP_URI "?AUTH=implicit", "KMSFS_GCP_IAM_ENDPOINT"},
	    {"GCE_METADATA_HOST", "10.1.2.3", GCP_URI "?AUTH=implicit",
	     "GCE_METADATA_HOST"},
	};

	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		endpoint_case_run(&cases[i]);
}
END_TEST

/* Metadata and identity endpoints are read when credentials are needed:
 * a wrap with var=val must fail before any request, naming var. */
static void wrap_case(const char *uri, const char *var, const char *val)
{
	static const char *const clear[] = {
	    "AZURE_TENANT_ID",
	    "AZURE_CLIENT_ID",
	    "AZURE_CLIENT_SECRET",
	    "AZURE_FEDERATED_TOKEN_FILE",
	    "IDENTITY_ENDPOINT",
	    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
	    "COCKROACH_AZURE_APPLICATION_CREDENTIALS_FILE",
	    "AWS_ACCESS_KEY_ID",
	    "AWS_SECRET_ACCESS_KEY",
	    "AWS_PROFILE",
	    "AWS_WEB_IDENTITY_TOKEN_FILE",
	    "AWS_ROLE_ARN",
	    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	    "AWS_EC2_METADATA_DISABLED",
	    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	    "KMSFS_ALLOW_INSECURE_HTTP",
	};
	struct secret *dk = secret_new(32);
	struct ks_kms *k = NULL;
	struct buf blob;
	char *log, want[96];
	int calls = seen_calls;

	for (size_t i = 0; i < sizeof(clear) / sizeof(*clear); i++)
		unsetenv(clear[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	setenv("IDENTITY_HEADER", "h", 1);
	setenv(var, val, 1);
	ck_assert_ptr_nonnull(dk);
	buf_init(&blob, 4096);
	http_set_transport(seen_transport, NULL);
	ck_assert_int_eq(ks_kms_open(uri, &k), 0);
	tl_capture_begin();
	ck_assert_int_ne(ks_kms_wrap(k, dk, &blob), 0);
	log = tl_capture_end();
	ck_assert_int_eq(seen_calls, calls);
	snprintf(want, sizeof(want), "%s: refusing plain http to 10.0.0.7",
		 var);
	ck_assert_msg(strstr(log, want) != NULL, "%s", var);
	free(log);
	ks_kms_free(k);
	http_set_transport(NULL, NULL);
	buf_release(&blob);
	secret_free(dk);
	unsetenv(var);
}

START_TEST(test_metadata_endpoints)
{
	static const char *const az =
	    "azure-kms:///k/v1?AUTH=implicit&AZURE_VAULT_NAME=v";

	wrap_case(az, "IDENTITY_ENDPOINT", "http://10.0.0.7:8081/msi/token");
	wrap_case(az, "AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.0.0.7");
	wrap_case("aws:///k?REGION=us-east-1&AUTH=implicit",
		  "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.0.0.7");
}
END_TEST
#endif

START_TEST(test_urlencode)
{
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(http_urlencode(&b, "aZ09-._~ /+=&\xc3\xa9", 15), 0);
	ck_assert_str_eq((char *)b.data, "aZ09-._~%20%2F%2B%3D%26%C3%A9");
	buf_release(&b);
	buf_init(&b, 4);
	ck_assert_int_eq(http_urlencode(&b, "ab/", 3), -E2BIG);
	ck_assert_uint_eq(b.len, 0);
	buf_release(&b);
}
END_TEST

/* --- json ------------------------------------------------------------ */

START_TEST(test_json_fields)
{
	static const char txt[] =
	    "{\"s\":\"x\\u00e9\",\"n\":42,\"ns\":\"-7\",\"b\":true,"
	    "\"d\":3.0,\"f\":1.5,\"big\":18446744073709551615,"
	    "\"bad\":\"4x\",\"k\":\"AAECAw==\",\"u\":\"_-8\","
	    "\"o\":{\"a\":[1,2]}}";
	struct json_object *o;
	struct buf b;
	int64_t v;
	bool t;

	ck_assert_int_eq(json_parse(txt, strlen(txt), &o), 0);
	ck_assert_str_eq(json_get_str(o, "s"), "x\xc3\xa9");
	ck_assert_ptr_null(json_get_str(o, "n"));
	ck_assert_ptr_null(json_get_str(o, "missing"));
	ck_assert_int_eq(json_get_int64(o, "n", &v), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(json_get_int64(o, "ns", &v), 0);
	ck_assert_int_eq(v, -7);
	ck_assert_int_eq(json_get_int64(o, "d", &v), 0);
	ck_assert_int_eq(v, 3);
	ck_assert_int_eq(json_get_int64(o, "f", &v), -EPROTO);
	ck_assert_int_eq(json_get_int64(o, "big", &v), -EPROTO);
	ck_assert_int_eq(json_get_int64(o, "bad", &v), -EPROTO);
	ck_assert_int_eq(json_get_int64(o, "zz", &v), -ENOENT);
	ck_assert_int_eq(json_get_bool(o, "b", &t), 0);
	ck_assert(t);
	ck_assert_int_eq(json_get_bool(o, "n", &t), -ENOENT);
	buf_init_secret(&b, 0);
	ck_assert_int_eq(json_get_b64(o, "k", &b), 0);
	ck_assert_uint_eq(b.len, 4);
	ck_assert_mem_eq(b.data, "\0\1\2\3", 4);
	buf_reset(&b);
	ck_assert_int_eq(json_get_b64(o, "u", &b), 0);
	ck_assert_uint_eq(b.len, 2);
	ck_assert_mem_eq(b.data, "\xff\xef", 2);
	ck_assert_int_eq(json_get_b64(o, "s", &b), -EPROTO);
	ck_assert_int_eq(json_get_b64(o, "n", &b), -ENOENT);
	ck_assert_ptr_nonnull(json_get(json_get(o, "o"), "a"));
	ck_assert_ptr_null(json_get(json_get(o, "s"), "a"));
	ck_assert_ptr_null(json_get(NULL, "a"));
	buf_release(&b);
	json_free(o);
	json_free(NULL);
}
END_TEST

START_TEST(test_json_reject)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "{\"a\":1",
	    "{\"a\":1}x",
	    "{\"a\":1}{}",
	    "{'a':1}",
	    "{\"a\":tru}",
	    "[1,]",
	    "nul",
	    "{\"a\":\"\\q\"}",
	    "[NaN]",
	    "[-Infinity]",
	    "[1.]",
	    "[\"\t\"]",
	    "/*c*/{}",
	    "{a:1}",
	    "{\"a\":1,}",
	    "[01]",
	    "[\"a\"\"b\"]",
	    "{\"a\":1}\0",
	};
	struct json_object *o;
	char deep[80];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = strlen(bad[i]) +
			   (bad[i][0] == '{' && !strcmp(bad[i], "{\"a\":1}"));

		ck_assert_int_eq(json_parse(bad[i], n, &o), -EPROTO);
		ck_assert_ptr_null(o);
	}
	/* Truncation of a valid document fails at every length. */
	{
		static const char good[] = "{\"Plaintext\":\"AAEC\",\"n\":[1]}";

		for (size_t n = 0; n < strlen(good); n++)
			ck_assert_int_eq(json_parse(good, n, &o), -EPROTO);
		ck_assert_int_eq(json_parse(good, strlen(good), &o), 0);
		json_free(o);
	}
	ck_assert_int_eq(json_parse(" 42 ", 4, &o), 0);
	ck_assert(json_object_is_type(o, json_type_int));
	json_free(o);
	/* Depth: 32 nested arrays pass, 33 do not. */
	memset(deep, '[', 32);
	memset(deep + 32, ']', 32);
	ck_assert_int_eq(json_parse(deep, 64, &o), 0);
	json_free(o);
	memset(deep, '[', 33);
	memset(deep + 33, ']', 33);
	ck_assert_int_eq(json_parse(deep, 66, &o), -EPROTO);
}
END_TEST

START_TEST(test_json_add_str)
{
	static const char raw[] = "a\"b\\c\n\t\x01/\xc3\xa9";
	struct json_object *o;
	struct buf b;

	buf_init(&b, 0);
	ck_assert_int_eq(buf_addstr(&b, "{\"k\":"), 0);
	ck_assert_int_eq(json_add_str(&b, raw), 0);
	ck_assert_int_eq(buf_addch(&b, '}'), 0);
	ck_assert_str_eq((char *)b.data,
			 "{\"k\":\"a\\\"b\\\\c\\n\\t\\u0001/\xc3\xa9\"}");
	ck_assert_int_eq(json_parse((char *)b.data, b.len, &o), 0);
	ck_assert_str_eq(json_get_str(o, "k"), raw);
	json_free(o);
	buf_release(&b);
	buf_init(&b, 5);
	ck_assert_int_eq(json_add_str(&b, "abcdef"), -E2BIG);
	ck_assert_uint_eq(b.len, 0);
	buf_release(&b);
}
END_TEST

START_TEST(test_b64)
{
	static const struct {
		const char *in, *std, *stdnp, *url;
	} v[] = {
	    {"", "", "", ""},
	    {"f", "Zg==", "Zg", "Zg"},
	    {"fo", "Zm8=", "Zm8", "Zm8"},
	    {"foo", "Zm9v", "Zm9v", "Zm9v"},
	    {"foob", "Zm9vYg==", "Zm9vYg", "Zm9vYg"},
	    {"\xfb\xff\xfe", "+//+", "+//+", "-__-"},
	};
	static const char *const bad[] = {
	    "Z",     "Zg=",  "Zg===", "Z===",  "Zh==",
	    "Zm9v!", "Zm=9", "=",     "Zm9vY", "Zg==Zg==",
	};
	struct buf b;

	buf_init_secret(&b, 0);
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].in);

		buf_reset(&b);
		b64_encode((const uint8_t *)v[i].in, n, false, true, &b);
		ck_assert_str_eq((char *)b.data, v[i].std);
		buf_reset(&b);
		b64_encode((const uint8_t *)v[i].in, n, false, false, &b);
		ck_assert_str_eq((char *)b.data, v[i].stdnp);
		buf_reset(&b);
		b64_encode((const uint8_t *)v[i].in, n, true, false, &b);
		ck_assert_str_eq((char *)b.data, v[i].url);
		buf_reset(&b);
		ck_assert_int_eq(b64_decode(v[i].std, strlen(v[i].std), &b), 0);
		ck_assert_uint_eq(b.len, n);
		ck_assert_mem_eq(b.data, v[i].in, n);
		buf_reset(&b);
		ck_assert_int_eq(b64_decode(v[i].url, strlen(v[i].url), &b), 0);
		ck_assert_mem_eq(b.data, v[i].in, n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		buf_addstr(&b, "keep");
		ck_assert_int_eq(b64_decode(bad[i], strlen(bad[i]), &b),
				 -EINVAL);
		ck_assert_str_eq((char *)b.data, "keep");
	}
	buf_release(&b);
	buf_init(&b, 3);
	ck_assert_int_eq(b64_encode((const uint8_t *)"ab", 2, false, true, &b),
			 -E2BIG);
	buf_release(&b);
}
END_TEST

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *h = tcase_create("http");
	TCase *j = tcase_create("json");

	tcase_set_timeout(h, 20);
	tcase_add_test(h, test_get_headers);
	tcase_add_test(h, test_post_put_body);
	tcase_add_test(h, test_size_limit);
	tcase_add_test(h, test_closed_port);
	tcase_add_test(h, test_silent_server);
	tcase_add_test(h, test_tls_to_plain);
	tcase_add_test(h, test_transport_seam);
	tcase_add_test(h, test_plain_http_refused);
	tcase_add_test(h, test_plain_http_allowed);
	tcase_add_test(h, test_url_check_setting);
#ifdef KMSFS_CLOUD_KMS
	tcase_add_test(h, test_provider_endpoints);
	tcase_add_test(h, test_metadata_endpoints);
#endif
	tcase_add_test(h, test_urlencode);
	tcase_add_test(j, test_json_fields);
	tcase_add_test(j, test_json_reject);
	tcase_add_test(j, test_json_add_str);
	tcase_add_test(j, test_b64);
	suite_add_tcase(s, h);
	suite_add_tcase(s, j);
	return s;
}

int main(void)
{
	return tl_run(http_suite());
}
