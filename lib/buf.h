/*
 * buf.h - bounded, growable byte buffers (git's strbuf, with a ceiling).
 *
 * Owns: memory for variable-length data (HTTP bodies, encoded
 * ENCRYPTION-INFO, JSON).  Invariants: data[len] == '\0' always (so text
 * can be used as a C string), len <= cap, len <= max.  A buffer flagged
 * secret wipes old storage on growth and on release.
 * Thread-safety: none; one owner at a time.
 */
#ifndef KMSFS_BUF_H
#define KMSFS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BUF_DEFAULT_MAX (16u << 20)

struct buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max;
	bool secret;
};

/* Initialise an empty buffer that may grow to max bytes (0: default). */
void buf_init(struct buf *b, size_t max);
/* Same, flagged secret: wiped on growth and release. */
void buf_init_secret(struct buf *b, size_t max);
/* Free storage (wiping it when secret) and re-init to empty. */
void buf_release(struct buf *b);
/* Drop contents, keep storage (wiped when secret). */
void buf_reset(struct buf *b);

/* Append bytes.  Returns 0, -ENOMEM, or -E2BIG when max would be passed;
 * on error the buffer is unchanged. */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_addstr(struct buf *b, const char *s);
int buf_addch(struct buf *b, char c);
/* printf-style append; -E2BIG/-ENOMEM as above. */
int buf_addf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Make room for extra more bytes without changing len. */
int buf_grow(struct buf *b, size_t extra);

/* Read a whole file (regular file, at most max bytes) into b. Returns 0,
 * -errno from open/read, or -E2BIG. */
int buf_read_file(struct buf *b, const char *path);
int buf_read_fd(struct buf *b, int fd);

#endif
