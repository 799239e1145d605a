#!/usr/bin/python3
"""test_gcp_official.py - validate gcp_emu.py with Google's own client.

The emulator is only worth something if Google's libraries accept it and it
rejects what Google would reject.  This drives it with python3-google-auth:
service_account.Credentials.refresh against the emulator's token_uri,
compute_engine.Credentials against the emulated metadata server
(GCE_METADATA_ROOT / GCE_METADATA_HOST), and an AuthorizedSession calling
Cloud KMS encrypt/decrypt (with CRC32C) and IAM generateAccessToken.  It
also checks that a tampered or mis-addressed JWT is refused.

Run with Debian's /usr/bin/python3; prints "N passed, N failed" last and
exits non-zero on failure.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
CP = "https://www.googleapis.com/auth/cloud-platform"


def start_emulator(tmp):
    sa_path = os.path.join(tmp, "sa.json")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "gcp_emu.py"), "--sa-out",
         sa_path, "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    return proc, port, sa_path


TMP = tempfile.mkdtemp(prefix="gcp-emu-test-")
PROC, PORT, SA_PATH = start_emulator(TMP)
BASE = "http://127.0.0.1:%d" % PORT
# google-auth 1.5.1 reads GCE_METADATA_ROOT at import time; newer releases
# read GCE_METADATA_HOST.  Set both before importing.
os.environ["GCE_METADATA_ROOT"] = "127.0.0.1:%d" % PORT
os.environ["GCE_METADATA_HOST"] = "127.0.0.1:%d" % PORT
os.environ["GCE_METADATA_IP"] = "127.0.0.1:%d" % PORT

import requests  # noqa: E402
import google.auth.transport.requests as gtr  # noqa: E402
from google.auth import crypt, exceptions, jwt  # noqa: E402
from google.auth.compute_engine import Credentials as GceCredentials  # noqa
from google.auth.compute_engine import _metadata  # noqa: E402
from google.oauth2 import _client, service_account  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
from gcp_emu import crc32c  # noqa: E402

RESULTS = []


def test(fn):
    try:
        fn()
        RESULTS.append((fn.__name__, None))
        print("PASS", fn.__name__)
    except Exception:
        RESULTS.append((fn.__name__, traceback.format_exc()))
        print("FAIL", fn.__name__)
        traceback.print_exc()
    return fn


def ctl(path, body=None):
    r = requests.post(BASE + "/_emu/" + path, json=body or {})
    assert r.status_code == 200, r.text
    return r.json()


def stats():
    return requests.get(BASE + "/_emu/stats").json()


def sa_creds():
    return service_account.Credentials.from_service_account_file(
        SA_PATH, scopes=[CP])


def kms_url(name, op):
    return "%s/v1/%s:%s" % (BASE, name, op)


def encrypt(session, pt, name=KEY, crc=None):
    crc = crc32c(pt) if crc is None else crc
    return session.post(kms_url(name, "encrypt"), json={
        "plaintext": base64.b64encode(pt).decode(),
        "plaintextCrc32c": str(crc)})


def decrypt(session, ct, name=KEY):
    return session.post(kms_url(name, "decrypt"), json={
        "ciphertext": base64.b64encode(ct).decode(),
        "ciphertextCrc32c": str(crc32c(ct))})


def assert_google_error(resp, code, status):
    assert resp.status_code == code, (resp.status_code, resp.text)
    err = resp.json()["error"]
    assert err["code"] == code and err["status"] == status, err
    assert isinstance(err["message"], str) and err["message"]


@test
def crc32c_known_answer():
    # RFC 3720 B.4: 32 bytes of zeros -> 0x8a9136aa; "123456789" ->
    # 0xe3069283 (the CRC-32C check value).
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"123456789") == 0xE3069283


@test
def service_account_refresh():
    ctl("reset")
    creds = sa_creds()
    creds.refresh(gtr.Request())
    assert creds.token and creds.token.startswith("ya29.")
    assert creds.expiry is not None and creds.valid
    s = stats()
    assert s["token"] == 1 and s["token_rejected"] == 0, s
    assert s["token_scope"] == CP, s


@test
def kms_roundtrip_authorized_session():
    session = gtr.AuthorizedSession(sa_creds())
    dk = os.urandom(32)
    r = encrypt(session, dk)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verifiedPlaintextCrc32c"] is True
    assert body["name"] == KEY + "/cryptoKeyVersions/3"
    ct = base64.b64decode(body["ciphertext"])
    assert int(body["ciphertextCrc32c"]) == crc32c(ct)
    r = decrypt(session, ct)
    assert r.status_code == 200, r.text
    body = r.json()
    assert base64.b64decode(body["plaintext"]) == dk
    assert int(body["plaintextCrc32c"]) == crc32c(dk)
    assert body["usedPrimary"] is True


@test
def kms_version_encrypt_then_key_decrypt():
    session = gtr.AuthorizedSession(sa_creds())
    r = encrypt(session, b"v1 data", KEY + "/cryptoKeyVersions/1")
    assert r.status_code == 200, r.text
    ct = base64.b64decode(r.json()["ciphertext"])
    r = decrypt(session, ct)
    assert r.status_code == 200 and r.json()["usedPrimary"] is False
    assert_google_error(decrypt(session, ct, KEY + "/cryptoKeyVersions/1"),
                        400, "INVALID_ARGUMENT")
    assert_google_error(encrypt(session, b"x", KEY + "/cryptoKeyVersions/9"),
                        404, "NOT_FOUND")


@test
def kms_rejects_bad_requests():
    session = gtr.AuthorizedSession(sa_creds())
    assert_google_error(encrypt(session, b"abc", crc=crc32c(b"abd")),
                        400, "INVALID_ARGUMENT")
    assert_google_error(encrypt(session, b"abc", KEY[:-1] + "nope"),
                        404, "NOT_FOUND")
    r = session.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ==",
                                                   "bogus": 1})
    assert_google_error(r, 400, "INVALID_ARGUMENT")
    r = session.post(kms_url(KEY, "decrypt"), json={"ciphertext": "AAAA"})
    assert_google_error(r, 400, "INVALID_ARGUMENT")
    # Ciphertext bound to its key: k2 cannot open k's ciphertext.
    ct = base64.b64decode(encrypt(session, b"abc").json()["ciphertext"])
    assert_google_error(decrypt(session, ct, KEY + "2"), 400,
                        "INVALID_ARGUMENT")
    r = decrypt(session, ct)
    assert r.status_code == 200
    tampered = ct[:-1] + bytes([ct[-1] ^ 1])
    assert_google_error(decrypt(session, tampered), 400, "INVALID_ARGUMENT")


@test
def kms_rejects_missing_invalid_expired_tokens():
    r = requests.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ=="})
    assert_google_error(r, 401, "UNAUTHENTICATED")
    assert "WWW-Authenticate" in r.headers
    r = requests.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ=="},
                      headers={"Authorization": "Bearer ya29.made-up"})
    assert_google_error(r, 401, "UNAUTHENTICATED")
    tok = ctl("mint", {"ttl": -1})["access_token"]
    r = requests.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ=="},
                      headers={"Authorization": "Bearer " + tok})
    assert_google_error(r, 401, "UNAUTHENTICATED")
    tok = ctl("mint", {"scopes": ["https://www.googleapis.com/auth/"
                                  "devstorage.read_only"]})["access_token"]
    r = requests.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ=="},
                      headers={"Authorization": "Bearer " + tok})
    assert_google_error(r, 403, "PERMISSION_DENIED")


def signed_assertion(claims_override=None, kid=True):
    info = json.load(open(SA_PATH))
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {"iss": info["client_email"], "scope": CP,
              "aud": info["token_uri"], "iat": now, "exp": now + 3600}
    claims.update(claims_override or {})
    return info, jwt.encode(signer, claims).decode()


@test
def jwt_grant_accepts_well_formed_assertion():
    info, assertion = signed_assertion()
    tok, expiry, _ = _client.jwt_grant(gtr.Request(), info["token_uri"],
                                       assertion)
    assert tok.startswith("ya29.") and expiry is not None


@test
def tampered_jwt_is_rejected():
    info, assertion = signed_assertion()
    head, claims, sig = assertion.split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "==="))
    forged["scope"] = CP + " https://www.googleapis.com/auth/iam"
    claims2 = base64.urlsafe_b64encode(
        json.dumps(forged).encode()).decode().rstrip("=")
    before = stats()["token_rejected"]
    for bad in (head + "." + claims2 + "." + sig,
                head + "." + claims + "." + sig[:-4] + "AAAA"):
        try:
            jwt.decode(bad, certs=None, verify=False)  # still parses
            _client.jwt_grant(gtr.Request(), info["token_uri"], bad)
        except exceptions.RefreshError as e:
            assert "invalid_grant" in str(e), e
        else:
            raise AssertionError("tampered JWT accepted")
    assert stats()["token_rejected"] == before + 2


@test
def jwt_wrong_audience_or_lifetime_is_rejected():
    for override in ({"aud": "https://oauth2.googleapis.com/token"},
                     {"exp": int(time.time()) + 7200},
                     {"exp": int(time.time()) - 4000,
                      "iat": int(time.time()) - 7000}):
        info, assertion = signed_assertion(override)
        try:
            _client.jwt_grant(gtr.Request(), info["token_uri"], assertion)
        except exceptions.RefreshError:
            continue
        raise AssertionError("accepted %r" % override)
    # Right signature, but a JWT the key never signed for: other key.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    info = json.load(open(SA_PATH))
    signer = crypt.RSASigner.from_string(pem, info["private_key_id"])
    now = int(time.time())
    bad = jwt.encode(signer, {"iss": info["client_email"], "scope": CP,
                              "aud": info["token_uri"], "iat": now,
                              "exp": now + 3600}).decode()
    try:
        _client.jwt_grant(gtr.Request(), info["token_uri"], bad)
    except exceptions.RefreshError:
        return
    raise AssertionError("JWT from another key accepted")


@test
def metadata_compute_engine_credentials():
    ctl("reset")
    req = gtr.Request()
    assert _metadata.ping(req)
    creds = GceCredentials()
    creds.refresh(req)
    assert creds.token.startswith("ya29.") and creds.valid
    assert creds.service_account_email.startswith("gce-default@")
    s = stats()
    assert s["metadata_info"] == 1 and s["metadata_token"] == 1, s
    session = gtr.AuthorizedSession(creds)
    r = encrypt(session, b"from gce")
    assert r.status_code == 200, r.text
    assert stats()["kms_principal"] == creds.service_account_email


@test
def metadata_requires_flavor_header():
    url = BASE + "/computeMetadata/v1/instance/service-accounts/default/token"
    r = requests.get(url)
    assert r.status_code == 403
    r = requests.get(url, headers={"Metadata-Flavor": "Google",
                                   "X-Forwarded-For": "1.2.3.4"})
    assert r.status_code == 403
    r = requests.get(url, headers={"Metadata-Flavor": "Google"})
    assert r.status_code == 200 and r.headers["Metadata-Flavor"] == "Google"
    assert r.json()["token_type"] == "Bearer"


@test
def iam_generate_access_token():
    ctl("reset")
    session = gtr.AuthorizedSession(sa_creds())
    target = "kms-user@emu-project.iam.gserviceaccount.com"
    mid = "middle@emu-project.iam.gserviceaccount.com"
    url = ("https://iamcredentials.googleapis.com/v1/projects/-/"
           "serviceAccounts/%s:generateAccessToken" % target)
    url = url.replace("https://iamcredentials.googleapis.com", BASE)
    r = session.post(url, json={
        "scope": [CP], "lifetime": "3600s",
        "delegates": ["projects/-/serviceAccounts/" + mid]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expireTime"].endswith("Z")
    last = stats()["iam_last"]
    assert last["caller"] == json.load(open(SA_PATH))["client_email"]
    assert last["target"] == target and last["delegates"] == [mid], last
    r = requests.post(kms_url(KEY, "encrypt"), json={"plaintext": "YQ=="},
                      headers={"Authorization": "Bearer "
                               + body["accessToken"]})
    assert r.status_code == 200, r.text
    assert stats()["kms_principal"] == target
    r = session.post(url, json={"scope": [CP], "delegates": [mid]})
    assert_google_error(r, 400, "INVALID_ARGUMENT")
    r = session.post(url.replace(target, "deny-me@emu-project.iam."
                                 "gserviceaccount.com"), json={"scope": [CP]})
    assert_google_error(r, 403, "PERMISSION_DENIED")
    r = requests.post(url, json={"scope": [CP]})
    assert_google_error(r, 401, "UNAUTHENTICATED")


@test
def fault_injection():
    session = gtr.AuthorizedSession(sa_creds())
    session.credentials.refresh(gtr.Request())
    for mode, code, status in (("429", 429, "RESOURCE_EXHAUSTED"),
                               ("503", 503, "UNAVAILABLE"),
                               ("403", 403, "PERMISSION_DENIED")):
        ctl("fault", {"mode": mode, "target": "kms", "count": 1})
        assert_google_error(encrypt(session, b"x"), code, status)
        assert encrypt(session, b"x").status_code == 200
    ctl("fault", {"mode": "bad_crc", "target": "kms", "count": 1})
    body = encrypt(session, b"x").json()
    assert int(body["ciphertextCrc32c"]) != crc32c(
        base64.b64decode(body["ciphertext"]))
    ctl("fault", {"mode": "drop", "target": "kms", "count": 1})
    try:
        requests.post(kms_url(KEY, "encrypt"), json={})
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("drop fault answered")
    ctl("fault", {"mode": "slow", "target": "kms", "count": 1,
                  "delay": 0.5})
    t = time.time()
    assert encrypt(session, b"x").status_code == 200
    assert time.time() - t >= 0.5
    ctl("fault", {"mode": "500", "target": "token", "count": 1})
    try:
        sa_creds().refresh(gtr.Request())
    except exceptions.RefreshError:
        pass
    else:
        raise AssertionError("token fault ignored")
    ctl("fault", {"mode": "off"})


def main():
    PROC.stdin.close()
    PROC.wait(timeout=10)
    shutil.rmtree(TMP, ignore_errors=True)
    passed = sum(1 for _, e in RESULTS if e is None)
    failed = len(RESULTS) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
