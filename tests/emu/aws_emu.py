#!/usr/bin/python3
"""aws_emu.py - a request-verifying AWS emulator (KMS, STS, IMDS, ECS).

One HTTP(S) server on 127.0.0.1 (ephemeral port, printed as the first
line of stdout) that plays four AWS services closely enough to test a
client byte for byte:

  POST /  X-Amz-Target: TrentService.Encrypt|Decrypt
        KMS over AWS JSON 1.1.  Every request's SigV4 signature is
        recomputed with botocore's SigV4Auth from the known credentials
        (service "kms").  Real AES-256-GCM per key; the ciphertext blob
        names its key, so Decrypt works without KeyId and a KeyId that
        names another key gives IncorrectKeyException.  Keys answer to
        their id, key ARN, alias name and alias ARN.
  POST /  Action=AssumeRole (SigV4, service "sts") and
          Action=AssumeRoleWithWebIdentity (unsigned)
        STS query protocol with XML replies; temporary credentials with
        an expiry (--cred-ttl), external ids and role trust checked.
  PUT  /latest/api/token, GET /latest/meta-data/iam/security-credentials/
        EC2 IMDSv2 (token required on every GET).
  GET  /v2/credentials/<id>
        ECS/EKS container credentials (Authorization header required).

Errors use AWS's shapes: KMS {"__type", "message"} plus x-amzn-ErrorType
(InvalidSignatureException, UnrecognizedClientException,
ExpiredTokenException, AccessDeniedException, ...), STS <ErrorResponse>.

Test hooks under /_emu/ (no signature needed):
  GET  /_emu/stats   request counters and what the last calls looked like
  POST /_emu/reset   zero the counters, clear faults
  POST /_emu/fault   {"mode": M, "target": T, "count": N, "delay": S}
        M: off|down|slow|500|throttle|denied|expired
        T: any|kms|sts|imds|ecs (default any); N: times (-1 = always)
  POST /_emu/config  {"cred_ttl": seconds, "max_skew": seconds}
Run: aws_emu.py [--tls-cert C --tls-key K] [--fault MODE[:TARGET]]
     [--cred-ttl S] [--exit-on-stdin-eof] [--verbose]
"""

import argparse
import base64
import datetime
import hmac
import json
import os
import re
import secrets
import socket
import ssl
import string
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as xml_escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ACCOUNT = "111122223333"
USERS = {  # long-term keys: access key id -> secret
    "AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AKIDPLUSSECRET": "ab+cd/ef+gh/ij+kl/mn+op/qr+st/uv+wx/yz+0",
}
KEYS = [  # (key id, alias)
    ("1234abcd-12ab-34cd-56ef-1234567890ab", "alias/kmsfs-test"),
    ("0987dcba-09fe-87dc-65ba-ab0987654321", "alias/kmsfs-other"),
]
ROLE_A = "arn:aws:iam::%s:role/kmsfs-a" % ACCOUNT
ROLE_B = "arn:aws:iam::%s:role/kmsfs-b" % ACCOUNT
ROLE_WEB = "arn:aws:iam::%s:role/kmsfs-web" % ACCOUNT
ROLES = {  # arn -> external id required (or None), who may assume it
    ROLE_A: {"external_id": "kmsfs-ext-1", "trust": None},
    ROLE_B: {"external_id": None, "trust": {ROLE_A}},
    ROLE_WEB: {"external_id": None, "trust": {"web-identity"}},
}
WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJrbXNmcy10ZXN0In0.c2lnbmF0dXJl"
EC2_ROLE = "kmsfs-ec2-role"
ECS_TOKEN = "ecs-authorization-token-123"
BLOB_MAGIC = b"AEMU\x01"
MAX_BODY = 1 << 20
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([A-Za-z0-9]+)/(\d{8})/([a-z0-9-]+)/"
    r"([a-z0-9]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?"
    r"Signature=([0-9a-f]{64})$")
SESSION_RE = re.compile(r"^[\w+=,.@-]{2,64}$")
KMS_NS = "com.amazonaws.kms#"
CORAL = "http://internal.amazon.com/coral/com.amazon.coral.service/"
FAULT_MODES = ("off", "down", "slow", "500", "throttle", "denied",
               "expired")
FAULT_TARGETS = ("any", "kms", "sts", "imds", "ecs")


def b64e(b):
    return base64.b64encode(b).decode()


def iso(t):
    return datetime.datetime.fromtimestamp(
        int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rand_id(prefix, n=16):
    alpha = string.ascii_uppercase + string.digits
    return prefix + "".join(secrets.choice(alpha) for _ in range(n))


class AwsError(Exception):
    """An error reply: HTTP status, AWS code, message."""

    def __init__(self, status, code, message, namespaced=False):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.namespaced = namespaced


class Dropped(Exception):
    """The connection was closed without a reply (fault "down")."""


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.cred_ttl = args.cred_ttl
        self.max_skew = 900
        self.sessions = {}  # session token -> dict
        self.imds_tokens = {}  # token -> expiry
        self.keys = {}  # key id -> dict(aes, alias)
        for kid, alias in KEYS:
            self.keys[kid] = {"aes": AESGCM.generate_key(256),
                              "alias": alias}
        self.fault = None
        self.reset_stats()

    def reset_stats(self):
        self.stats = {"count": {}, "last": {}}

    def bump(self, name):
        with self.lock:
            c = self.stats["count"]
            c[name] = c.get(name, 0) + 1

    def note(self, name, value):
        with self.lock:
            self.stats["last"][name] = value

    def issue(self, principal):
        """New temporary credentials for principal."""
        akid = rand_id("ASIA")
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = base64.b64encode(secrets.token_bytes(420)).decode()
        exp = int(time.time()) + self.cred_ttl
        with self.lock:
            self.sessions[token] = {"akid": akid, "secret": secret,
                                    "expires": exp, "principal": principal}
        return {"AccessKeyId": akid, "SecretAccessKey": secret,
                "Token": token, "Expiration": iso(exp)}

    def lookup(self, akid, token):
        """(secret, principal) for a signer; raises AwsError."""
        if not token:
            if akid in USERS:
                return USERS[akid], "arn:aws:iam::%s:user/%s" % (
                    ACCOUNT, akid)
            raise AwsError(400, "UnrecognizedClientException",
                           "The security token included in the request "
                           "is invalid.")
        with self.lock:
            s = self.sessions.get(token)
        if not s or s["akid"] != akid:
            raise AwsError(400, "UnrecognizedClientException",
                           "The security token included in the request "
                           "is invalid.")
        if time.time() >= s["expires"]:
            raise AwsError(400, "ExpiredTokenException",
                           "The security token included in the request "
                           "is expired")
        return s["secret"], s["principal"]

    def take_fault(self, target):
        with self.lock:
            f = self.fault
            if not f or f["mode"] == "off":
                return None
            if f["target"] not in ("any", target):
                return None
            if f["count"] > 0:
                f["count"] -= 1
                if f["count"] == 0:
                    self.fault = None
            return dict(f)

    def resolve_key(self, key_id, region):
        """Key id for any KeyId form, or None."""
        arn_pfx = "arn:aws:kms:%s:%s:" % (region, ACCOUNT)
        if key_id.startswith("arn:"):
            if not key_id.startswith(arn_pfx):
                return None
            key_id = key_id[len(arn_pfx):]
            if key_id.startswith("key/"):
                key_id = key_id[4:]
        for kid, k in self.keys.items():
            if key_id in (kid, k["alias"]):
                return kid
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    st = None
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("aws_emu: " + fmt % args + "\n")

    # --- plumbing ---------------------------------------------------------
    def send(self, code, body, ctype, extra=None):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_kms_error(self, e):
        code = KMS_NS + e.code if e.namespaced else e.code
        self.send(e.status, json.dumps({"__type": code,
                                        "message": e.message}),
                  "application/x-amz-json-1.1",
                  {"x-amzn-ErrorType": e.code + ":" + CORAL})

    def send_sts_error(self, e):
        body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/'
                '2011-06-15/"><Error><Type>%s</Type><Code>%s</Code>'
                '<Message>%s</Message></Error><RequestId>%s</RequestId>'
                '</ErrorResponse>' % (
                    "Receiver" if e.status >= 500 else "Sender", e.code,
                    xml_escape(e.message), uuid.uuid4()))
        self.send(e.status, body, "text/xml")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n < 0 or n > MAX_BODY:
            raise AwsError(413, "RequestEntityTooLarge", "too large")
        return self.rfile.read(n) if n else b""

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise Dropped()

    def apply_fault(self, target):
        """Raise/act for an injected fault; returns when none applies."""
        f = self.st.take_fault(target)
        if not f:
            return
        self.st.bump("fault." + f["mode"])
        mode = f["mode"]
        if mode == "slow":
            time.sleep(f["delay"])
        elif mode == "down":
            self.drop()
        elif mode == "500":
            raise AwsError(500, "KMSInternalException" if target == "kms"
                           else "InternalFailure", "injected fault",
                           namespaced=True)
        elif mode == "throttle":
            raise AwsError(400, "ThrottlingException" if target == "kms"
                           else "Throttling", "Rate exceeded")
        elif mode == "expired":
            raise AwsError(400, "ExpiredTokenException" if target == "kms"
                           else "ExpiredToken", "The security token "
                           "included in the request is expired")
        elif mode == "denied":
            raise AwsError(400 if target == "kms" else 403,
                           "AccessDeniedException" if target == "kms"
                           else "AccessDenied",
                           "User is not authorized to perform this "
                           "operation (injected fault)")

    # --- SigV4 -------------------------------------------------------------
    def verify_sigv4(self, body, service):
        """Recompute the signature with botocore; returns the principal."""
        auth = self.headers.get("Authorization")
        if not auth:
            raise AwsError(400, "MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        m = AUTH_RE.match(auth)
        if not m:
            raise AwsError(400, "IncompleteSignatureException",
                           "Authorization header requires 'Credential', "
                           "'SignedHeaders' and 'Signature'.")
        akid, date, region, svc, signed, sig = m.groups()
        amz_date = self.headers.get("X-Amz-Date", "")
        names = signed.split(";")
        try:
            t = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
            t = t.replace(tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            t = None
        if (svc != service or t is None or amz_date[:8] != date
                or "host" not in names or "x-amz-date" not in names
                or names != sorted(names)):
            raise AwsError(400, "InvalidSignatureException",
                           "Credential should be scoped to a valid "
                           "service, date and region, and sign host and "
                           "x-amz-date.")
        if abs(time.time() - t) > self.st.max_skew:
            raise AwsError(400, "InvalidSignatureException",
                           "Signature expired: %s is now earlier or later "
                           "than the allowed skew." % amz_date)
        token = self.headers.get("X-Amz-Security-Token")
        secret, principal = self.st.lookup(akid, token)
        req = AWSRequest(method=self.command,
                         url="http://%s%s" % (self.headers["Host"],
                                              self.path),
                         data=body)
        for n in names:
            vals = self.headers.get_all(n)
            if not vals:
                raise AwsError(400, "InvalidSignatureException",
                               "Signed header %s is missing." % n)
            for v in vals:
                req.headers.add_header(n, v)
        req.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret, token), svc, region)
        cr = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, cr), req)
        self.st.note("sigv4", {"service": svc, "region": region,
                               "signed_headers": signed, "akid": akid,
                               "principal": principal})
        if not hmac.compare_digest(want, sig):
            raise AwsError(400, "InvalidSignatureException",
                           "The request signature we calculated does not "
                           "match the signature you provided. Check your "
                           "AWS Secret Access Key and signing method.")
        return principal, region

    # --- routing -----------------------------------------------------------
    def do_GET(self):
        self.route("GET")

    def do_PUT(self):
        self.route("PUT")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path.startswith("/_emu/"):
                return self.control(method, path)
            if path.startswith("/latest/"):
                return self.imds(method, path)
            if path.startswith("/v2/credentials/"):
                return self.ecs(method)
            if method == "POST" and path == "/":
                if "X-Amz-Target" in self.headers:
                    return self.kms()
                return self.sts()
            self.send(404, "not found\n", "text/plain")
        except (Dropped, BrokenPipeError, ConnectionResetError):
            pass  # dropped on purpose, or the client gave up (slow)

    # --- /_emu/ control ----------------------------------------------------
    def control(self, method, path):
        st = self.st
        if method == "GET" and path == "/_emu/stats":
            with st.lock:
                body = json.dumps(st.stats)
            return self.send(200, body, "application/json")
        try:
            req = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send(400, "bad json\n", "text/plain")
        if path == "/_emu/reset":
            with st.lock:
                st.fault = None
                st.reset_stats()
        elif path == "/_emu/fault":
            mode = str(req.get("mode", "off"))
            target = str(req.get("target", "any"))
            if mode not in FAULT_MODES or target not in FAULT_TARGETS:
                return self.send(400, "bad fault\n", "text/plain")
            with st.lock:
                st.fault = {"mode": mode, "target": target,
                            "count": int(req.get("count", -1)),
                            "delay": float(req.get("delay", 5.0))}
        elif path == "/_emu/config":
            with st.lock:
                st.cred_ttl = int(req.get("cred_ttl", st.cred_ttl))
                st.max_skew = int(req.get("max_skew", st.max_skew))
        else:
            return self.send(404, "no such hook\n", "text/plain")
        self.send(200, "{}", "application/json")

    # --- KMS ---------------------------------------------------------------
    def kms(self):
        body = self.read_body()
        try:
            self.apply_fault("kms")
            principal, region = self.verify_sigv4(body, "kms")
            op = self.kms_op()
            req = self.kms_json(body)
            self.st.bump("kms." + op)
            self.st.note("kms." + op, {"members": sorted(req),
                                       "members_str": ",".join(sorted(req)),
                                       "principal": principal})
            if op == "Encrypt":
                out = self.kms_encrypt(req, region)
            else:
                out = self.kms_decrypt(req, region)
            self.send(200, json.dumps(out), "application/x-amz-json-1.1")
        except AwsError as e:
            self.st.bump("kms.error." + e.code)
            self.send_kms_error(e)

    def kms_op(self):
        if self.headers.get("Content-Type") != "application/x-amz-json-1.1":
            raise AwsError(400, "SerializationException",
                           "Content-Type must be "
                           "application/x-amz-json-1.1")
        target = self.headers.get("X-Amz-Target", "")
        op = target[len("TrentService."):]
        if not target.startswith("TrentService.") or op not in (
                "Encrypt", "Decrypt"):
            raise AwsError(400, "UnknownOperationException",
                           "Unknown operation %s" % target)
        return op

    @staticmethod
    def kms_json(body):
        try:
            req = json.loads(body)
        except ValueError:
            req = None
        if not isinstance(req, dict):
            raise AwsError(400, "SerializationException",
                           "Start of structure or map found where not "
                           "expected.")
        return req

    @staticmethod
    def blob_field(req, name, required=True):
        v = req.get(name)
        if v is None and not required:
            return None
        if not isinstance(v, str):
            raise AwsError(400, "ValidationException",
                           "1 validation error detected: Value at '%s' "
                           "failed to satisfy constraint: Member must not "
                           "be null" % name)
        try:
            return base64.b64decode(v, validate=True)
        except ValueError:
            raise AwsError(400, "SerializationException",
                           "Value for %s is not valid base64" % name)

    @staticmethod
    def check_members(req, allowed):
        extra = set(req) - set(allowed)
        if extra:
            raise AwsError(400, "ValidationException",
                           "Unexpected members: %s" % ", ".join(
                               sorted(extra)))
        ctx = req.get("EncryptionContext", {})
        if not isinstance(ctx, dict) or not all(
                isinstance(v, str) for v in ctx.values()):
            raise AwsError(400, "SerializationException",
                           "EncryptionContext must map strings to strings")
        alg = req.get("EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
        if alg != "SYMMETRIC_DEFAULT":
            raise AwsError(400, "InvalidKeyUsageException",
                           "This key only supports SYMMETRIC_DEFAULT",
                           namespaced=True)
        return json.dumps(ctx, sort_keys=True).encode()

    def key_arn(self, kid, region):
        return "arn:aws:kms:%s:%s:key/%s" % (region, ACCOUNT, kid)

    def find_key(self, key_id, region):
        if not isinstance(key_id, str) or not key_id:
            raise AwsError(400, "ValidationException",
                           "KeyId must be a non-empty string")
        kid = self.st.resolve_key(key_id, region)
        if not kid:
            raise AwsError(400, "NotFoundException",
                           "Key '%s' does not exist" % key_id,
                           namespaced=True)
        return kid

    def kms_encrypt(self, req, region):
        ctx = self.check_members(req, ("KeyId", "Plaintext",
                                       "EncryptionContext", "GrantTokens",
                                       "EncryptionAlgorithm"))
        kid = self.find_key(req.get("KeyId"), region)
        pt = self.blob_field(req, "Plaintext")
        if not 1 <= len(pt) <= 4096:
            raise AwsError(400, "ValidationException",
                           "Plaintext must be 1 to 4096 bytes")
        head = BLOB_MAGIC + bytes([len(kid)]) + kid.encode()
        nonce = secrets.token_bytes(12)
        ct = AESGCM(self.st.keys[kid]["aes"]).encrypt(nonce, pt, head + ctx)
        return {"CiphertextBlob": b64e(head + nonce + ct),
                "KeyId": self.key_arn(kid, region),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def kms_decrypt(self, req, region):
        ctx = self.check_members(req, ("KeyId", "CiphertextBlob",
                                       "EncryptionContext", "GrantTokens",
                                       "EncryptionAlgorithm"))
        blob = self.blob_field(req, "CiphertextBlob")
        bad = AwsError(400, "InvalidCiphertextException", "",
                       namespaced=True)
        n = len(BLOB_MAGIC)
        if len(blob) < n + 1 or blob[:n] != BLOB_MAGIC:
            raise bad
        kl = blob[n]
        head = blob[:n + 1 + kl]
        kid = blob[n + 1:n + 1 + kl].decode("ascii", "replace")
        if kid not in self.st.keys:
            raise bad
        if req.get("KeyId") is not None and \
                self.find_key(req.get("KeyId"), region) != kid:
            raise AwsError(400, "IncorrectKeyException",
                           "The key ID in the request does not identify "
                           "a CMK that can perform this operation.",
                           namespaced=True)
        rest = blob[len(head):]
        try:
            pt = AESGCM(self.st.keys[kid]["aes"]).decrypt(
                rest[:12], rest[12:], head + ctx)
        except Exception:
            raise bad
        return {"KeyId": self.key_arn(kid, region), "Plaintext": b64e(pt),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    # --- STS ---------------------------------------------------------------
    def sts(self):
        body = self.read_body()
        try:
            self.apply_fault("sts")
            ctype = self.headers.get("Content-Type", "")
            if not ctype.startswith("application/x-www-form-urlencoded"):
                raise AwsError(400, "InvalidAction",
                               "Could not find operation")
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                         keep_blank_values=True,
                                         strict_parsing=bool(body))
            form = {k: v[0] for k, v in form.items() if len(v) == 1}
            action = form.get("Action")
            if form.get("Version") != "2011-06-15":
                raise AwsError(400, "InvalidParameterValue",
                               "Version must be 2011-06-15")
            if action == "AssumeRole":
                out = self.sts_assume_role(body, form)
            elif action == "AssumeRoleWithWebIdentity":
                out = self.sts_web_identity(form)
            else:
                raise AwsError(400, "InvalidAction",
                               "Could not find operation %s" % action)
            self.st.bump("sts." + action)
            self.send(200, out, "text/xml")
        except ValueError:
            self.send_sts_error(AwsError(400, "MalformedInput",
                                         "bad form body"))
        except AwsError as e:
            self.st.bump("sts.error." + e.code)
            self.send_sts_error(e)

    def sts_verify(self, body):
        try:
            return self.verify_sigv4(body, "sts")[0]
        except AwsError as e:
            code = {"InvalidSignatureException": "SignatureDoesNotMatch",
                    "UnrecognizedClientException": "InvalidClientTokenId",
                    "ExpiredTokenException": "ExpiredToken",
                    }.get(e.code, e.code)
            status = 400 if code == "ExpiredToken" else 403
            raise AwsError(status, code, e.message)

    @staticmethod
    def session_name(form):
        name = form.get("RoleSessionName", "")
        if not SESSION_RE.match(name):
            raise AwsError(400, "ValidationError",
                           "RoleSessionName must match [\\w+=,.@-]{2,64}")
        return name

    def sts_assume_role(self, body, form):
        principal = self.sts_verify(body)
        arn = form.get("RoleArn", "")
        name = self.session_name(form)
        role = ROLES.get(arn)
        ext = form.get("ExternalId")
        self.st.note("sts.AssumeRole", {"RoleArn": arn, "caller": principal,
                                        "ExternalId": ext,
                                        "RoleSessionName": name})
        deny = AwsError(403, "AccessDenied",
                        "User: %s is not authorized to perform: "
                        "sts:AssumeRole on resource: %s" % (principal, arn))
        if not role or role["external_id"] != ext:
            raise deny
        if role["trust"] is not None and principal not in role["trust"]:
            raise deny
        return self.sts_reply("AssumeRole", arn, name)

    def sts_web_identity(self, form):
        if "Authorization" in self.headers:
            raise AwsError(400, "InvalidAction",
                           "AssumeRoleWithWebIdentity must not be signed")
        arn = form.get("RoleArn", "")
        name = self.session_name(form)
        tok = form.get("WebIdentityToken", "")
        self.st.note("sts.AssumeRoleWithWebIdentity",
                     {"RoleArn": arn, "RoleSessionName": name})
        if not hmac.compare_digest(tok.encode(), WEB_TOKEN.encode()):
            raise AwsError(400, "InvalidIdentityToken",
                           "The web identity token that was passed could "
                           "not be validated by AWS.")
        role = ROLES.get(arn)
        if not role or "web-identity" not in (role["trust"] or ()):
            raise AwsError(403, "AccessDenied", "Not authorized to "
                           "perform sts:AssumeRoleWithWebIdentity")
        return self.sts_reply("AssumeRoleWithWebIdentity", arn, name)

    def sts_reply(self, action, arn, name):
        c = self.st.issue(arn)
        return ('<{a}Response xmlns="https://sts.amazonaws.com/doc/'
                '2011-06-15/"><{a}Result><Credentials>'
                '<AccessKeyId>{k}</AccessKeyId>'
                '<SecretAccessKey>{s}</SecretAccessKey>'
                '<SessionToken>{t}</SessionToken>'
                '<Expiration>{e}</Expiration></Credentials>'
                '<AssumedRoleUser><AssumedRoleId>AROA:{n}</AssumedRoleId>'
                '<Arn>{arn}/{n}</Arn></AssumedRoleUser></{a}Result>'
                '<ResponseMetadata><RequestId>{r}</RequestId>'
                '</ResponseMetadata></{a}Response>').format(
                    a=action, k=c["AccessKeyId"],
                    s=xml_escape(c["SecretAccessKey"]),
                    t=xml_escape(c["Token"]), e=c["Expiration"],
                    n=xml_escape(name), arn=xml_escape(arn),
                    r=uuid.uuid4())

    # --- IMDSv2 and ECS ----------------------------------------------------
    def plain_error(self, code, text):
        self.send(code, text + "\n", "text/plain")

    def imds(self, method, path):
        self.read_body()
        try:
            self.apply_fault("imds")
        except AwsError as e:
            return self.plain_error(e.status, e.code)
        if path == "/latest/api/token":
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if method != "PUT":
                return self.plain_error(405, "Method Not Allowed")
            if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.plain_error(400, "Bad Request")
            tok = b64e(secrets.token_bytes(40))
            with self.st.lock:
                self.st.imds_tokens[tok] = time.time() + int(ttl)
            self.st.bump("imds.token")
            return self.send(200, tok, "text/plain")
        tok = self.headers.get("X-aws-ec2-metadata-token", "")
        with self.st.lock:
            ok = self.st.imds_tokens.get(tok, 0) > time.time()
        if method != "GET":
            return self.plain_error(405, "Method Not Allowed")
        if not ok:
            return self.plain_error(401, "Unauthorized")
        base = "/latest/meta-data/iam/security-credentials/"
        if path == base:
            self.st.bump("imds.role")
            return self.send(200, EC2_ROLE, "text/plain")
        if path == base + EC2_ROLE:
            c = self.st.issue("arn:aws:sts::%s:assumed-role/%s/i-0123" % (
                ACCOUNT, EC2_ROLE))
            c.update(Code="Success", Type="AWS-HMAC",
                     LastUpdated=iso(time.time()))
            self.st.bump("imds.creds")
            return self.send(200, json.dumps(c), "text/plain")
        self.plain_error(404, "Not Found")

    def ecs(self, method):
        self.read_body()
        try:
            self.apply_fault("ecs")
        except AwsError as e:
            return self.plain_error(e.status, e.code)
        auth = self.headers.get("Authorization", "")
        if method != "GET":
            return self.plain_error(405, "Method Not Allowed")
        if not hmac.compare_digest(auth.encode(), ECS_TOKEN.encode()):
            return self.send(401, json.dumps({
                "code": "AccessDenied", "message": "bad authorization"}),
                "application/json")
        c = self.st.issue("arn:aws:sts::%s:assumed-role/kmsfs-ecs/task" %
                          ACCOUNT)
        c["RoleArn"] = "arn:aws:iam::%s:role/kmsfs-ecs" % ACCOUNT
        self.st.bump("ecs.creds")
        self.send(200, json.dumps(c), "application/json")


def watch_stdin():
    """Exit when the parent closes our stdin (it died or is done)."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except OSError:
        pass
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tls-cert", help="serve HTTPS with this certificate")
    ap.add_argument("--tls-key", help="private key for --tls-cert")
    ap.add_argument("--cred-ttl", type=int, default=3600,
                    help="lifetime of issued temporary credentials (s)")
    ap.add_argument("--fault", help="initial fault MODE[:TARGET]")
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    st = State(args)
    if args.fault:
        mode, _, target = args.fault.partition(":")
        if mode not in FAULT_MODES or (target or "any") not in FAULT_TARGETS:
            ap.error("bad --fault " + args.fault)
        st.fault = {"mode": mode, "target": target or "any", "count": -1,
                    "delay": 5.0}
    Handler.st, Handler.verbose = st, args.verbose
    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
