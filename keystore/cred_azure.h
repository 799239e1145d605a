/*
 * cred_azure.h - Microsoft Entra ID access tokens for Azure Key Vault,
 * and the REST plumbing azure.c shares with them.  Private to keystore/.
 *
 * Owns: where a Key Vault bearer token comes from (CockroachDB's AUTH,
 * AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET parameters,
 * and for AUTH=implicit the chain CockroachDB builds from the Azure SDK's
 * DefaultAzureCredential), the identity platform's client-credentials
 * grant, managed identity endpoints, a token cache, and the retry and
 * error decoding every Azure REST call needs.  Must not know: Key Vault
 * key operations, kmsuri, the keystore.
 *
 * AUTH=implicit uses the first source that is configured, consulting the
 * environment each time a token is fetched:
 *   1. COCKROACH_AZURE_APPLICATION_CREDENTIALS_FILE: CockroachDB's YAML
 *      file with azure_tenant_id, azure_client_id, azure_client_secret
 *      (skipped with a warning when it cannot be read or parsed, as
 *      CockroachDB falls through to the SDK chain);
 *   2. AZURE_TENANT_ID + AZURE_CLIENT_ID + AZURE_CLIENT_SECRET;
 *   3. workload identity: AZURE_FEDERATED_TOKEN_FILE + AZURE_TENANT_ID +
 *      AZURE_CLIENT_ID (client_assertion grant, file re-read per fetch);
 *   4. App Service managed identity: IDENTITY_ENDPOINT + IDENTITY_HEADER
 *      (api-version 2019-08-01, header X-IDENTITY-HEADER);
 *   5. VM managed identity (IMDS, api-version 2018-02-01, Metadata: true)
 *      at http://169.254.169.254 or AZURE_POD_IDENTITY_AUTHORITY_HOST (the
 *      override the Azure SDK for Python honours).  AZURE_CLIENT_ID, when
 *      set, selects a user-assigned identity in 4 and 5.
 * Sources 1-3 and explicit auth post to AZURE_AUTHORITY_HOST when set (as
 * the Azure SDKs do; https:// only), else to the cloud's authority host.
 * A configured source that fails is an error; the chain does not go on.
 *
 * Secrets: client secrets, assertions, IDENTITY_HEADER and tokens live in
 * secret containers; nothing here logs them.
 * Thread-safety: az_cred_auth_header and az_cred_invalidate may be called
 * from several threads; a mutex in the credential makes concurrent callers
 * wait for one fetch.
 */
#ifndef KMSFS_CRED_AZURE_H
#define KMSFS_CRED_AZURE_H

#include <stdbool.h>
#include <stddef.h>

#include "../lib/buf.h"
#include "http.h"

#define AZ_URL_MAX 512
#define AZ_BODY_MAX (64u << 10) /* replies we accept */
#define AZ_TOKEN_MAX 8192	/* longest access token we hold */

struct az_cred;

struct az_cred_params {
	bool implicit;
	/* explicit auth only (NULL for implicit); copied */
	const char *tenant_id;
	const char *client_id;
	const char *client_secret;
	const char *authority; /* the cloud's "https://login..." host */
	const char *resource;  /* "https://vault.azure.net" */
	const char *name;      /* redacted KMS name, for log lines */
	long timeout_ms;       /* per request */
};

/* Make a credential; reads AZURE_AUTHORITY_HOST, does no network I/O.
 * Returns 0, -EINVAL (logged: a tenant or client id that cannot be one,
 * an authority override that is not an https:// URL) or -ENOMEM. */
int az_cred_new(const struct az_cred_params *p, struct az_cred **out);
void az_cred_free(struct az_cred *c); /* wipes; accepts NULL */

/* Append "Authorization: Bearer <token>" to hdr (a secret buffer),
 * fetching a token when none is cached or the cached one is close to
 * expiry.  Errors (each logged once here with the endpoint, HTTP status
 * and error code, never a body): -EACCES credentials refused or no such
 * identity, -EAGAIN throttled or the service kept failing (5xx),
 * -ETIMEDOUT network, -EPROTO malformed reply or TLS failure, -ENOMEM. */
int az_cred_auth_header(struct az_cred *c, struct buf *hdr);
/* Forget the cached token (Key Vault answered 401). */
void az_cred_invalidate(struct az_cred *c);

/* The error code of an Azure error body ({"error":{"code":..}} from Key
 * Vault, {"error":".."} plus an "AADSTS<n>:" description from the
 * identity platform) as a short printable word, "-" if there is none. */
void az_error_code(const struct buf *body, char *out, size_t outlen);

#endif
