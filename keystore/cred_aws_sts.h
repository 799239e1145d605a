/*
 * cred_aws_sts.h - AWS STS for the credential chain: AssumeRole and
 * AssumeRoleWithWebIdentity.  Private to cred_aws.c.
 *
 * Owns: where STS is, the STS form requests (Version 2011-06-15),
 * signing and POSTing them (sigv4_post, 5 s timeout), the Credentials of
 * the XML reply, and STS error replies turned into one log line and an
 * errno.
 *
 * STS endpoint: the URI's AWS_ENDPOINT when given (as CockroachDB, which
 * points its STS client at the same base endpoint), else the environment
 * variable AWS_ENDPOINT_URL_STS (the AWS SDKs' service-specific endpoint
 * setting), else https://sts.<region>.amazonaws.com.  The same applies
 * to AssumeRoleWithWebIdentity in the implicit chain.
 * Must not know: where the credentials it signs with came from, caching.
 * Thread-safety: no state of its own.
 */
#ifndef KMSFS_CRED_AWS_STS_H
#define KMSFS_CRED_AWS_STS_H

#include <stddef.h>

#include "cred_aws.h"

struct aws_sts {
	const char *url;    /* aws_sts_endpoint(); ends in '/' */
	const char *region; /* signing region */
};

/* STS base URL (see above; ends in '/') into *out (malloc'd).  0 or
 * -ENOMEM. */
int aws_sts_endpoint(const char *endpoint, const char *region, char **out);

/* AssumeRole arn (with external_id unless NULL), signed with from.  *out
 * (initialised) gets the temporary credentials, source "AssumeRole".
 * Returns 0, -EACCES (refused), -EAGAIN (throttled or 5xx), -ETIMEDOUT,
 * -EPROTO (TLS failure or malformed reply), -ENOMEM; failures logged
 * once, naming the role and never a credential. */
int aws_sts_assume_role(const struct aws_sts *sts, const struct aws_creds *from,
			const char *arn, const char *external_id,
			struct aws_creds *out);

/* AssumeRoleWithWebIdentity for arn with the session name and the
 * token[0..len), unsigned; source "AssumeRoleWithWebIdentity".  Errors
 * as aws_sts_assume_role. */
int aws_sts_web_identity(const struct aws_sts *sts, const char *arn,
			 const char *session, const char *token, size_t len,
			 struct aws_creds *out);

#endif
