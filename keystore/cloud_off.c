/*
 * cloud_off.c - the cloud KMS providers when kmsfs is built without them.
 *
 * The scheme table still knows aws, gs and azure-kms (and their aliases),
 * so a user gets "not built, here is how" (-ENOTSUP) instead of "unknown
 * scheme".  The build links either this file or aws.c, gcp.c and azure.c.
 */
#include "provider.h"

#define CLOUD_HINT                                                             \
	"this kmsfs was built without cloud KMS support "                      \
	"(configure --enable-cloud-kms)"

static const char *const aws_aliases[] = {"aws-kms", NULL};
static const char *const gcp_aliases[] = {"gcp-kms", NULL};

const struct ks_provider ks_provider_aws = {
    .scheme = "aws",
    .aliases = aws_aliases,
    .built = false,
    .build_hint = CLOUD_HINT,
};

const struct ks_provider ks_provider_gcp = {
    .scheme = "gs",
    .aliases = gcp_aliases,
    .built = false,
    .build_hint = CLOUD_HINT,
};

const struct ks_provider ks_provider_azure = {
    .scheme = "azure-kms",
    .aliases = NULL,
    .built = false,
    .build_hint = CLOUD_HINT,
};
