/*
 * chain.c - layout profiles and the reserved-name policy.
 */
#include "chain.h"

#include <stddef.h>
#include <string.h>

#include "../keystore/keystore.h"

static bool toplevel_starts_chain(unsigned depth, const char *name)
{
	(void)name;
	return depth == 1;
}

static const struct chain_profile profiles[] = {
    {
	.name = "toplevel",
	.description = "every top-level directory is a backup chain",
	.starts_chain = toplevel_starts_chain,
    },
};

const struct chain_profile *chain_profile_find(const char *name)
{
	if (!name)
		return &profiles[0];
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++) {
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	}
	return NULL;
}

bool chain_name_reserved(const char *name)
{
	return ks_is_encinfo_name(name) ||
	       strcmp(name, CHAIN_KEYCHECK_NAME) == 0 ||
	       strcmp(name, CHAIN_LOCK_NAME) == 0 ||
	       strncmp(name, CHAIN_TMP_PREFIX, strlen(CHAIN_TMP_PREFIX)) == 0;
}
