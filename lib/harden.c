/*
 * harden.c - no core dumps, not dumpable, a secure heap for secrets.
 *
 * The secure heap must exist before the first OPENSSL_secure_malloc():
 * struct secrets allocated earlier would live on the ordinary heap.
 * That is why the commands call harden_process() before they read a
 * passphrase, a key file or a KMS URI.
 */
#include "harden.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "log.h"

static bool harden_done;

static int harden_no_core(void)
{
	struct rlimit rl = {0, 0};
	int r;

	if (setrlimit(RLIMIT_CORE, &rl) < 0) {
		r = -errno;
		log_err("cannot disable core dumps: setrlimit: %s",
			strerror(-r));
		return r;
	}
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r = -errno;
		log_err("cannot make the process non-dumpable: prctl: %s",
			strerror(-r));
		return r;
	}
	return 0;
}

static void harden_secure_heap(void)
{
	int r;

	if (CRYPTO_secure_malloc_initialized())
		return;
	r = CRYPTO_secure_malloc_init(HARDEN_SECURE_HEAP, HARDEN_SECURE_MIN);
	if (r == 0)
		log_debug("OpenSSL secure heap unavailable: keys are kept on "
			  "the ordinary heap (still wiped after use)");
	else if (r == 2)
		log_debug("secure heap not locked in memory (mlock refused; "
			  "raise RLIMIT_MEMLOCK): keys may be swapped out");
}

static void harden_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug("cannot raise the open file limit: %s",
			  strerror(errno));
}

int harden_process(void)
{
	int r;

	if (harden_done)
		return 0;
	r = harden_no_core();
	if (r)
		return r;
	harden_secure_heap();
	harden_nofile();
	harden_done = true;
	return 0;
}

/* The mapping of /proc/self/maps that holds address p. */
static int harden_find_mapping(uintptr_t p, uintptr_t *start, uintptr_t *end)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uintmax_t a, b;
	char line[512];
	int r = -ENOENT;

	if (!f)
		return -errno;
	while (r && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%jx-%jx", &a, &b) == 2 && a <= p && p < b) {
			*start = (uintptr_t)a;
			*end = (uintptr_t)b;
			r = 0;
		}
	}
	fclose(f);
	return r;
}

/*
 * OpenSSL does not expose its arena; it is one mapping between two
 * PROT_NONE guard pages, so the mapping holding any secure allocation is
 * exactly the arena.
 */
int harden_after_fork(void)
{
	uintptr_t start = 0, end = 0;
	void *p;
	int r;

	if (!CRYPTO_secure_malloc_initialized())
		return 0;
	p = OPENSSL_secure_malloc(HARDEN_SECURE_MIN);
	if (!p)
		return -ENOMEM;
	r = CRYPTO_secure_allocated(p)
		? harden_find_mapping((uintptr_t)p, &start, &end)
		: -ENOENT;
	OPENSSL_secure_free(p);
	if (!r && mlock((void *)start, end - start) < 0)
		r = -errno;
	if (r)
		log_debug("cannot lock the secure heap after fork: %s",
			  strerror(-r));
	return r;
}
