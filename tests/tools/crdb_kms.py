#!/usr/bin/python3
"""crdb_kms.py - KMS URIs as CockroachDB reads them, for crdb.py.

Written from shared/spec/cockroach-interop.md section 3, independently of
kmsfs: the master key ID of each scheme (the ENCRYPTION-INFO map key is
its raw SHA-256), the query parameters each scheme accepts, and the KMS
Decrypt/Encrypt calls made with the services' official Python clients:

  aws:///KEY?REGION=..&AUTH=..&AWS_ACCESS_KEY_ID=..      (aws-kms: too)
        boto3 KMS Decrypt/Encrypt; AWS_ENDPOINT is the endpoint override
  gs:///projects/../cryptoKeys/K?AUTH=..&CREDENTIALS=..  (gcp-kms: too)
        google-auth + Cloud KMS REST decrypt/encrypt with CRC32C checks
  azure-kms:///NAME/VERSION?AZURE_VAULT_NAME=..&AZURE_CLIENT_ID=..
        azure-identity + azure-keyvault-keys, RSA-OAEP-256 decrypt/encrypt
  file:///ABS/PATH   kmsfs' local master key (not a CockroachDB scheme);
        the format is the one encinfo_keys.py documents and reuses here

Endpoints that only tests change (a CockroachDB cluster would use the real
services) come from an Endpoints object: the GCP KMS base URL, the Azure
vault URL and authority, and a CA bundle.  ASSUME_ROLE is not supported.
Nothing here prints a URI's credentials: use redact().
"""

import base64
import hashlib
import json
import os
from urllib.parse import parse_qsl, unquote, urlsplit

import encinfo_keys

SCHEMES = {"aws": "aws", "aws-kms": "aws", "gs": "gcp", "gcp-kms": "gcp",
           "azure-kms": "azure", "file": "local"}
PARAMS = {
    "aws": {"AUTH", "REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN", "AWS_ENDPOINT", "ASSUME_ROLE"},
    "gcp": {"AUTH", "CREDENTIALS", "BEARER_TOKEN", "ASSUME_ROLE"},
    "azure": {"AUTH", "AZURE_VAULT_NAME", "AZURE_CLIENT_ID",
              "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID", "AZURE_ENVIRONMENT"},
    "local": set(),
}
SECRET_PARAMS = {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "CREDENTIALS",
                 "BEARER_TOKEN", "AZURE_CLIENT_SECRET"}
AZURE_SUFFIX = {"": "vault.azure.net", "AzurePublicCloud": "vault.azure.net",
                "AzureUSGovernmentCloud": "vault.usgovcloudapi.net",
                "AzureChinaCloud": "vault.azure.cn",
                "AzureGermanCloud": "vault.microsoftazure.de"}
GCP_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GCP_ENDPOINT = "https://cloudkms.googleapis.com"
TIMEOUT = 15


class KMSError(Exception):
    """A URI CockroachDB would refuse, or a failed KMS call."""


class Endpoints:
    """Test-only overrides; the environment variables are the ones the
    mount tests already export for kmsfs (plain URLs, no secrets)."""

    def __init__(self, gcp=None, azure_vault=None, azure_authority=None,
                 ca_bundle=None):
        env = os.environ.get
        self.gcp = gcp or env("KMSFS_GCP_KMS_ENDPOINT") or GCP_ENDPOINT
        self.azure_vault = azure_vault or env("KMSFS_AZURE_VAULT_URL")
        self.azure_authority = azure_authority or env("AZURE_AUTHORITY_HOST")
        self.ca_bundle = ca_bundle or env("KMSFS_CA_BUNDLE")


class KmsUri:
    """One parsed KMS URI (url.ParseRequestURI + url.Values, in spirit)."""

    def __init__(self, uri):
        self.uri = uri
        u = urlsplit(uri)
        if u.scheme not in SCHEMES:
            raise KMSError("no factory method found for scheme %s"
                           % (u.scheme or "''"))
        self.scheme = u.scheme
        self.provider = SCHEMES[u.scheme]
        self.host = u.netloc
        self.path = unquote(u.path)
        self.params = {}
        for k, v in parse_qsl(u.query, keep_blank_values=True):
            self.params.setdefault(k, v)
        unknown = sorted(set(self.params) - PARAMS[self.provider])
        if unknown:
            raise KMSError("unknown KMS query parameters: %s"
                           % ", ".join(unknown))
        if self.params.get("ASSUME_ROLE"):
            raise KMSError("%s: ASSUME_ROLE is not supported by crdb.py"
                           % self.scheme)

    def get(self, name, default=""):
        return self.params.get(name, default)

    def master_key_id(self):
        """The string whose SHA-256 keys the ENCRYPTION-INFO map."""
        if self.provider == "aws":
            return self.path[1:] if self.path.startswith("/") else self.path
        if self.provider == "gcp":
            p = self.path.split("/cryptoKeyVersions/")[0]
            if p in ("", "/"):
                raise KMSError("path component of the KMS cannot be empty; "
                               "must contain the Customer Managed Key")
            return p[1:] if p.startswith("/") else p
        if self.provider == "azure":
            return self.azure_key()[0]
        _, kid = self.local_key()
        return kid

    def map_key(self):
        return hashlib.sha256(self.master_key_id().encode()).digest()

    def azure_key(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            raise KMSError("azure kms key must be of form 'id/version'")
        return parts[0], parts[1]

    def local_key(self):
        try:
            return encinfo_keys.local_id(self.path)
        except (encinfo_keys.Bad, OSError) as e:
            raise KMSError("file:// master key %s: %s" % (self.path, e))


def redact(uri):
    """The URI with every credential value replaced by 'redacted'."""
    u = urlsplit(uri)
    if not u.query:
        return uri
    q = []
    for k, v in parse_qsl(u.query, keep_blank_values=True):
        q.append("%s=%s" % (k, "redacted" if k in SECRET_PARAMS else v))
    return u._replace(query="&".join(q)).geturl()


def read_kms_file(path):
    """URIs of a kmsfs-style --kms-file: one per line, '#' comments."""
    with open(path) as f:
        lines = [ln.strip() for ln in f]
    uris = [ln for ln in lines if ln and not ln.startswith("#")]
    if not uris:
        raise KMSError("%s: no KMS URI in the file" % path)
    return uris


# ------------------------------------------------------------ providers

def _local(u, data, wrap):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    key, kid = u.local_key()
    gcm = AESGCM(key)
    if wrap:
        nonce = os.urandom(12)
        return b"\x01" + nonce + gcm.encrypt(nonce, data, kid.encode())
    if len(data) != 61 or data[0] != 1:
        raise KMSError("file:// blob of %d bytes is not a kmsfs local "
                       "wrapped key" % len(data))
    try:
        return gcm.decrypt(data[1:13], data[13:], kid.encode())
    except InvalidTag:
        raise KMSError("file:// master key does not unwrap this entry")


def _aws(u, data, wrap, ep):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    if not u.get("REGION"):
        raise KMSError("aws kms REGION parameter not specified")
    kw = {"region_name": u.get("REGION"),
          "config": Config(retries={"total_max_attempts": 2,
                                    "mode": "standard"},
                           connect_timeout=5, read_timeout=TIMEOUT)}
    if u.get("AWS_ENDPOINT"):
        kw["endpoint_url"] = u.get("AWS_ENDPOINT")
    if ep.ca_bundle:
        kw["verify"] = ep.ca_bundle
    auth = u.get("AUTH")
    if auth in ("", "specified"):
        for p in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            if not u.get(p):
                raise KMSError("AUTH is set to 'specified', but %s is not "
                               "set" % p)
        kw["aws_access_key_id"] = u.get("AWS_ACCESS_KEY_ID")
        # url.Values turned '+' into ' '; CockroachDB turns it back.
        kw["aws_secret_access_key"] = \
            u.get("AWS_SECRET_ACCESS_KEY").replace(" ", "+")
        if u.get("AWS_SESSION_TOKEN"):
            kw["aws_session_token"] = u.get("AWS_SESSION_TOKEN")
    elif auth != "implicit":
        raise KMSError("unsupported value %s for AUTH" % auth)
    kid = u.master_key_id()
    try:
        client = boto3.client("kms", **kw)
        if wrap:
            return client.encrypt(KeyId=kid, Plaintext=data)["CiphertextBlob"]
        return client.decrypt(KeyId=kid, CiphertextBlob=data)["Plaintext"]
    except ClientError as e:
        raise KMSError("aws kms: %s" % e.response["Error"].get("Code"))
    except BotoCoreError as e:
        raise KMSError("aws kms: %s" % type(e).__name__)


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _gcp_session(u, ep):
    from google.auth.transport.requests import AuthorizedSession
    auth = u.get("AUTH")
    if auth in ("", "specified"):
        if u.get("CREDENTIALS"):
            from google.oauth2 import service_account
            raw = u.get("CREDENTIALS").replace(" ", "+")
            raw += "=" * (-len(raw) % 4)
            try:
                info = json.loads(base64.b64decode(raw.replace("-", "+")
                                                   .replace("_", "/")))
            except ValueError:
                raise KMSError("error getting credentials from CREDENTIALS")
            creds = service_account.Credentials.from_service_account_info(
                info, scopes=[GCP_SCOPE])
        elif u.get("BEARER_TOKEN"):
            from google.oauth2 import credentials
            creds = credentials.Credentials(u.get("BEARER_TOKEN"))
        else:
            raise KMSError('CREDENTIALS or BEARER_TOKEN must be set if '
                           '"AUTH" is "specified"')
    elif auth == "implicit":
        import google.auth
        creds, _ = google.auth.default(scopes=[GCP_SCOPE])
    else:
        raise KMSError("unsupported value %s for AUTH" % auth)
    s = AuthorizedSession(creds)
    if ep.ca_bundle:
        s.verify = ep.ca_bundle
    return s


def _gcp(u, data, wrap, ep):
    import requests
    name = u.master_key_id()
    b64 = base64.b64encode(data).decode()
    if wrap:
        op, body = "encrypt", {"plaintext": b64,
                               "plaintextCrc32c": str(crc32c(data))}
    else:
        op, body = "decrypt", {"ciphertext": b64,
                               "ciphertextCrc32c": str(crc32c(data))}
    url = "%s/v1/%s:%s" % (ep.gcp.rstrip("/"), name, op)
    try:
        r = _gcp_session(u, ep).post(url, json=body, timeout=TIMEOUT)
    except (requests.RequestException, OSError) as e:
        raise KMSError("gcp kms: %s" % type(e).__name__)
    except Exception as e:  # google.auth RefreshError and friends
        raise KMSError("gcp kms: %s" % type(e).__name__)
    if r.status_code != 200:
        raise KMSError("gcp kms %s: HTTP %d" % (op, r.status_code))
    j = r.json()
    if wrap:
        out = base64.b64decode(j["ciphertext"])
        if not j.get("verifiedPlaintextCrc32c") or \
                int(j.get("ciphertextCrc32c", -1)) != crc32c(out):
            raise KMSError("Encrypt: response corrupted in-transit")
        return out
    out = base64.b64decode(j["plaintext"])
    if int(j.get("plaintextCrc32c", -1)) != crc32c(out):
        raise KMSError("Decrypt: response corrupted in-transit")
    return out


def _azure(u, data, wrap, ep):
    from azure.core.exceptions import AzureError
    from azure.keyvault.keys.crypto import CryptographyClient, \
        EncryptionAlgorithm
    name, version = u.azure_key()
    vault = u.get("AZURE_VAULT_NAME")
    if not vault:
        raise KMSError("kms URI expected but did not receive: "
                       "AZURE_VAULT_NAME")
    env_name = u.get("AZURE_ENVIRONMENT")
    if env_name not in AZURE_SUFFIX:
        raise KMSError("azure kms environment %s" % env_name)
    base = ep.azure_vault or "https://%s.%s" % (vault, AZURE_SUFFIX[env_name])
    tls = {"connection_verify": ep.ca_bundle} if ep.ca_bundle else {}
    auth = u.get("AUTH")
    if auth in ("", "specified"):
        from azure.identity import ClientSecretCredential
        need = ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")
        missing = [p for p in need if not u.get(p)]
        if missing:
            raise KMSError("kms URI expected but did not receive: %s"
                           % ", ".join(missing))
        kw = dict(tls)
        if ep.azure_authority:
            kw.update(authority=ep.azure_authority, instance_discovery=False)
        cred = ClientSecretCredential(u.get("AZURE_TENANT_ID"),
                                      u.get("AZURE_CLIENT_ID"),
                                      u.get("AZURE_CLIENT_SECRET"), **kw)
    elif auth == "implicit":
        from azure.identity import DefaultAzureCredential
        cred = DefaultAzureCredential(**tls)
    else:
        raise KMSError("unsupported value %s for AUTH" % auth)
    kw = dict(tls)
    if ep.azure_vault:
        kw["verify_challenge_resource"] = False
    alg = EncryptionAlgorithm.rsa_oaep_256
    try:
        cc = CryptographyClient("%s/keys/%s/%s" % (base.rstrip("/"), name,
                                                   version), cred, **kw)
        if wrap:
            return cc.encrypt(alg, data).ciphertext
        return cc.decrypt(alg, data).plaintext
    except AzureError as e:
        raise KMSError("azure kms: %s" % type(e).__name__)


def _call(uri, data, wrap, ep):
    u = uri if isinstance(uri, KmsUri) else KmsUri(uri)
    ep = ep or Endpoints()
    if u.provider == "local":
        return _local(u, data, wrap)
    if u.provider == "aws":
        return _aws(u, data, wrap, ep)
    if u.provider == "gcp":
        return _gcp(u, data, wrap, ep)
    return _azure(u, data, wrap, ep)


def unwrap(uri, blob, ep=None):
    """The data key `blob` wraps, via KMS Decrypt with `uri`."""
    key = _call(uri, blob, False, ep)
    if len(key) != 32:
        raise KMSError("the KMS returned a %d-byte data key" % len(key))
    return key


def wrap(uri, key, ep=None):
    """KMS Encrypt of a data key with `uri`: the ENCRYPTION-INFO value."""
    return _call(uri, key, True, ep)
