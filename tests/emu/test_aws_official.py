#!/usr/bin/python3
"""test_aws_official.py - prove aws_emu.py against the official AWS client.

Drives boto3/botocore (Debian python3-boto3) against a fresh aws_emu.py:
KMS Encrypt/Decrypt round trips in every KeyId form, the error shapes
boto3 must understand (wrong secret, unknown key id, expired token,
IncorrectKey, InvalidCiphertext), STS AssumeRole (with an external id and
a two-role chain) and AssumeRoleWithWebIdentity, credential resolution
from IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT) and the ECS container
endpoint, and every injected fault.  Prints one line per check and a
final "N passed, N failed"; exits non-zero on any failure.
Run: /usr/bin/python3 tests/emu/test_aws_official.py
"""

import json
import os
import subprocess
import sys
import time
import traceback
import urllib.request

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, \
    EndpointConnectionError, ReadTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
AKID, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
OTHER_KEY = "0987dcba-09fe-87dc-65ba-ab0987654321"
REGION = "us-east-1"
ACCOUNT = "111122223333"
ROLE_A = "arn:aws:iam::%s:role/kmsfs-a" % ACCOUNT
ROLE_B = "arn:aws:iam::%s:role/kmsfs-b" % ACCOUNT
ROLE_WEB = "arn:aws:iam::%s:role/kmsfs-web" % ACCOUNT
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrbXNmcy10ZXN0In0.c2lnbmF0dXJl"
ECS_TOKEN = "ecs-authorization-token-123"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                  connect_timeout=2, read_timeout=2)


class Emu:
    def __init__(self):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "aws_emu.py"),
             "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.port = int(self.proc.stdout.readline())
        self.url = "http://127.0.0.1:%d" % self.port

    def hook(self, name, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_emu/" + name, data=data,
                                     method="GET" if data is None
                                     else "POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class Runner:
    def __init__(self):
        self.passed = self.failed = 0

    def run(self, name, fn):
        try:
            fn()
            self.passed += 1
            print("PASS", name)
        except Exception:
            self.failed += 1
            print("FAIL", name)
            traceback.print_exc(file=sys.stdout)


def expect_code(fn, code):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, "expected %s, got %s" % (code, got)
        return e
    raise AssertionError("expected %s, call succeeded" % code)


def kms(emu, akid=AKID, secret=SECRET, token=None, config=NO_RETRY):
    return boto3.client("kms", region_name=REGION, endpoint_url=emu.url,
                        aws_access_key_id=akid, aws_secret_access_key=secret,
                        aws_session_token=token, config=config)


def sts(emu, akid=AKID, secret=SECRET, token=None):
    return boto3.client("sts", region_name=REGION, endpoint_url=emu.url,
                        aws_access_key_id=akid, aws_secret_access_key=secret,
                        aws_session_token=token, config=NO_RETRY)


def roundtrip(client, key_id, context=None):
    dk = os.urandom(32)
    extra = {"EncryptionContext": context} if context else {}
    ct = client.encrypt(KeyId=key_id, Plaintext=dk, **extra)
    assert ct["KeyId"] == "arn:aws:kms:%s:%s:key/%s" % (REGION, ACCOUNT,
                                                         KEY_ID)
    blob = ct["CiphertextBlob"]
    assert client.decrypt(KeyId=key_id, CiphertextBlob=blob,
                          **extra)["Plaintext"] == dk
    assert client.decrypt(CiphertextBlob=blob, **extra)["Plaintext"] == dk
    return blob


def with_env(env, fn):
    """Run fn with only the given AWS_* variables set."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update({"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                       "AWS_CONFIG_FILE": "/nonexistent"})
    os.environ.update(env)
    try:
        return fn()
    finally:
        for k in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[k]
        os.environ.update(saved)


def resolved_kms(emu, env):
    """(method, kms client) from botocore's own credential chain."""
    def go():
        s = botocore.session.get_session()
        c = s.get_credentials()
        assert c is not None, "botocore found no credentials"
        f = c.get_frozen_credentials()
        return c.method, kms(emu, f.access_key, f.secret_key, f.token)
    return with_env(env, go)


def tests(emu):
    t = {}

    def kms_forms():
        c = kms(emu)
        for kid in (KEY_ID, "alias/kmsfs-test",
                    "arn:aws:kms:%s:%s:key/%s" % (REGION, ACCOUNT, KEY_ID),
                    "arn:aws:kms:%s:%s:alias/kmsfs-test" % (REGION,
                                                             ACCOUNT)):
            roundtrip(c, kid)
        roundtrip(c, KEY_ID, {"purpose": "kmsfs", "a": "b"})
        last = emu.hook("stats")["last"]["kms.Encrypt"]["members"]
        assert last == ["EncryptionContext", "KeyId", "Plaintext"], last
    t["kms encrypt/decrypt round trip (id, alias, ARNs, context)"] = \
        kms_forms

    def kms_errors():
        c = kms(emu)
        blob = roundtrip(c, KEY_ID)
        expect_code(lambda: c.decrypt(KeyId=OTHER_KEY, CiphertextBlob=blob),
                    "IncorrectKeyException")
        bad = bytearray(blob)
        bad[-1] ^= 1
        expect_code(lambda: c.decrypt(CiphertextBlob=bytes(bad)),
                    "InvalidCiphertextException")
        expect_code(lambda: c.encrypt(KeyId="alias/nope", Plaintext=b"x"),
                    "NotFoundException")
        expect_code(lambda: c.decrypt(CiphertextBlob=blob,
                                      EncryptionContext={"x": "y"}),
                    "InvalidCiphertextException")
    t["kms IncorrectKey, InvalidCiphertext, NotFound"] = kms_errors

    def bad_auth():
        expect_code(lambda: kms(emu, secret=SECRET[:-1] + "X").encrypt(
            KeyId=KEY_ID, Plaintext=b"k"), "InvalidSignatureException")
        expect_code(lambda: kms(emu, akid="AKIDUNKNOWN").encrypt(
            KeyId=KEY_ID, Plaintext=b"k"), "UnrecognizedClientException")
        expect_code(lambda: kms(emu, token="forged").encrypt(
            KeyId=KEY_ID, Plaintext=b"k"), "UnrecognizedClientException")
        expect_code(lambda: sts(emu, secret="wrong").assume_role(
            RoleArn=ROLE_A, RoleSessionName="s1", ExternalId="kmsfs-ext-1"),
            "SignatureDoesNotMatch")
    t["wrong secret / unknown key id / forged token rejected"] = bad_auth

    def assume_chain():
        s = sts(emu)
        expect_code(lambda: s.assume_role(RoleArn=ROLE_A,
                                          RoleSessionName="s1"),
                    "AccessDenied")
        expect_code(lambda: s.assume_role(RoleArn=ROLE_B,
                                          RoleSessionName="s1"),
                    "AccessDenied")
        a = s.assume_role(RoleArn=ROLE_A, RoleSessionName="s1",
                          ExternalId="kmsfs-ext-1")["Credentials"]
        sa = sts(emu, a["AccessKeyId"], a["SecretAccessKey"],
                 a["SessionToken"])
        b = sa.assume_role(RoleArn=ROLE_B,
                           RoleSessionName="s2")["Credentials"]
        assert b["Expiration"].timestamp() > time.time() + 600
        roundtrip(kms(emu, b["AccessKeyId"], b["SecretAccessKey"],
                      b["SessionToken"]), KEY_ID)
    t["sts assume_role with external id, two-role chain"] = assume_chain

    def web_identity():
        s = boto3.client("sts", region_name=REGION, endpoint_url=emu.url,
                         config=Config(signature_version=botocore.UNSIGNED,
                                       retries={"total_max_attempts": 1}))
        expect_code(lambda: s.assume_role_with_web_identity(
            RoleArn=ROLE_WEB, RoleSessionName="web",
            WebIdentityToken="bogus"), "InvalidIdentityToken")
        c = s.assume_role_with_web_identity(
            RoleArn=ROLE_WEB, RoleSessionName="web",
            WebIdentityToken=WEB_TOKEN)["Credentials"]
        roundtrip(kms(emu, c["AccessKeyId"], c["SecretAccessKey"],
                      c["SessionToken"]), KEY_ID)
    t["sts assume_role_with_web_identity (unsigned)"] = web_identity

    def imds():
        method, c = resolved_kms(emu, {
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": emu.url + "/"})
        assert method == "iam-role", method
        roundtrip(c, KEY_ID)
        n = emu.hook("stats")["count"]
        assert n.get("imds.token") and n.get("imds.creds"), n
    t["botocore resolves IMDSv2 credentials"] = imds

    def ecs():
        method, c = resolved_kms(emu, {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": emu.url +
            "/v2/credentials/task-1",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": ECS_TOKEN})
        assert method == "container-role", method
        roundtrip(c, KEY_ID)
    t["botocore resolves ECS container credentials"] = ecs

    def expired():
        emu.hook("config", {"cred_ttl": 1})
        try:
            a = sts(emu).assume_role(RoleArn=ROLE_A, RoleSessionName="s1",
                                     ExternalId="kmsfs-ext-1")
        finally:
            emu.hook("config", {"cred_ttl": 3600})
        a = a["Credentials"]
        time.sleep(1.5)
        expect_code(lambda: kms(emu, a["AccessKeyId"], a["SecretAccessKey"],
                                a["SessionToken"]).encrypt(
            KeyId=KEY_ID, Plaintext=b"k"), "ExpiredTokenException")
    t["expired session token -> ExpiredTokenException"] = expired

    def faults():
        c = kms(emu)
        enc = lambda: c.encrypt(KeyId=KEY_ID, Plaintext=b"k")  # noqa: E731
        for mode, code in (("throttle", "ThrottlingException"),
                           ("500", "KMSInternalException"),
                           ("denied", "AccessDeniedException")):
            emu.hook("fault", {"mode": mode, "target": "kms", "count": 1})
            e = expect_code(enc, code)
            if mode == "500":
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] \
                    == 500
        emu.hook("fault", {"mode": "down", "target": "kms", "count": 1})
        try:
            enc()
            raise AssertionError("down: call succeeded")
        except (ConnectionClosedError, EndpointConnectionError):
            pass
        emu.hook("fault", {"mode": "slow", "target": "kms", "count": 1,
                           "delay": 3})
        t0 = time.time()
        try:
            enc()
            raise AssertionError("slow: call succeeded")
        except ReadTimeoutError:
            assert time.time() - t0 < 3
        emu.hook("fault", {"mode": "throttle", "target": "sts",
                           "count": 1})
        expect_code(lambda: sts(emu).assume_role(
            RoleArn=ROLE_A, RoleSessionName="s1", ExternalId="kmsfs-ext-1"),
            "Throttling")
        enc()
    t["injected faults map to the real error shapes"] = faults
    return t


def main():
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
    os.environ["AWS_CONFIG_FILE"] = "/nonexistent"
    emu = Emu()
    r = Runner()
    try:
        for name, fn in tests(emu).items():
            r.run(name, fn)
    finally:
        emu.stop()
    print("%d passed, %d failed" % (r.passed, r.failed))
    return 1 if r.failed or not r.passed else 0


if __name__ == "__main__":
    sys.exit(main())
