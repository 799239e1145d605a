/*
 * journal.c - the tail journal: two alternating slots, each one sealed
 * record, the newest authentic one wins.
 */
#include "journal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../lib/fdio.h"

static const uint8_t magic[8] = "kmsfsJ1";

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

void jnl_name(const uint8_t iv[CF_IV_SIZE], char out[JNL_NAME_SIZE])
{
	size_t n = sizeof(JNL_PREFIX) - 1;

	memcpy(out, JNL_PREFIX, n);
	for (int i = 0; i < CF_IV_SIZE; i++, n += 2)
		snprintf(out + n, 3, "%02x", iv[i]);
}

int jnl_name_iv(const char *name, uint8_t iv_out[CF_IV_SIZE])
{
	size_t n = sizeof(JNL_PREFIX) - 1;

	if (strncmp(name, JNL_PREFIX, n) != 0 ||
	    strlen(name) != n + 2 * CF_IV_SIZE)
		return -EINVAL;
	for (int i = 0; i < CF_IV_SIZE; i++) {
		unsigned v;

		if (sscanf(name + n + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdef", name[n + 2 * i]) ||
		    !strchr("0123456789abcdef", name[n + 2 * i + 1]))
			return -EINVAL;
		iv_out[i] = (uint8_t)v;
	}
	return 0;
}

int jnl_write(int fd, const struct cf_key *key,
	      const uint8_t file_iv[CF_IV_SIZE], uint64_t k, uint64_t seq,
	      const uint8_t *data, size_t len, uint8_t *buf)
{
	int r;

	if (len > CF_CHUNK_SIZE)
		return -EINVAL;
	memcpy(buf, magic, sizeof(magic));
	r = cf_iv_random(buf + 8);
	if (r)
		return r;
	memcpy(buf + 20, file_iv, CF_IV_SIZE);
	put_le(buf + 32, k, 8);
	put_le(buf + 40, seq, 8);
	put_le(buf + 48, len, 4);
	memset(buf + 52, 0, 4);
	r = cf_seal_record(key, buf + 8, buf, JNL_HDR_SIZE, data, len,
			   buf + JNL_HDR_SIZE);
	if (r)
		return r;
	r = fdio_write_all(fd, buf, JNL_HDR_SIZE + len + CF_TAG_SIZE,
			   (off_t)(seq % 2) * JNL_SLOT);
	if (r == -ENOSPC || r == -EDQUOT)
		return -ENOSPC;
	return r ? -EIO : 0;
}

/* Slot j's record, if it is authentic and file_iv's.  -ENOENT, -EIO. */
static int read_slot(int fd, const struct cf_key *key,
		     const uint8_t file_iv[CF_IV_SIZE], int j, uint8_t *buf,
		     uint8_t *data)
{
	off_t off = (off_t)j * JNL_SLOT;
	size_t got, len;

	if (fdio_read_full(fd, buf, JNL_HDR_SIZE, off, &got))
		return -EIO;
	if (got < JNL_HDR_SIZE || memcmp(buf, magic, sizeof(magic)) != 0 ||
	    memcmp(buf + 20, file_iv, CF_IV_SIZE) != 0)
		return -ENOENT;
	len = (size_t)get_le(buf + 48, 4);
	if (len > CF_CHUNK_SIZE)
		return -ENOENT;
	if (fdio_read_full(fd, buf + JNL_HDR_SIZE, len + CF_TAG_SIZE,
			   off + JNL_HDR_SIZE, &got))
		return -EIO;
	if (got < len + CF_TAG_SIZE ||
	    cf_open_record(key, buf + 8, buf, JNL_HDR_SIZE, buf + JNL_HDR_SIZE,
			   len + CF_TAG_SIZE, data) != 0)
		return -ENOENT;
	return 0;
}

int jnl_read(int fd, const struct cf_key *key,
	     const uint8_t file_iv[CF_IV_SIZE], uint64_t *k, uint64_t *seq,
	     uint8_t *data, size_t *len, uint8_t *buf)
{
	uint64_t seqs[2];
	int ok[2], best;

	/* Learn both sequence numbers first, then open the newer record
	 * last so that data holds it. */
	for (int j = 0; j < 2; j++) {
		ok[j] = read_slot(fd, key, file_iv, j, buf, data);
		if (ok[j] == -EIO)
			return -EIO;
		seqs[j] = get_le(buf + 40, 8);
	}
	if (ok[0] && ok[1])
		return -ENOENT;
	best = ok[0] ? 1 : ok[1] ? 0 : seqs[1] > seqs[0];
	if (read_slot(fd, key, file_iv, best, buf, data) != 0)
		return -EIO; /* it changed under us */
	*k = get_le(buf + 32, 8);
	*seq = get_le(buf + 40, 8);
	*len = (size_t)get_le(buf + 48, 4);
	return 0;
}
