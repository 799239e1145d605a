#!/usr/bin/python3
"""azure_emu.py - a request-verifying Azure emulator for kmsfs tests.

One process, two listeners on 127.0.0.1 with ephemeral ports:

HTTPS (--cert/--key), the "cloud":
  POST /{tenant}/oauth2/v2.0/token       Microsoft identity platform v2,
                                         client_credentials with
                                         client_secret or client_assertion
  GET  /{tenant}/v2.0/.well-known/openid-configuration   (for MSAL)
  GET  /common/discovery/instance        (MSAL instance discovery)
  GET  /keys/{name}[/{version}]          Key Vault: public JWK (or 403)
  POST /keys/{name}/{version}/{op}       op = encrypt|decrypt|wrapkey|unwrapkey
HTTP (IMDS and App Service managed identity are plain HTTP):
  GET  /metadata/identity/oauth2/token   IMDS (Metadata: true)
  GET  /msi/token                        App Service (X-IDENTITY-HEADER)
Both listeners, for the tests:
  GET  /_emu/stats    request counters
  POST /_emu/fault    {"target": "token|imds|kv|any", "mode":
                       "status|slow|drop", "status": 500, "delay": 2.5,
                       "count": 1}   (count -1: until reset)
  POST /_emu/config   {"token_lifetime": s, "key_get": "allow|forbid",
                       "deny": [client ids], "keys": ["name/version"]}
  POST /_emu/reset    clear faults and counters

Prints the HTTPS port, then the HTTP port, one per line, and serves until
killed (or, with --watch-stdin, until stdin reaches EOF so a crashed test
leaves no orphan).

Everything a real service would check is checked: tenant, client id,
secret or assertion, scope/resource, grant type, content types, the
api-version, the bearer token (HS256-signed by this process, so forged
or tampered tokens fail), its expiry, audience and tenant, base64url
without padding, the algorithm, plaintext size.  Errors use the services'
JSON shapes (AADSTS for the identity platform, {"error":{"code",
"message"}} for Key Vault).  Message texts are modelled on the real ones
but not byte-exact.  Secrets and tokens are never printed.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit, unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

API_VERSIONS = {"7.0", "7.1", "7.2", "7.3", "7.4", "7.4-preview.1", "7.5",
                "7.6", "2025-07-01"}
ALGS = {"RSA-OAEP-256": hashes.SHA256, "RSA-OAEP": hashes.SHA1,
        "RSA1_5": None}
KV_OPS = {"encrypt", "decrypt", "wrapkey", "unwrapkey"}
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_strict(text):
    """Decode base64url without padding; None if anything else."""
    if not isinstance(text, str) or not text:
        return None
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789-_")
    if any(c not in alphabet for c in text) or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        return None
    return raw if b64url(raw) == text else None


class State:
    """Everything the handlers share; one lock guards it."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.tenant = args.tenant
        self.suffix = args.vault_suffix
        self.apps = dict(a.split(":", 1) for a in args.app)
        self.federated = dict(a.split(":", 1) for a in args.federated)
        self.mi_system = args.mi_system
        self.mi_ids = set(args.mi_client_id)
        self.identity_header = args.identity_header
        self.token_lifetime = args.token_lifetime
        self.key_get = "allow"
        self.deny = set()
        self.keys = {}  # name -> [(version, private key)], newest last
        self.signing_key = secrets.token_bytes(32)
        self.faults = []
        self.stats = {}
        for spec in args.vault_key:
            self.add_key(spec)

    def add_key(self, spec):
        name, version = spec.split("/", 1)
        versions = self.keys.setdefault(name, [])
        if any(v == version for v, _ in versions):
            return
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        versions.append((version, key))

    def find_key(self, name, version):
        with self.lock:
            versions = self.keys.get(name, [])
            if not versions:
                return None, None
            if not version:
                return versions[-1]
            for v, k in versions:
                if v == version:
                    return v, k
        return None, None

    def count(self, what):
        with self.lock:
            self.stats[what] = self.stats.get(what, 0) + 1

    def take_fault(self, target):
        with self.lock:
            for f in self.faults:
                if f["target"] not in (target, "any") or f["count"] == 0:
                    continue
                if f["count"] > 0:
                    f["count"] -= 1
                return dict(f)
        return None

    # -- tokens: compact JWS, HS256 with a per-process key --------------
    def issue(self, appid, resource, idtyp="app"):
        now = int(time.time())
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/"
                  % self.tenant, "tid": self.tenant, "appid": appid,
                  "oid": str(uuid.uuid5(uuid.NAMESPACE_URL, appid)),
                  "idtyp": idtyp, "iat": now, "nbf": now,
                  "exp": now + self.token_lifetime,
                  "uti": secrets.token_urlsafe(12)}
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        sig = hmac.new(self.signing_key, ("%s.%s" % (head, body)).encode(),
                       hashlib.sha256).digest()
        return "%s.%s.%s" % (head, body, b64url(sig)), self.token_lifetime

    def verify(self, token):
        """Claims of a token we issued, or (None, reason)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, "AKV10000: Request is missing a Bearer or PoP token."
        mac = hmac.new(self.signing_key, ("%s.%s" % tuple(parts[:2]))
                       .encode(), hashlib.sha256).digest()
        sig = b64url_strict(parts[2])
        if sig is None or not hmac.compare_digest(mac, sig):
            return None, "AKV10032: Invalid issuer or signature."
        claims = json.loads(b64url_strict(parts[1]))
        now = time.time()
        if claims["exp"] <= now:
            return None, "AKV10022: Token expired."
        if claims["nbf"] > now + 300:
            return None, "AKV10022: Token not yet valid."
        if claims["aud"].rstrip("/") != "https://" + self.suffix:
            return None, "AKV10022: Invalid audience. Expected https://%s" \
                % self.suffix
        if claims["tid"] != self.tenant:
            return None, "AKV10032: Invalid issuer. Expected tenant %s" \
                % self.tenant
        return claims, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure-emu/1"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("azure-emu: %s\n" % (fmt % args))

    # -- plumbing --------------------------------------------------------
    def send(self, status, obj=None, headers=None):
        body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if obj is not None:
            self.send_header("Content-Type",
                             "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def base(self):
        return "https://%s" % (self.headers.get("Host") or "127.0.0.1")

    def fault(self, target):
        """Apply an injected fault; True if the request is answered."""
        f = self.server.state.take_fault(target)
        if not f:
            return False
        self.server.state.count("fault_" + target)
        if f["mode"] == "slow":
            time.sleep(f.get("delay", 5))
            return False
        if f["mode"] == "drop":
            self.close_connection = True
            self.connection.close()
            return True
        status = int(f.get("status", 500))
        if target in ("token", "imds"):
            self.send(status, {"error": "temporarily_unavailable",
                               "error_description": "AADSTS50196: injected"
                               " fault %d" % status},
                      {"Retry-After": "1"} if status == 429 else None)
        else:
            self.send(status, kv_error_for(status),
                      {"Retry-After": "1"} if status == 429 else None)
        return True

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def route(self, method):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        body = self.read_body()
        try:
            self.dispatch(method, parts, body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def dispatch(self, method, parts, body):
        tls = self.server.tls
        if parts[:1] == ["_emu"]:
            return control(self, method, parts[1:], body)
        if not tls:
            if parts == ["metadata", "identity", "oauth2", "token"]:
                return imds(self, method)
            if parts == ["msi", "token"]:
                return app_service(self, method)
        elif parts[:1] == ["keys"]:
            return key_vault(self, method, parts[1:], body)
        elif parts[1:] == ["oauth2", "v2.0", "token"]:
            return token_endpoint(self, method, parts[0], body)
        elif parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return openid_config(self, parts[0])
        elif parts == ["common", "discovery", "instance"]:
            return instance_discovery(self)
        self.send(404, {"error": {"code": "NotFound",
                                  "message": "no such endpoint"}})

    def q(self, name):
        v = self.query.get(name)
        return v[0] if v else None


# -- identity platform ----------------------------------------------------
def aad_error(h, status, error, code, text):
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    h.send(status, {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\n"
        "Correlation ID: %s\r\nTimestamp: %s" % (code, text, trace, corr,
                                                 now),
        "error_codes": [code], "timestamp": now, "trace_id": trace,
        "correlation_id": corr,
        "error_uri": "%s/error?code=%d" % (h.base(), code)})


def token_endpoint(h, method, tenant, body):
    st = h.server.state
    st.count("token")
    if h.fault("token"):
        return
    if method != "POST":
        return aad_error(h, 405, "invalid_request", 900561,
                         "The endpoint only accepts POST requests.")
    ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        return aad_error(h, 400, "invalid_request", 900144,
                         "The request body must contain the following "
                         "parameter: 'grant_type'.")
    form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                         keep_blank_values=True).items()}
    if tenant != st.tenant:
        return aad_error(h, 400, "invalid_request", 90002,
                         "Tenant '%s' not found." % tenant)
    if form.get("grant_type") != "client_credentials":
        return aad_error(h, 400, "unsupported_grant_type", 70003,
                         "The app requested an unsupported grant type.")
    cid = form.get("client_id", "")
    if cid not in st.apps and cid not in st.federated:
        return aad_error(h, 400, "unauthorized_client", 700016,
                         "Application with identifier '%s' was not found "
                         "in the directory." % cid)
    scopes = set(form.get("scope", "").split())
    want = "https://%s/.default" % st.suffix
    if want not in scopes or scopes - RESERVED_SCOPES - {want}:
        return aad_error(h, 400, "invalid_scope", 70011,
                         "The provided value for the input parameter "
                         "'scope' is not valid.")
    r = check_client_auth(h, st, cid, form)
    if r:
        return
    st.count("token_ok")
    tok, life = st.issue(cid, "https://" + st.suffix)
    h.send(200, {"token_type": "Bearer", "expires_in": life,
                 "ext_expires_in": life, "access_token": tok})


def check_client_auth(h, st, cid, form):
    """Answer and return True when the client fails to authenticate."""
    secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    if secret is None and assertion is None:
        aad_error(h, 400, "invalid_client", 7000216,
                  "'client_assertion', 'client_secret' or 'request' is "
                  "required for the 'client_credentials' grant type.")
        return True
    if secret is not None:
        good = st.apps.get(cid)
        if good is None or not hmac.compare_digest(secret.encode(),
                                                   good.encode()):
            aad_error(h, 401, "invalid_client", 7000215,
                      "Invalid client secret provided. Ensure the secret "
                      "being sent in the request is the client secret "
                      "value, not the client secret ID, for a secret "
                      "added to app '%s'." % cid)
            return True
        return False
    good = st.federated.get(cid)
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        aad_error(h, 400, "invalid_request", 50027,
                  "Invalid client_assertion_type.")
        return True
    if good is None or not hmac.compare_digest(assertion.encode(),
                                               good.encode()):
        aad_error(h, 401, "invalid_client", 700211,
                  "No matching federated identity record found for "
                  "presented assertion.")
        return True
    return False


def openid_config(h, tenant):
    st = h.server.state
    st.count("openid")
    if tenant != st.tenant and tenant not in ("common", "organizations"):
        return aad_error(h, 400, "invalid_tenant", 90002,
                         "Tenant '%s' not found." % tenant)
    b = "%s/%s" % (h.base(), tenant)
    h.send(200, {
        "token_endpoint": b + "/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": b + "/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token",
                                     "id_token token"],
        "scopes_supported": ["openid", "profile", "email",
                             "offline_access"],
        "issuer": b + "/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": h.base() + "/oidc/userinfo",
        "authorization_endpoint": b + "/oauth2/v2.0/authorize",
        "device_authorization_endpoint": b + "/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": b + "/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf",
                             "tid"],
        "tenant_region_scope": None,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net"})


def instance_discovery(h):
    host = (h.headers.get("Host") or "127.0.0.1")
    h.send(200, {
        "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/"
        "openid-configuration" % (h.base(), h.server.state.tenant),
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host,
                      "aliases": [host]}]})


# -- managed identity -----------------------------------------------------
def mi_identity(h, st):
    """The managed identity a request names, or None (answered)."""
    cid = h.q("client_id")
    if h.q("object_id") or h.q("mi_res_id") or h.q("msi_res_id"):
        h.send(400, {"error": "invalid_request",
                     "error_description": "Identity not found"})
        return None
    if cid is None:
        if not st.mi_system:
            h.send(400, {"error": "invalid_request",
                         "error_description": "Identity not found"})
            return None
        return "system-assigned-" + st.tenant
    if cid not in st.mi_ids:
        h.send(400, {"error": "invalid_request",
                     "error_description": "Identity not found"})
        return None
    return cid


def mi_resource(h, st):
    res = h.q("resource")
    if not res or res.rstrip("/") != "https://" + st.suffix:
        h.send(400, {"error": "invalid_resource",
                     "error_description": "AADSTS500011: The resource "
                     "principal named %s was not found in the tenant."
                     % res})
        return None
    return res


def imds(h, method):
    st = h.server.state
    st.count("imds")
    if h.fault("imds"):
        return
    if method != "GET":
        return h.send(405, {"error": "invalid_request",
                            "error_description": "method not allowed"})
    if h.headers.get("Metadata") != "true":
        return h.send(400, {"error": "invalid_request",
                            "error_description": "Required metadata header"
                            " not specified"})
    if h.headers.get("X-Forwarded-For"):
        return h.send(400, {"error": "invalid_request",
                            "error_description": "request via a proxy"})
    if h.q("api-version") != "2018-02-01":
        return h.send(400, {"error": "invalid_request",
                            "error_description": "Invalid API version"})
    res = mi_resource(h, st)
    if res is None:
        return
    ident = mi_identity(h, st)
    if ident is None:
        return
    st.count("imds_ok")
    tok, life = st.issue(ident, res.rstrip("/"), "app")
    now = int(time.time())
    h.send(200, {"access_token": tok, "client_id": ident,
                 "expires_in": str(life), "expires_on": str(now + life),
                 "ext_expires_in": str(life), "not_before": str(now),
                 "resource": res, "token_type": "Bearer"})


def app_service(h, method):
    st = h.server.state
    st.count("appservice")
    if h.fault("imds"):
        return
    hdr = h.headers.get("X-IDENTITY-HEADER")
    if not st.identity_header or hdr is None or not hmac.compare_digest(
            hdr.encode(), st.identity_header.encode()):
        return h.send(401, {"statusCode": 401,
                            "message": "X-IDENTITY-HEADER missing or wrong"})
    if method != "GET" or h.q("api-version") != "2019-08-01":
        return h.send(400, {"statusCode": 400,
                            "message": "Invalid API version or method"})
    res = mi_resource(h, st)
    if res is None:
        return
    ident = mi_identity(h, st)
    if ident is None:
        return
    st.count("appservice_ok")
    tok, life = st.issue(ident, res.rstrip("/"), "app")
    h.send(200, {"access_token": tok, "expires_on": str(int(time.time())
                                                        + life),
                 "resource": res, "token_type": "Bearer",
                 "client_id": ident})


# -- Key Vault ------------------------------------------------------------
def kv_error_for(status):
    code, msg = {
        401: ("Unauthorized", "AKV10000: Request is missing a Bearer or "
              "PoP token."),
        403: ("Forbidden", "Caller is not authorized to perform action on "
              "resource.\r\nIf role assignments, deny assignments or role "
              "definitions were changed recently, please observe "
              "propagation time."),
        429: ("Throttled", "Request was not processed because too many "
              "requests were received. Reason: VaultRequestTypeLimitReached"),
        500: ("InternalServerError", "An unexpected error occurred."),
        502: ("BadGateway", "Bad gateway."),
        503: ("ServiceUnavailable", "The service is unavailable."),
    }.get(status, ("UnknownError", "Injected status %d." % status))
    err = {"code": code, "message": msg}
    if status == 403:
        err["innererror"] = {"code": "ForbiddenByRbac"}
    return {"error": err}


def kv_send(h, status, code, message, headers=None):
    h.send(status, {"error": {"code": code, "message": message}}, headers)


def kv_auth(h, st):
    """Claims of a valid bearer token, or None (answered)."""
    challenge = ('Bearer authorization="%s/%s", resource="https://%s"'
                 % (h.base(), st.tenant, st.suffix))
    auth = h.headers.get("Authorization") or ""
    if not auth.startswith("Bearer ") or not auth[7:].strip():
        st.count("kv_challenge")
        kv_send(h, 401, "Unauthorized", "AKV10000: Request is missing a "
                "Bearer or PoP token.", {"WWW-Authenticate": challenge})
        return None
    claims, why = st.verify(auth[7:].strip())
    if claims is None:
        st.count("kv_bad_token")
        kv_send(h, 401, "Unauthorized", why,
                {"WWW-Authenticate": challenge})
        return None
    return claims


def key_vault(h, method, parts, body):
    st = h.server.state
    st.count("kv")
    if h.fault("kv"):
        return
    if h.q("api-version") not in API_VERSIONS:
        return kv_send(h, 400, "BadParameter", "The 'api-version' query "
                       "parameter is missing or not supported.")
    claims = kv_auth(h, st)
    if claims is None:
        return
    if claims["appid"] in st.deny:
        return h.send(403, kv_error_for(403))
    if method == "GET" and len(parts) in (1, 2):
        return kv_get_key(h, st, parts)
    if method == "POST" and len(parts) == 3 and parts[2] in KV_OPS:
        return kv_operation(h, st, parts, body)
    kv_send(h, 405 if len(parts) == 3 else 400, "BadParameter",
            "Unsupported operation.")


def kv_not_found(h, name, version):
    kv_send(h, 404, "KeyNotFound", "A key with (name/id) %s/%s was not "
            "found in this key vault. If you recently deleted this key you "
            "may be able to recover it using the correct recovery command. "
            "For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125182"
            % (name, version))


def kv_get_key(h, st, parts):
    st.count("kv_get")
    if st.key_get != "allow":
        return h.send(403, kv_error_for(403))
    name, version = parts[0], (parts[1] if len(parts) > 1 else "")
    version, key = st.find_key(name, version)
    if key is None:
        return kv_not_found(h, name, parts[1] if len(parts) > 1 else "")
    pub = key.public_key().public_numbers()
    n = pub.n.to_bytes(256, "big")
    e = pub.e.to_bytes(3, "big")
    h.send(200, {"key": {"kid": "%s/keys/%s/%s" % (h.base(), name, version),
                         "kty": "RSA", "key_ops": ["encrypt", "decrypt",
                                                   "wrapKey", "unwrapKey"],
                         "n": b64url(n), "e": b64url(e)},
                 "attributes": {"enabled": True, "created": 1700000000,
                                "updated": 1700000000,
                                "recoveryLevel": "Recoverable+Purgeable",
                                "recoverableDays": 90}})


def kv_operation(h, st, parts, body):
    name, version, op = parts
    st.count("kv_" + op)
    ctype = (h.headers.get("Content-Type") or "").split(";")[0].strip()
    if ctype != "application/json":
        return kv_send(h, 400, "BadParameter", "Content-Type must be "
                       "application/json.")
    try:
        req = json.loads(body)
        alg, value = req["alg"], req["value"]
    except (ValueError, KeyError, TypeError):
        return kv_send(h, 400, "BadParameter", "The request body must be "
                       "a JSON object with 'alg' and 'value'.")
    if alg not in ALGS:
        return kv_send(h, 400, "BadParameter", "Invalid algorithm '%s'."
                       % alg)
    data = b64url_strict(value)
    if data is None:
        return kv_send(h, 400, "BadParameter", "Property 'value' must be "
                       "base64url without padding.")
    version, key = st.find_key(name, version)
    if key is None:
        return kv_not_found(h, name, parts[1])
    out = rsa_op(key, op, alg, data)
    if out is None:
        return kv_send(h, 400, "BadParameter", "The parameter is "
                       "incorrect (%s with %s failed)." % (op, alg))
    st.count("kv_ok")
    h.send(200, {"kid": "%s/keys/%s/%s" % (h.base(), name, version),
                 "value": b64url(out)})


def rsa_op(key, op, alg, data):
    h = ALGS[alg]
    pad = padding.PKCS1v15() if h is None else padding.OAEP(
        mgf=padding.MGF1(algorithm=h()), algorithm=h(), label=None)
    try:
        if op in ("encrypt", "wrapkey"):
            return key.public_key().encrypt(data, pad)
        if len(data) != 256:
            return None
        return key.decrypt(data, pad)
    except ValueError:
        return None


# -- control --------------------------------------------------------------
def control(h, method, parts, body):
    st = h.server.state
    if method == "GET" and parts == ["stats"]:
        with st.lock:
            return h.send(200, dict(st.stats))
    if method != "POST":
        return h.send(405, {"error": "POST only"})
    try:
        req = json.loads(body) if body else {}
    except ValueError:
        return h.send(400, {"error": "bad json"})
    if parts == ["reset"]:
        with st.lock:
            st.faults, st.stats = [], {}
            st.key_get, st.deny = "allow", set()
        return h.send(200, {})
    if parts == ["fault"]:
        f = {"target": req.get("target", "any"),
             "mode": req.get("mode", "status"),
             "status": int(req.get("status", 500)),
             "delay": float(req.get("delay", 5)),
             "count": int(req.get("count", 1))}
        with st.lock:
            st.faults.append(f)
        return h.send(200, f)
    if parts == ["config"]:
        return configure(h, st, req)
    h.send(404, {"error": "no such control"})


def configure(h, st, req):
    with st.lock:
        if "token_lifetime" in req:
            st.token_lifetime = int(req["token_lifetime"])
        if "key_get" in req:
            st.key_get = req["key_get"]
        if "deny" in req:
            st.deny = set(req["deny"])
    for spec in req.get("keys", []):
        with st.lock:
            st.add_key(spec)
    h.send(200, {})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, ctx, verbose):
        super().__init__(addr, Handler)
        self.state, self.ctx, self.verbose = state, ctx, verbose
        self.tls = ctx is not None

    def finish_request(self, request, client_address):
        # TLS per connection, in the handler thread: a client that never
        # completes the handshake cannot stall the accept loop.
        request.settimeout(30)
        if not self.tls:
            return super().finish_request(request, client_address)
        try:
            conn = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return None
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            conn.close()
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True, dest="tls_key")
    p.add_argument("--tenant", default="00000000-0000-0000-0000-0000000000aa")
    p.add_argument("--vault-suffix", default="vault.azure.net")
    p.add_argument("--app", action="append", default=[],
                   help="CLIENT_ID:SECRET of a registered application")
    p.add_argument("--federated", action="append", default=[],
                   help="CLIENT_ID:ASSERTION accepted for workload identity")
    p.add_argument("--mi-client-id", action="append", default=[],
                   help="a user-assigned managed identity")
    p.add_argument("--mi-system", action="store_true",
                   help="a system-assigned managed identity exists")
    p.add_argument("--identity-header", default="",
                   help="App Service IDENTITY_HEADER value")
    p.add_argument("--vault-key", action="append", default=[],
                   metavar="NAME/VERSION", help="an RSA-2048 vault key")
    p.add_argument("--token-lifetime", type=int, default=3599)
    p.add_argument("--watch-stdin", action="store_true")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    state = State(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.tls_key)
    https = Server(("127.0.0.1", 0), state, ctx, args.verbose)
    http = Server(("127.0.0.1", 0), state, None, args.verbose)
    for srv in (https, http):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdout.write("%d\n%d\n" % (https.server_address[1],
                                   http.server_address[1]))
    sys.stdout.flush()
    if args.watch_stdin:
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)
    threading.Event().wait()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except KeyboardInterrupt:
        pass
