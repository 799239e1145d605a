/*
 * hex.h - hexadecimal digits, both ways.
 *
 * Owns: the one decoder of hex digits (either case), used for %-escapes
 * in URIs and for hex key files, and the lowercase encoder used for key
 * IDs and digests.  Must not know: what the bytes are; no logging.
 * Thread-safety: pure functions.
 */
#ifndef KMSFS_HEX_H
#define KMSFS_HEX_H

#include <stddef.h>
#include <stdint.h>

/* The value of one hex digit ('0'-'9', 'a'-'f', 'A'-'F'), or -1. */
int hex_digit(char c);

/* The byte spelt by the two hex digits s[0] s[1], or -1 if either is not
 * a hex digit (s[1] is not read when s[0] is not one, so s may end
 * early: "%\0" is safe).  Used for "%XX" escapes. */
int hex_byte(const char *s);

/* Decode exactly len hex digits into len / 2 bytes of out.  Returns 0 or
 * -EINVAL (odd len, or a character that is not a hex digit); on -EINVAL
 * out may be partly written, so a caller decoding a key wipes it. */
int hex_decode(const char *hex, size_t len, uint8_t *out);

/* Lowercase hex of in[0..len) into out, which holds 2 * len + 1 bytes;
 * NUL-terminated. */
void hex_encode(const uint8_t *in, size_t len, char *out);

#endif
