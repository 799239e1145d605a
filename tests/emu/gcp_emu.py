#!/usr/bin/python3
"""gcp_emu.py - a request-verifying Google Cloud emulator for kmsfs tests.

One HTTP server on 127.0.0.1 (ephemeral port, printed as the first line of
stdout) that plays four Google services closely enough to test a client:

  POST /token                       OAuth2 token endpoint (JWT bearer grant,
                                    RFC 7523).  The assertion is verified
                                    with google.auth.jwt.decode against the
                                    throw-away service account's certificate.
  GET  /computeMetadata/v1/...      GCE metadata server (Metadata-Flavor).
  POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken
                                    IAM Credentials impersonation.
  POST /v1/{cryptoKey}:encrypt|:decrypt
                                    Cloud KMS REST v1, real AES-256-GCM per
                                    CryptoKey version, CRC32C checks.

Errors use Google's shapes: {"error":{"code","message","status"}} for the
APIs and {"error","error_description"} for the token endpoint.

At start it makes an RSA key and writes a service-account JSON whose
token_uri points at this server (--sa-out).  Test hooks under /_emu/:
  GET  /_emu/stats   request counters and what the last calls looked like
  POST /_emu/reset   zero the counters, clear faults
  POST /_emu/fault   {"mode": M, "target": T, "count": N, "delay": S}
        M: off|500|503|429|403|401|slow|bad_crc|unverified|no_flavor|
           drop (alias down: the connection closes without an answer)
        T: any|kms|token|metadata|iam (default any); N: times (-1 = always)
  POST /_emu/config  {"token_ttl": seconds}
  POST /_emu/mint    {"principal", "scopes", "ttl"} -> {"access_token"}
Run: gcp_emu.py --sa-out sa.json [--static-token T] [--key NAME]...
"""

import argparse
import base64
import datetime
import json
import os
import re
import secrets
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from google.auth import jwt as gjwt

PROJECT = "emu-project"
SA_DOMAIN = PROJECT + ".iam.gserviceaccount.com"
SA_EMAIL = "kmsfs-test@" + SA_DOMAIN
GCE_EMAIL = "gce-default@" + SA_DOMAIN
SCOPE_CP = "https://www.googleapis.com/auth/cloud-platform"
SCOPE_KMS = "https://www.googleapis.com/auth/cloudkms"
KMS_SCOPES = {SCOPE_CP, SCOPE_KMS}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MAX_BODY = 1 << 20
KEY_RE = re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+"
                    r"/cryptoKeys/[^/]+$")
SA_RE = re.compile(r"^[a-z][a-z0-9-]{4,29}@[a-z0-9-]+\.iam\.gserviceaccount"
                   r"\.com$")
CT_MAGIC = b"GEMU"

# --- CRC32C (Castagnoli, reflected 0x82F63B78) -------------------------------
_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def b64d(s):
    """proto3 JSON bytes: std or url alphabet, padding optional."""
    if not isinstance(s, str) or not re.fullmatch(r"[A-Za-z0-9+/_=-]*", s):
        raise ValueError("not base64")
    s = s.replace("-", "+").replace("_", "/").rstrip("=")
    if len(s) % 4 == 1:
        raise ValueError("bad base64 length")
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def b64e(b):
    return base64.b64encode(b).decode()


def rfc3339(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


class ApiError(Exception):
    def __init__(self, code, status, message):
        super().__init__(message)
        self.code, self.status, self.message = code, status, message


class OAuthError(Exception):
    def __init__(self, code, error, desc):
        super().__init__(desc)
        self.code, self.error, self.desc = code, error, desc


STATUS_OF = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
             403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
             503: "UNAVAILABLE"}


class State:
    """Everything the handlers share; one lock guards it all."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.token_ttl = args.token_ttl
        self.tokens = {}  # token -> dict(principal, scopes, exp)
        self.keys = {}    # cryptoKey name -> {version: aes key}
        self.primary = {}
        for spec in args.key:
            name, _, nver = spec.partition("#")
            n = int(nver or "1")
            self.keys[name] = {v: AESGCM.generate_key(256)
                               for v in range(1, n + 1)}
            self.primary[name] = n
        if args.static_token:
            self.tokens[args.static_token] = dict(
                principal="static-bearer@" + SA_DOMAIN,
                scopes=set(KMS_SCOPES), exp=float("inf"))
        self.fault = None
        self.reset_stats()

    def reset_stats(self):
        self.stats = dict(token=0, token_rejected=0, metadata_token=0,
                          metadata_info=0, iam=0, encrypt=0, decrypt=0,
                          kms_rejected=0, kms_principal=None, iam_last=None,
                          encrypt_fields=None, decrypt_fields=None,
                          token_scope=None, metadata_scopes=None)

    def bump(self, name):
        with self.lock:
            self.stats[name] += 1

    def note(self, name, value):
        with self.lock:
            self.stats[name] = value

    def mint(self, principal, scopes, ttl=None):
        ttl = self.token_ttl if ttl is None else ttl
        tok = "ya29.emu-" + secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[tok] = dict(principal=principal, scopes=set(scopes),
                                    exp=time.time() + ttl)
        return tok, ttl

    def take_fault(self, target):
        """The active fault for this request target, consuming one use."""
        with self.lock:
            f = self.fault
            if not f or f["target"] not in ("any", target):
                return None
            if f["count"] == 0:
                self.fault = None
                return None
            if f["count"] > 0:
                f["count"] -= 1
            return dict(f)


class SA:
    """The throw-away service account (RSA key, self-signed certificate)."""

    def __init__(self, token_uri):
        self.key = rsa.generate_private_key(public_exponent=65537,
                                            key_size=2048)
        self.kid = secrets.token_hex(20)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SA_EMAIL)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name)
                .issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3))
                .sign(self.key, hashes.SHA256()))
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        self.token_uri = token_uri

    def info(self, port):
        pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        base = "http://127.0.0.1:%d" % port
        return {
            "type": "service_account", "project_id": PROJECT,
            "private_key_id": self.kid, "private_key": pem,
            "client_email": SA_EMAIL, "client_id": "100000000000000000001",
            "auth_uri": base + "/o/oauth2/auth", "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": base + "/oauth2/v1/certs",
            "client_x509_cert_url": base + "/robot/v1/metadata/x509/"
            + urllib.parse.quote(SA_EMAIL),
            "universe_domain": "googleapis.com",
        }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcp-emu/1"
    st = None   # State
    sa = None   # SA

    def log_message(self, fmt, *args):
        if os.environ.get("GCP_EMU_VERBOSE"):
            sys.stderr.write("gcp_emu: " + fmt % args + "\n")

    # --- plumbing ----------------------------------------------------------
    def send_json(self, code, obj, extra=None,
                  ctype="application/json; charset=UTF-8"):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_api_error(self, e, extra=None):
        self.send_json(e.code, {"error": {"code": e.code,
                                          "message": e.message,
                                          "status": e.status}}, extra)

    def read_body(self):
        """The request body, read once (so keep-alive stays in sync)."""
        if getattr(self, "_body", None) is None:
            n = int(self.headers.get("Content-Length") or 0)
            if n > MAX_BODY:
                self.close_connection = True
                raise ApiError(413, "INVALID_ARGUMENT", "Request too large.")
            self._body = self.rfile.read(n) if n else b""
        return self._body

    def read_json(self):
        ctype = self.headers.get("Content-Type", "")
        if not ctype.split(";")[0].strip().lower() == "application/json":
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid Content-Type: expected application/json")
        try:
            obj = json.loads(self.read_body() or b"{}")
        except ValueError:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid JSON payload received.")
        if not isinstance(obj, dict):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid JSON payload received. Expected an "
                           "object.")
        return obj

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def apply_fault(self, target):
        """Act on an injected fault.  True when the request is answered."""
        f = self.st.take_fault(target)
        if not f:
            return None
        mode = f["mode"]
        if mode == "slow":
            time.sleep(f["delay"])
            return None
        if mode in ("drop", "down"):
            self.read_body()
            self.drop()
            return True
        if mode in ("500", "503", "429", "403", "401"):
            self.read_body()
            code = int(mode)
            if target == "token":
                self.send_json(code, {"error": "emulated_fault",
                                      "error_description": "injected"})
            else:
                self.send_api_error(ApiError(code, STATUS_OF[code],
                                             "injected fault"))
            return True
        return mode  # bad_crc, unverified, no_flavor: handled by the route

    def bearer(self, scopes_needed):
        """The caller's token record; raises 401/403 as Google would."""
        auth = self.headers.get("Authorization")
        if not auth:
            raise ApiError(401, "UNAUTHENTICATED",
                           "Request is missing required authentication "
                           "credential. Expected OAuth 2 access token, login "
                           "cookie or other valid authentication credential.")
        m = re.fullmatch(r"Bearer ([\x21-\x7e]+)", auth)
        with self.st.lock:
            rec = self.st.tokens.get(m.group(1)) if m else None
        if not rec or rec["exp"] < time.time():
            raise ApiError(401, "UNAUTHENTICATED",
                           "Request had invalid authentication credentials. "
                           "Expected OAuth 2 access token, login cookie or "
                           "other valid authentication credential.")
        if not rec["scopes"] & scopes_needed:
            raise ApiError(403, "PERMISSION_DENIED",
                           "Request had insufficient authentication scopes.")
        return rec

    # --- dispatch ----------------------------------------------------------
    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        try:
            if path == "/_emu/stats":
                with self.st.lock:
                    return self.send_json(200, self.st.stats)
            if path == "/" or path.startswith("/computeMetadata/"):
                return self.metadata()
            raise ApiError(404, "NOT_FOUND", "Not Found")
        except ApiError as e:
            self.send_api_error(e)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        self._body = None
        try:
            self.read_body()
            if path.startswith("/_emu/"):
                return self.control(path)
            if path == "/token":
                return self.token()
            m = re.fullmatch(r"/v1/projects/-/serviceAccounts/([^/:]+)"
                             r":generateAccessToken", path)
            if m:
                return self.iam(urllib.parse.unquote(m.group(1)))
            m = re.fullmatch(r"/v1/(projects/.+):(encrypt|decrypt)", path)
            if m:
                return self.kms(urllib.parse.unquote(m.group(1)),
                                m.group(2))
            self.read_body()
            raise ApiError(404, "NOT_FOUND", "Not Found")
        except ApiError as e:
            if e.status in ("UNAUTHENTICATED",):
                self.send_api_error(e, {"WWW-Authenticate": "Bearer realm="
                                        "\"https://accounts.google.com/\""})
            else:
                self.send_api_error(e)
        except OAuthError as e:
            self.send_json(e.code, {"error": e.error,
                                    "error_description": e.desc})

    # --- /_emu/ control ----------------------------------------------------
    def control(self, path):
        body = self.read_json() if self.read_body() else {}
        st = self.st
        if path == "/_emu/reset":
            with st.lock:
                st.reset_stats()
                st.fault = None
        elif path == "/_emu/fault":
            mode = body.get("mode", "off")
            with st.lock:
                st.fault = None if mode == "off" else dict(
                    mode=mode, target=body.get("target", "any"),
                    count=int(body.get("count", -1)),
                    delay=float(body.get("delay", 5)))
        elif path == "/_emu/config":
            with st.lock:
                st.token_ttl = int(body.get("token_ttl", st.token_ttl))
        elif path == "/_emu/mint":
            tok, ttl = st.mint(body.get("principal", SA_EMAIL),
                               body.get("scopes", [SCOPE_CP]),
                               int(body.get("ttl", st.token_ttl)))
            return self.send_json(200, {"access_token": tok,
                                        "expires_in": ttl})
        else:
            raise ApiError(404, "NOT_FOUND", "unknown control path")
        self.send_json(200, {"ok": True})

    # --- OAuth2 token endpoint ---------------------------------------------
    def token(self):
        if self.apply_fault("token"):
            return
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip()
        body = self.read_body().decode("ascii", "replace")
        if ctype.lower() != "application/x-www-form-urlencoded":
            raise OAuthError(400, "invalid_request",
                             "Invalid Content-Type for token request.")
        form = urllib.parse.parse_qs(body, keep_blank_values=True,
                                     strict_parsing=False)
        if form.get("grant_type") != [JWT_GRANT]:
            raise OAuthError(400, "unsupported_grant_type",
                             "Invalid grant_type: "
                             + ",".join(form.get("grant_type", [])))
        if len(form.get("assertion", [])) != 1:
            raise OAuthError(400, "invalid_request",
                             "Missing required parameter: assertion")
        claims = self.verify_assertion(form["assertion"][0])
        scopes = claims["scope"].split()
        self.st.bump("token")
        self.st.note("token_scope", claims["scope"])
        tok, ttl = self.st.mint(claims["iss"], scopes)
        self.send_json(200, {"access_token": tok, "expires_in": ttl,
                             "token_type": "Bearer"})

    def verify_assertion(self, assertion):
        try:
            hdr = gjwt.decode_header(assertion)
            if hdr.get("alg") != "RS256":
                raise ValueError("alg must be RS256")
            if hdr.get("typ", "JWT") != "JWT":
                raise ValueError("typ must be JWT")
            claims = gjwt.decode(assertion, certs={self.sa.kid:
                                                   self.sa.cert_pem},
                                 audience=self.sa.token_uri)
            if claims.get("iss") != SA_EMAIL:
                raise ValueError("unknown issuer")
            if not isinstance(claims.get("scope"), str) or \
                    not claims["scope"].split():
                raise OAuthError(400, "invalid_scope",
                                 "Invalid OAuth scope or ID token audience "
                                 "provided.")
            if not 0 < claims["exp"] - claims["iat"] <= 3600:
                raise ValueError("Token must be a short-lived token (60 "
                                 "minutes) and in a reasonable timeframe.")
            return claims
        except (ValueError, KeyError, TypeError) as e:
            self.st.bump("token_rejected")
            self.log_message("assertion rejected: %s", e)
            raise OAuthError(400, "invalid_grant",
                             "Invalid JWT Signature." if "signature" in
                             str(e) else "Invalid JWT: %s" % e)

    # --- metadata server ---------------------------------------------------
    def metadata(self):
        flav = {"Metadata-Flavor": "Google"}
        fault = self.apply_fault("metadata")
        if fault is True:
            return
        if fault == "no_flavor":
            flav = {}
        if self.headers.get("Metadata-Flavor") != "Google" or \
                self.headers.get("X-Forwarded-For"):
            return self.send_text(403, "Missing Metadata-Flavor:Google "
                                  "header.", flav)
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        path = url.path
        sa_pfx = "/computeMetadata/v1/instance/service-accounts/"
        if path == "/" or path == "/computeMetadata/v1/":
            return self.send_text(200, "computeMetadata/\n", flav)
        if path == "/computeMetadata/v1/project/project-id":
            return self.send_text(200, PROJECT, flav)
        if not path.startswith(sa_pfx):
            return self.send_text(404, "Not Found", flav)
        acct, _, rest = path[len(sa_pfx):].partition("/")
        if acct not in ("default", GCE_EMAIL):
            return self.send_text(404, "Not Found", flav)
        if rest == "" and q.get("recursive") == ["true"]:
            self.st.bump("metadata_info")
            return self.send_json(200, {"aliases": ["default"],
                                        "email": GCE_EMAIL,
                                        "scopes": [SCOPE_CP]}, flav,
                                  "application/json")
        if rest == "email":
            return self.send_text(200, GCE_EMAIL, flav)
        if rest == "token":
            scopes = q.get("scopes", [SCOPE_CP])[0].split(",")
            self.st.bump("metadata_token")
            self.st.note("metadata_scopes", scopes)
            tok, ttl = self.st.mint(GCE_EMAIL, scopes)
            return self.send_json(200, {"access_token": tok,
                                        "expires_in": ttl,
                                        "token_type": "Bearer"}, flav,
                                  "application/json")
        return self.send_text(404, "Not Found", flav)

    def send_text(self, code, text, extra):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/text")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    # --- IAM Credentials ---------------------------------------------------
    def iam(self, target):
        if self.apply_fault("iam"):
            return
        caller = self.bearer({SCOPE_CP, "https://www.googleapis.com/auth/iam"})
        req = self.read_json()
        unknown = set(req) - {"scope", "delegates", "lifetime"}
        if unknown:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid JSON payload received. Unknown name "
                           "\"%s\": Cannot find field." % sorted(unknown)[0])
        scope = req.get("scope")
        if not isinstance(scope, list) or not scope or \
                not all(isinstance(s, str) for s in scope):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Scope required.")
        delegates = req.get("delegates", [])
        emails = []
        for d in delegates if isinstance(delegates, list) else [None]:
            m = re.fullmatch(r"projects/-/serviceAccounts/(.+)", d or "")
            if not m or not SA_RE.match(m.group(1)):
                raise ApiError(400, "INVALID_ARGUMENT",
                               "Invalid form of delegates.")
            emails.append(m.group(1))
        lifetime = req.get("lifetime", "3600s")
        m = re.fullmatch(r"(\d+)(\.\d+)?s", str(lifetime))
        if not m or not 0 < int(m.group(1)) <= 3600:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "The lifetime must be between 1s and 3600s.")
        if not SA_RE.match(target):
            raise ApiError(404, "NOT_FOUND",
                           "Not found; Gaia id not found for email "
                           + target)
        for e in [target] + emails:
            if e.startswith("deny"):
                raise ApiError(403, "PERMISSION_DENIED",
                               "The caller does not have permission")
        self.st.bump("iam")
        self.st.note("iam_last", dict(caller=caller["principal"],
                                      target=target, delegates=emails,
                                      scope=scope, lifetime=lifetime))
        ttl = min(int(m.group(1)), self.st.token_ttl)
        tok, _ = self.st.mint(target, scope, ttl)
        self.send_json(200, {"accessToken": tok,
                             "expireTime": rfc3339(time.time() + ttl)})

    # --- Cloud KMS ---------------------------------------------------------
    def kms(self, name, op):
        fault = self.apply_fault("kms")
        if fault is True:
            return
        try:
            caller = self.bearer(KMS_SCOPES)
        except ApiError:
            self.st.bump("kms_rejected")
            raise
        req = self.read_json()
        ver = None
        m = re.fullmatch(r"(.+)/cryptoKeyVersions/([^/]+)", name)
        if m:
            if op == "decrypt":
                raise ApiError(400, "INVALID_ARGUMENT",
                               "Decrypt requests must name a CryptoKey, "
                               "not a CryptoKeyVersion: " + name)
            name, ver = m.group(1), m.group(2)
        if not KEY_RE.match(name):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Resource name [%s] does not match any known "
                           "type." % name)
        with self.st.lock:
            versions = self.st.keys.get(name)
            primary = self.st.primary.get(name)
        if versions is None or (ver is not None and
                                (not ver.isdigit() or
                                 int(ver) not in versions)):
            raise ApiError(404, "NOT_FOUND",
                           "%s not found." % (name if ver is None else
                                              name + "/cryptoKeyVersions/"
                                              + ver))
        self.st.note("kms_principal", caller["principal"])
        if op == "encrypt":
            return self.kms_encrypt(name, versions,
                                    int(ver) if ver else primary, req, fault)
        return self.kms_decrypt(name, versions, primary, req, fault)

    def fields(self, req, allowed, data_field):
        unknown = set(req) - allowed
        if unknown:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid JSON payload received. Unknown name "
                           "\"%s\": Cannot find field." % sorted(unknown)[0])
        try:
            data = b64d(req.get(data_field, ""))
            aad = b64d(req.get("additionalAuthenticatedData", ""))
        except (ValueError, TypeError):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid value at '%s' (TYPE_BYTES), Base64 "
                           "decoding failed" % data_field)
        if not data:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "%s is required." % data_field)
        return data, aad

    @staticmethod
    def check_crc(req, field, data, proto_field, proto_data):
        """None if absent, True if it matches; raises on mismatch."""
        if field not in req:
            return None
        try:
            v = int(req[field])
        except (ValueError, TypeError):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "Invalid value at '%s' (TYPE_INT64)" % field)
        if v != crc32c(data):
            raise ApiError(400, "INVALID_ARGUMENT",
                           "The checksum in field %s did not match the data "
                           "in field %s." % (proto_field, proto_data))
        return True

    def kms_encrypt(self, name, versions, ver, req, fault):
        pt, aad = self.fields(req, {"plaintext", "additionalAuthenticated"
                                    "Data", "plaintextCrc32c",
                                    "additionalAuthenticatedDataCrc32c"},
                              "plaintext")
        if len(pt) > 65536:
            raise ApiError(400, "INVALID_ARGUMENT",
                           "The plaintext must be no larger than 64KiB.")
        vpt = self.check_crc(req, "plaintextCrc32c", pt, "plaintext_crc32c",
                             "plaintext")
        vaad = self.check_crc(req, "additionalAuthenticatedDataCrc32c", aad,
                              "additional_authenticated_data_crc32c",
                              "additional_authenticated_data")
        self.st.bump("encrypt")
        self.st.note("encrypt_fields", sorted(req))
        nonce = os.urandom(12)
        hdr = CT_MAGIC + struct.pack(">I", ver)
        ct = hdr + nonce + AESGCM(versions[ver]).encrypt(
            nonce, pt, hdr + name.encode() + b"\0" + aad)
        crc = crc32c(ct)
        if fault == "bad_crc":
            crc ^= 1
        self.send_json(200, {
            "name": "%s/cryptoKeyVersions/%d" % (name, ver),
            "ciphertext": b64e(ct), "ciphertextCrc32c": str(crc),
            "verifiedPlaintextCrc32c": bool(vpt) and fault != "unverified",
            "verifiedAdditionalAuthenticatedDataCrc32c": bool(vaad),
            "protectionLevel": self.enum_level()})

    def kms_decrypt(self, name, versions, primary, req, fault):
        ct, aad = self.fields(req, {"ciphertext", "additionalAuthenticated"
                                    "Data", "ciphertextCrc32c",
                                    "additionalAuthenticatedDataCrc32c"},
                              "ciphertext")
        self.check_crc(req, "ciphertextCrc32c", ct, "ciphertext_crc32c",
                       "ciphertext")
        self.check_crc(req, "additionalAuthenticatedDataCrc32c", aad,
                       "additional_authenticated_data_crc32c",
                       "additional_authenticated_data")
        self.st.bump("decrypt")
        self.st.note("decrypt_fields", sorted(req))
        bad = ApiError(400, "INVALID_ARGUMENT",
                       "Decryption failed: the ciphertext is invalid.")
        if len(ct) < 8 + 12 + 16 or ct[:4] != CT_MAGIC:
            raise bad
        hdr = ct[:8]
        ver = struct.unpack(">I", ct[4:8])[0]
        if ver not in versions:
            raise bad
        try:
            pt = AESGCM(versions[ver]).decrypt(
                ct[8:20], ct[20:], hdr + name.encode() + b"\0" + aad)
        except Exception:
            raise bad
        crc = crc32c(pt)
        if fault == "bad_crc":
            crc ^= 1
        self.send_json(200, {"plaintext": b64e(pt),
                             "plaintextCrc32c": str(crc),
                             "usedPrimary": ver == primary,
                             "protectionLevel": self.enum_level()})

    def enum_level(self):
        # The Node REST fallback asks for $alt=json;enum-encoding=int.
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        alt = q.get("$alt", [""])[0]
        return 1 if "enum-encoding=int" in alt else "SOFTWARE"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout tests) is not an emulator error.
        if isinstance(sys.exc_info()[1], (BrokenPipeError,
                                          ConnectionResetError)):
            return
        super().handle_error(request, client_address)


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
    ap.add_argument("--sa-out", required=True,
                    help="write the service-account JSON here")
    ap.add_argument("--key", action="append", default=[],
                    help="CryptoKey name[#versions] (repeatable)")
    ap.add_argument("--static-token", help="an access token that never "
                    "expires (for BEARER_TOKEN tests)")
    ap.add_argument("--token-ttl", type=int, default=3600)
    ap.add_argument("--fault", help="initial fault MODE[:TARGET]")
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()
    if not args.key:
        args.key = ["projects/p/locations/global/keyRings/r/cryptoKeys/k#3",
                    "projects/p/locations/global/keyRings/r/cryptoKeys/k2"]
    for k in args.key:
        if not KEY_RE.match(k.partition("#")[0]):
            ap.error("bad key name " + k)

    srv = Server(("127.0.0.1", 0), Handler)
    port = srv.server_address[1]
    st = State(args)
    if args.fault:
        mode, _, target = args.fault.partition(":")
        st.fault = dict(mode=mode, target=target or "any", count=-1,
                        delay=5.0)
    sa = SA("http://127.0.0.1:%d/token" % port)
    Handler.st, Handler.sa = st, sa
    tmp = args.sa_out + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(sa.info(port), f, indent=2)
    os.rename(tmp, args.sa_out)
    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()
    # One write, then stdout is done with: the reader may close the pipe.
    os.write(1, b"%d\n" % port)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
