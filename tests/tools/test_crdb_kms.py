#!/usr/bin/python3
"""test_crdb_kms.py - crdb.py restore-check on KMS chains, against the
three emulators (tests/emu), without kmsfs.

A replayed collection (crdb_replay.py) is encrypted by crdb.py
encrypt-collection with ENCRYPTION-INFO = {AWS, GCP, Azure} (wrapped by
the emulators' Encrypt) and ENCRYPTION-INFO-2 = {a file:// local key};
then restore-check must restore it with each KMS alone (the emulator's
Decrypt is called), refuse URIs that CockroachDB refuses (two files'
keys together, an unknown key), and print no credential.  The map keys
of ENCRYPTION-INFO must be those of CockroachDB's vector encinfo-kms3.bin.
Prints one line per check and "N passed, N failed"; exit 1 on failure.
Needs python3-boto3, -google-auth, -azure and openssl; exit 77 without.
Run: /usr/bin/python3 tests/tools/test_crdb_kms.py   (about 5 s of CPU)
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
EMU = os.path.join(HERE, "..", "emu")
sys.path.insert(0, HERE)
VECTORS = os.environ.get("KMSFS_VECTORS", os.path.join(
    HERE, "..", "..", "..", "shared", "vectors", "crdb"))
PY = "/usr/bin/python3"

AZ_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
AZ_APP = "11111111-2222-3333-4444-555555555555"
AZ_SECRET = "az~Sec+/&=ret.%s" % os.urandom(4).hex()
AWS_AKID = "AKIDEXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"   # aws_emu's user
AWS_KEY = "arn:aws:kms:us-east-1:111122223333:key/" \
          "1234abcd-12ab-34cd-56ef-1234567890ab"
AWS_KEY2 = "arn:aws:kms:us-east-1:111122223333:key/" \
           "0987dcba-09fe-87dc-65ba-ab0987654321"
GCP_KEY = "projects/p/locations/global/keyRings/r/cryptoKeys/k"
AZ_KEY = "my-key"


def q(s):
    return urllib.parse.quote(s, safe="")


class Emus:
    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []
        tls = os.path.join(tmp, "tls")
        os.mkdir(tls)
        with open(os.path.join(tls, "ext.cnf"), "w") as f:
            f.write("[srv]\nsubjectAltName=IP:127.0.0.1\n"
                    "extendedKeyUsage=serverAuth\n")
        for args in (
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 "ca-key.pem", "-out", "ca.pem", "-days", "2", "-subj",
                 "/CN=crdb-kms-test-ca"],
                ["req", "-newkey", "rsa:2048", "-nodes", "-keyout",
                 "srv-key.pem", "-out", "srv.csr", "-subj", "/CN=127.0.0.1"],
                ["x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey",
                 "ca-key.pem", "-CAcreateserial", "-out", "srv.pem", "-days",
                 "2", "-extfile", "ext.cnf", "-extensions", "srv"]):
            subprocess.run(["openssl"] + args, cwd=tls, check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        self.ca = os.path.join(tls, "ca.pem")
        self.aws = self.start("aws_emu.py", "--exit-on-stdin-eof")[0]
        sa = os.path.join(tmp, "sa.json")
        self.gcp = self.start("gcp_emu.py", "--sa-out", sa,
                              "--exit-on-stdin-eof")[0]
        self.az, self.az_http = self.start(
            "azure_emu.py", "--cert", os.path.join(tls, "srv.pem"),
            "--key", os.path.join(tls, "srv-key.pem"), "--tenant", AZ_TENANT,
            "--app", "%s:%s" % (AZ_APP, AZ_SECRET),
            "--vault-key", AZ_KEY + "/v1", "--watch-stdin", ports=2)
        with open(sa, "rb") as f:
            self.gcp_creds = base64.b64encode(f.read()).decode()

    def start(self, script, *args, ports=1):
        p = subprocess.Popen([PY, os.path.join(EMU, script)] + list(args),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.procs.append(p)
        return [int(p.stdout.readline()) for _ in range(ports)]

    def stop(self):
        for p in self.procs:
            p.stdin.close()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def stats(self, which):
        url = {"aws": "http://127.0.0.1:%d" % self.aws,
               "gcp": "http://127.0.0.1:%d" % self.gcp,
               "az": "http://127.0.0.1:%d" % self.az_http}[which]
        with urllib.request.urlopen(url + "/_emu/stats", timeout=10) as r:
            s = json.load(r)
        return s["count"] if which == "aws" else s

    def env(self):
        return {"KMSFS_GCP_KMS_ENDPOINT": "http://127.0.0.1:%d" % self.gcp,
                "KMSFS_AZURE_VAULT_URL": "https://127.0.0.1:%d" % self.az,
                "AZURE_AUTHORITY_HOST": "https://127.0.0.1:%d" % self.az,
                "KMSFS_CA_BUNDLE": self.ca}

    def uris(self):
        aws_q = ("AUTH=specified&AWS_ACCESS_KEY_ID=%s&AWS_SECRET_ACCESS_KEY=%s"
                 "&REGION=us-east-1&AWS_ENDPOINT=http://127.0.0.1:%d"
                 % (AWS_AKID, q(AWS_SECRET), self.aws))
        return {
            "aws": "aws:///%s?%s" % (AWS_KEY, aws_q),
            "aws2": "aws:///%s?%s" % (AWS_KEY2, aws_q),
            "gcp": "gs:///%s?AUTH=specified&CREDENTIALS=%s"
                   % (GCP_KEY, q(self.gcp_creds)),
            "az": "azure-kms:///%s/v1?AZURE_VAULT_NAME=vault&AZURE_CLIENT_ID"
                  "=%s&AZURE_CLIENT_SECRET=%s&AZURE_TENANT_ID=%s"
                  % (AZ_KEY, AZ_APP, q(AZ_SECRET), AZ_TENANT),
        }


def main():
    import importlib.util
    if not all(importlib.util.find_spec(m) for m in
               ("boto3", "google.auth", "azure.identity")):
        print("SKIP: python3-boto3, -google-auth or -azure missing")
        return 77
    if shutil.which("openssl") is None:
        print("SKIP: no openssl")
        return 77
    import crdb_kms
    import crdb_replay
    import crdb_restore as cr
    import encinfo_keys

    tmp = tempfile.mkdtemp(prefix="crdb-kms-test.")
    emus = None
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                           "" if ok else ": " + detail))

    try:
        emus = Emus(tmp)
        os.environ.update(emus.env())
        u = emus.uris()
        local = os.path.join(tmp, "local.key")
        with open(local, "wb") as f:
            f.write(os.urandom(32))
        u["local"] = "file://" + local

        def kms_file(name, *keys):
            p = os.path.join(tmp, "kms." + name)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("# test\n" + "".join(u[k] + "\n" for k in keys))
            return p

        plain = os.path.join(tmp, "plain")
        store = os.path.join(tmp, "store")
        m = crdb_replay.replay(plain, seed=3, fsync=False)
        with open(os.path.join(tmp, "m.json"), "w") as f:
            json.dump(m, f)
        r = subprocess.run(
            [PY, os.path.join(HERE, "crdb.py"), "encrypt-collection", plain,
             store, "--kms-file", kms_file("3", "aws", "gcp", "az"),
             "--kms-file", kms_file("l", "local")],
            capture_output=True, text=True)
        check("encrypt-collection with AWS+GCP+Azure, then a local key",
              r.returncode == 0, r.stdout + r.stderr)
        full = os.path.join(store, m["latest"].strip("/"))
        keys = sorted(k.hex() for k, _ in encinfo_keys.entries(
            os.path.join(full, "ENCRYPTION-INFO")))
        want = sorted(k.hex() for k, _ in encinfo_keys.entries(
            os.path.join(VECTORS, "encinfo-kms3.bin")))
        check("ENCRYPTION-INFO map keys = CockroachDB's encinfo-kms3.bin",
              keys == want, "%r vs %r" % (keys, want))
        exp = cr.expected_from_manifest(os.path.join(tmp, "m.json"))
        ep = crdb_kms.Endpoints()
        for name, keys_, stat in (("aws", ["aws"], ("aws", "kms.Decrypt")),
                                  ("gcp", ["gcp"], ("gcp", "decrypt")),
                                  ("azure", ["az"], ("az", "kv_decrypt")),
                                  ("local (ENCRYPTION-INFO-2)", ["local"],
                                   None),
                                  ("all three, AWS first",
                                   ["aws", "gcp", "az"], ("aws",
                                                          "kms.Decrypt"))):
            before = emus.stats(stat[0]).get(stat[1], 0) if stat else 0
            res = cr.check_collection(store, "LATEST", cr.KeySpec(
                "kms", uris=[u[k] for k in keys_], endpoints=ep))
            cr.compare(res, exp, by_hash=True)
            after = emus.stats(stat[0]).get(stat[1], 0) if stat else 1
            check("restore with %s" % name,
                  not res.problems and after > before,
                  "%r, decrypts %d -> %d" % (res.problems[:2], before, after))
        for name, keys_, want_ in (
                ("AWS and local together (two files)", ["aws", "local"],
                 "one of the provided URIs was not used"),
                ("an AWS key never used", ["aws2"],
                 "one of the provided URIs was not used")):
            res = cr.check_collection(store, "LATEST", cr.KeySpec(
                "kms", uris=[u[k] for k in keys_], endpoints=ep))
            check("refused: " + name,
                  any(want_ in p for p in res.problems), repr(res.problems))
        r = subprocess.run(
            [PY, os.path.join(HERE, "crdb.py"), "restore-check", store,
             "--kms-file", kms_file("3", "aws", "gcp", "az"),
             "--expect-manifest", os.path.join(tmp, "m.json")],
            capture_output=True, text=True)
        out = r.stdout + r.stderr
        check("crdb.py restore-check --kms-file (CLI)",
              r.returncode == 0 and "redacted" in out, out[-300:])
        secrets = [AWS_SECRET, q(AWS_SECRET), AZ_SECRET, q(AZ_SECRET),
                   emus.gcp_creds[:40], q(emus.gcp_creds)[:40]]
        check("no credential in restore-check's output",
              not any(s in out for s in secrets))
    finally:
        if emus:
            emus.stop()
        shutil.rmtree(tmp)
    print("%d passed, %d failed" % (results.count(True),
                                    results.count(False)))
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
