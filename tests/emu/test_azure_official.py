#!/usr/bin/python3
"""test_azure_official.py - validate azure_emu.py with Microsoft's own SDK.

If the official clients (azure-identity 1.13.0b2 with MSAL, azure-keyvault-
keys 4.8.0b3, azure-core 1.26.3, as Debian ships them) can authenticate
and round-trip keys against the emulator, and the emulator rejects what
the real services reject, then a C client that passes against the
emulator speaks the real protocol.  Runs offline: a throw-away CA and
server certificate are made with the openssl CLI; TLS stays verified.

Usage: /usr/bin/python3 tests/emu/test_azure_official.py
Prints one line per check and a final "N passed, M failed"; exit 1 on any
failure.
"""

import json
import logging
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP, SECRET = "11111111-2222-3333-4444-555555555555", "s3cret~with.odd+chars"
FED_APP, ASSERTION = "66666666-7777-8888-9999-000000000000", "fed.jwt.token"
UAI = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
IDHEADER = "app-service-identity-header"
SCOPE = "https://vault.azure.net/.default"

RESULTS = {"passed": 0, "failed": 0}


def check(name):
    def wrap(fn):
        def run(env):
            try:
                fn(env)
                RESULTS["passed"] += 1
                print("PASS %s" % name)
            except Exception:  # pylint: disable=broad-except
                RESULTS["failed"] += 1
                print("FAIL %s" % name)
                traceback.print_exc(file=sys.stdout)
        run.__name__ = fn.__name__
        return run
    return wrap


def make_certs(d):
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[srv]\nsubjectAltName=IP:127.0.0.1\nbasicConstraints="
                "CA:FALSE\nextendedKeyUsage=serverAuth\n")

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
        "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv-key.pem",
        "-out", "srv.csr", "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
        "ca-key.pem", "-CAcreateserial", "-out", "srv.pem", "-days", "2",
        "-extfile", "ext.cnf", "-extensions", "srv")
    return os.path.join(d, "ca.pem")


class Env:
    def __init__(self, d):
        self.ca = make_certs(d)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "azure_emu.py"),
             "--cert", os.path.join(d, "srv.pem"),
             "--key", os.path.join(d, "srv-key.pem"),
             "--tenant", TENANT, "--app", "%s:%s" % (APP, SECRET),
             "--federated", "%s:%s" % (FED_APP, ASSERTION),
             "--mi-system", "--mi-client-id", UAI,
             "--identity-header", IDHEADER,
             "--vault-key", "k1/v1", "--vault-key", "k1/v2",
             "--watch-stdin"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.hport = int(self.proc.stdout.readline())
        self.authority = "https://127.0.0.1:%d" % self.port
        self.vault = "https://127.0.0.1:%d" % self.port
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)

    def control(self, what, obj=None):
        data = json.dumps(obj).encode() if obj is not None else None
        url = "http://127.0.0.1:%d/_emu/%s" % (self.hport, what)
        with urllib.request.urlopen(urllib.request.Request(
                url, data=data, method="POST" if data is not None
                or what == "reset" else "GET")) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        return self.control("stats")

    def raw(self, method, path, headers=None, body=None, tls=True):
        base = self.vault if tls else "http://127.0.0.1:%d" % self.hport
        req = urllib.request.Request(base + path, data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=self.ctx if tls
                                        else None) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"{}")


def secret_cred(env, secret=SECRET, tenant=TENANT):
    from azure.identity import ClientSecretCredential
    return ClientSecretCredential(tenant, APP, secret,
                                  authority=env.authority,
                                  instance_discovery=False,
                                  connection_verify=env.ca)


def crypto_client(env, cred, key="k1/v1"):
    from azure.keyvault.keys.crypto import CryptographyClient
    return CryptographyClient("%s/keys/%s" % (env.vault, key), cred,
                              verify_challenge_resource=False,
                              connection_verify=env.ca)


@check("ClientSecretCredential gets a token (MSAL, openid discovery)")
def t_secret_token(env):
    before = env.stats()
    tok = secret_cred(env).get_token(SCOPE)
    assert tok.token.count(".") == 2 and tok.expires_on > time.time() + 3000
    after = env.stats()
    assert after.get("token_ok", 0) == before.get("token_ok", 0) + 1
    assert after.get("openid", 0) > before.get("openid", 0)


@check("ClientSecretCredential: wrong secret rejected (AADSTS7000215)")
def t_secret_wrong(env):
    from azure.core.exceptions import ClientAuthenticationError
    try:
        secret_cred(env, secret="wrong").get_token(SCOPE)
    except ClientAuthenticationError as e:
        assert "AADSTS7000215" in str(e), str(e)
        assert SECRET not in str(e)
        return
    raise AssertionError("wrong secret accepted")


@check("ClientSecretCredential: unknown tenant rejected")
def t_secret_tenant(env):
    from azure.core.exceptions import ClientAuthenticationError
    try:
        secret_cred(env, tenant="0000dead-0000-0000-0000-000000000000") \
            .get_token(SCOPE)
    except ClientAuthenticationError as e:
        # MSAL reads the OIDC document first; AAD refuses it for an
        # unknown tenant, and MSAL chains that answer as the cause.
        chain, cur = [], e
        while cur is not None:
            chain.append(str(cur))
            cur = cur.__cause__ or cur.__context__
        assert any("AADSTS90002" in m for m in chain), chain
        return
    raise AssertionError("unknown tenant accepted")


@check("ClientAssertionCredential (workload identity) gets a token")
def t_assertion(env):
    from azure.identity import ClientAssertionCredential
    from azure.core.exceptions import ClientAuthenticationError

    # 1.13.0b2 forwards every keyword to object.__init__, so authority
    # and CA come from AZURE_AUTHORITY_HOST and REQUESTS_CA_BUNDLE.
    def run():
        cred = ClientAssertionCredential(TENANT, FED_APP, lambda: ASSERTION)
        assert cred.get_token(SCOPE).token.count(".") == 2
        bad = ClientAssertionCredential(TENANT, FED_APP, lambda: "forged")
        try:
            bad.get_token(SCOPE)
        except ClientAuthenticationError as e:
            assert "AADSTS700211" in str(e), str(e)
            return
        raise AssertionError("forged assertion accepted")
    with_env({"AZURE_AUTHORITY_HOST": env.authority}, run)


def with_env(values, fn):
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        return fn()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


MI_CLEAR = {"IDENTITY_ENDPOINT": None, "IDENTITY_HEADER": None,
            "MSI_ENDPOINT": None, "MSI_SECRET": None,
            "IDENTITY_SERVER_THUMBPRINT": None, "IMDS_ENDPOINT": None,
            "AZURE_FEDERATED_TOKEN_FILE": None}


@check("ManagedIdentityCredential via IMDS (system and user-assigned)")
def t_imds(env):
    from azure.identity import ManagedIdentityCredential, \
        CredentialUnavailableError

    def run():
        before = env.stats().get("imds_ok", 0)
        assert ManagedIdentityCredential().get_token(SCOPE).token
        assert ManagedIdentityCredential(client_id=UAI).get_token(SCOPE)
        assert env.stats().get("imds_ok", 0) == before + 2
        try:
            ManagedIdentityCredential(client_id="nope").get_token(SCOPE)
        except CredentialUnavailableError as e:
            # the SDK's reading of IMDS's 400 "Identity not found"
            assert "has not been assigned" in str(e), str(e)
            return
        raise AssertionError("unknown identity accepted")
    with_env(dict(MI_CLEAR, AZURE_POD_IDENTITY_AUTHORITY_HOST=
                  "http://127.0.0.1:%d" % env.hport), run)


@check("ManagedIdentityCredential via App Service endpoint")
def t_app_service(env):
    from azure.identity import ManagedIdentityCredential

    def run():
        before = env.stats().get("appservice_ok", 0)
        tok = ManagedIdentityCredential().get_token(SCOPE)
        assert tok.expires_on > time.time() + 3000
        assert env.stats().get("appservice_ok", 0) == before + 1
    with_env(dict(MI_CLEAR, AZURE_POD_IDENTITY_AUTHORITY_HOST=None,
                  IDENTITY_ENDPOINT="http://127.0.0.1:%d/msi/token"
                  % env.hport, IDENTITY_HEADER=IDHEADER), run)


@check("IMDS without Metadata header is refused (400)")
def t_imds_header(env):
    st, _, body = env.raw("GET", "/metadata/identity/oauth2/token?api-"
                          "version=2018-02-01&resource=https://vault.azure."
                          "net", tls=False)
    assert st == 400 and body["error"] == "invalid_request", (st, body)


@check("CryptographyClient encrypt/decrypt RSA-OAEP-256, remote (get 403)")
def t_remote_crypto(env):
    from azure.keyvault.keys.crypto import EncryptionAlgorithm
    env.control("config", {"key_get": "forbid"})
    try:
        before = env.stats()
        cc = crypto_client(env, secret_cred(env))
        dk = os.urandom(32)
        enc = cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, dk)
        assert len(enc.ciphertext) == 256 and enc.key_id.endswith("/k1/v1")
        dec = cc.decrypt(EncryptionAlgorithm.rsa_oaep_256, enc.ciphertext)
        assert dec.plaintext == dk
        after = env.stats()
        assert after["kv_encrypt"] == before.get("kv_encrypt", 0) + 1
        assert after["kv_decrypt"] == before.get("kv_decrypt", 0) + 1
        assert after["kv_challenge"] > before.get("kv_challenge", 0)
    finally:
        env.control("config", {"key_get": "allow"})


@check("local encrypt with the served JWK, remote decrypt")
def t_local_jwk(env):
    from azure.keyvault.keys.crypto import EncryptionAlgorithm
    cc = crypto_client(env, secret_cred(env), "k1/v2")
    before = env.stats()
    dk = os.urandom(32)
    enc = cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, dk)
    mid = env.stats()
    assert mid.get("kv_encrypt", 0) == before.get("kv_encrypt", 0), \
        "expected local encryption"
    assert cc.decrypt(EncryptionAlgorithm.rsa_oaep_256,
                      enc.ciphertext).plaintext == dk


@check("wrap_key/unwrap_key RSA-OAEP-256 with managed identity")
def t_wrap(env):
    from azure.identity import ManagedIdentityCredential
    from azure.keyvault.keys.crypto import KeyWrapAlgorithm

    def run():
        env.control("config", {"key_get": "forbid"})
        cc = crypto_client(env, ManagedIdentityCredential())
        dk = os.urandom(32)
        w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, dk)
        assert cc.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256,
                             w.encrypted_key).key == dk
    try:
        with_env(dict(MI_CLEAR, AZURE_POD_IDENTITY_AUTHORITY_HOST=
                      "http://127.0.0.1:%d" % env.hport), run)
    finally:
        env.control("config", {"key_get": "allow"})


@check("unknown key: 404 KeyNotFound as the SDK parses it")
def t_not_found(env):
    from azure.core.exceptions import ResourceNotFoundError
    from azure.keyvault.keys.crypto import EncryptionAlgorithm
    cc = crypto_client(env, secret_cred(env), "nokey/v1")
    try:
        cc.decrypt(EncryptionAlgorithm.rsa_oaep_256, b"\0" * 256)
    except ResourceNotFoundError as e:
        assert e.error.code == "KeyNotFound", e.error.code
        return
    raise AssertionError("unknown key accepted")


@check("RBAC deny: 403 Forbidden")
def t_forbidden(env):
    from azure.core.exceptions import HttpResponseError
    from azure.keyvault.keys.crypto import EncryptionAlgorithm
    env.control("config", {"deny": [APP]})
    try:
        crypto_client(env, secret_cred(env)).decrypt(
            EncryptionAlgorithm.rsa_oaep_256, b"\0" * 256)
    except HttpResponseError as e:
        assert e.status_code == 403 and e.error.code == "Forbidden"
        assert "not authorized to perform action on resource" in e.message
        return
    finally:
        env.control("config", {"deny": []})
    raise AssertionError("denied caller accepted")


@check("injected 429 and 500 are retried by the SDK")
def t_retry(env):
    from azure.keyvault.keys.crypto import EncryptionAlgorithm
    env.control("config", {"key_get": "forbid"})
    try:
        cc = crypto_client(env, secret_cred(env))
        cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"x" * 32)
        before = env.stats()
        env.control("fault", {"target": "kv", "status": 429, "count": 1})
        env.control("fault", {"target": "kv", "status": 500, "count": 1})
        cc.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"x" * 32)
        after = env.stats()
        assert after["fault_kv"] == before.get("fault_kv", 0) + 2
    finally:
        env.control("config", {"key_get": "allow"})


def bearer(env, **kw):
    code, _, body = env.raw(
        "POST", "/%s/oauth2/v2.0/token" % TENANT,
        {"Content-Type": "application/x-www-form-urlencoded"},
        urllib.parse.urlencode(dict(
            {"client_id": APP, "client_secret": SECRET, "scope": SCOPE,
             "grant_type": "client_credentials"}, **kw)).encode())
    return code, body


def kv_encrypt(env, token, value="AAAA", alg="RSA-OAEP-256"):
    return env.raw("POST", "/keys/k1/v1/encrypt?api-version=7.4",
                   {"Content-Type": "application/json",
                    "Authorization": "Bearer " + token},
                   json.dumps({"alg": alg, "value": value}).encode())


@check("tampered, expired, wrong-scope tokens and bad bodies are refused")
def t_token_checks(env):
    code, body = bearer(env)
    assert code == 200
    tok = body["access_token"]
    st, _, _ = kv_encrypt(env, tok)
    assert st == 200
    head, payload, sig = tok.split(".")
    st, hdr, b = kv_encrypt(env, "%s.%sx.%s" % (head, payload, sig))
    assert st == 401 and "WWW-Authenticate" in hdr, (st, b)
    code, body = bearer(env, scope="https://management.azure.com/.default")
    assert code == 400 and body["error"] == "invalid_scope"
    code, body = bearer(env, grant_type="password")
    assert code == 400 and body["error"] == "unsupported_grant_type"
    st, _, b = kv_encrypt(env, tok, value="AAA=")
    assert st == 400 and b["error"]["code"] == "BadParameter"
    st, _, b = kv_encrypt(env, tok, alg="A256KW")
    assert st == 400 and b["error"]["code"] == "BadParameter"
    env.control("config", {"token_lifetime": 1})
    try:
        code, body = bearer(env)
    finally:
        env.control("config", {"token_lifetime": 3599})
    time.sleep(2.1)
    st, _, b = kv_encrypt(env, body["access_token"])
    assert st == 401 and "expired" in b["error"]["message"], (st, b)


@check("TLS: a client without the test CA refuses the emulator")
def t_tls(env):
    try:
        urllib.request.urlopen(env.vault + "/keys/k1/v1?api-version=7.4",
                               context=ssl.create_default_context())
    except urllib.error.URLError as e:
        assert isinstance(e.reason, ssl.SSLCertVerificationError), e
        return
    raise AssertionError("untrusted certificate accepted")


def main():
    # the SDK logs every expected failure at WARNING; keep the output ours
    logging.getLogger("azure").setLevel(logging.CRITICAL)
    d = tempfile.mkdtemp(prefix="azure-emu-test-")
    env = None
    try:
        env = Env(d)
        os.environ["REQUESTS_CA_BUNDLE"] = env.ca
        os.environ.pop("AZURE_AUTHORITY_HOST", None)
        for t in (t_secret_token, t_secret_wrong, t_secret_tenant,
                  t_assertion, t_imds, t_app_service, t_imds_header,
                  t_remote_crypto, t_local_jwk, t_wrap, t_not_found,
                  t_forbidden, t_retry, t_token_checks, t_tls):
            t(env)
    finally:
        if env:
            env.close()
        shutil.rmtree(d, ignore_errors=True)
    print("%d passed, %d failed" % (RESULTS["passed"], RESULTS["failed"]))
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
