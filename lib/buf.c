/*
 * buf.c - bounded growable buffers.  Growth never leaves a copy of secret
 * contents behind: the old block is cleansed before it is freed.
 */
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

static uint8_t empty_data[1];

void buf_init(struct buf *b, size_t max)
{
	b->data = empty_data;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : BUF_DEFAULT_MAX;
	if (b->max > SIZE_MAX / 2)
		b->max = SIZE_MAX / 2; /* room for the NUL and doubling */
	b->secret = false;
}

void buf_init_secret(struct buf *b, size_t max)
{
	buf_init(b, max);
	b->secret = true;
}

void buf_release(struct buf *b)
{
	bool secret = b->secret;
	size_t max = b->max;

	if (b->cap) {
		if (b->secret)
			OPENSSL_cleanse(b->data, b->cap + 1);
		free(b->data);
	}
	buf_init(b, max);
	b->secret = secret;
}

void buf_reset(struct buf *b)
{
	if (b->cap && b->secret)
		OPENSSL_cleanse(b->data, b->len);
	b->len = 0;
	if (b->cap)
		b->data[0] = '\0';
}

int buf_grow(struct buf *b, size_t extra)
{
	size_t want, ncap;
	uint8_t *n;

	if (extra > b->max || b->len > b->max - extra)
		return -E2BIG;
	want = b->len + extra;
	if (want <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 64;
	while (ncap < want)
		ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
	if (ncap > b->max)
		ncap = b->max;
	n = malloc(ncap + 1);
	if (!n)
		return -ENOMEM;
	if (b->cap) {
		memcpy(n, b->data, b->len + 1);
		if (b->secret)
			OPENSSL_cleanse(b->data, b->cap + 1);
		free(b->data);
	} else {
		n[0] = '\0';
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
	int r = buf_grow(b, len);

	if (r)
		return r;
	if (!b->cap) /* len == 0 and nothing allocated */
		return 0;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int buf_addch(struct buf *b, char c)
{
	return buf_add(b, &c, 1);
}

int buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if (n == 0)
		return 0; /* never write into the shared empty storage */
	r = buf_grow(b, (size_t)n);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int buf_read_fd(struct buf *b, int fd)
{
	for (;;) {
		ssize_t n;
		int r = buf_grow(b, 4096);

		if (r == -E2BIG && b->len < b->max)
			r = buf_grow(b, b->max - b->len);
		if (r) {
			/* Full: succeed only if the file ends exactly here. */
			uint8_t probe;

			if (r == -E2BIG) {
				ssize_t got = read(fd, &probe, 1);

				if (got < 0)
					return -errno;
				return got == 0 ? 0 : -E2BIG;
			}
			return r;
		}
		n = read(fd, b->data + b->len, b->cap - b->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
}

int buf_read_file(struct buf *b, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	r = buf_read_fd(b, fd);
	close(fd);
	return r;
}
