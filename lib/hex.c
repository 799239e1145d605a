/*
 * hex.c - hex digits: decode either case, encode lowercase.
 */
#include "hex.h"

#include <errno.h>

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int hex_byte(const char *s)
{
	int hi = hex_digit(s[0]), lo;

	if (hi < 0)
		return -1;
	lo = hex_digit(s[1]);
	return lo < 0 ? -1 : hi << 4 | lo;
}

int hex_decode(const char *hex, size_t len, uint8_t *out)
{
	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len / 2; i++) {
		int v = hex_byte(hex + 2 * i);

		if (v < 0)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}
