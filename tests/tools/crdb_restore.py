#!/usr/bin/python3
"""crdb_restore.py - read a backup collection the way CockroachDB RESTORE
does; the engine of `crdb.py restore-check` (see its help).

Written from shared/spec/cockroach-interop.md sections 2, 4 and 5, with no
kmsfs code:
  * LATEST: the first entry of metadata/latest/ (newest first: the names
    encode a descending timestamp), else the root LATEST file; its
    content is the full backup's subdirectory, e.g. /2023/07/14-211406.03.
  * A chain = that full backup directory plus its incremental layers:
    incrementals/<subdir>/<YYYYMMDD>/<HHMMSS.ss>[-<start>] (22.1+; the
    -<start> suffix from v25.2) and <subdir>/<YYYYMMDD>/<HHMMSS.ss>
    (before 22.1).  Every file of the chain uses the one data key.
  * Key: ENCRYPTION-INFO* of the full directory only, in listing order.
    Passphrase: PBKDF2 with the salt of the last one.  KMS: newest file
    first, the first file in which EVERY given URI has a map entry wins,
    and its entry for the FIRST URI is unwrapped (KMS Decrypt).
  * X-CHECKSUM = SHA-256(stored bytes of X)[:4], checked before X is
    decrypted ("checksum mismatch; expected %s, got %s").
  * Plaintext, never encrypted: LATEST, metadata/** (latest/, index/),
    BACKUP-LOCK-* ("lock"), *-CHECKSUM, ENCRYPTION-INFO*.  Every other
    file of a chain is a v2 encrypted file (v1 only with allow_v1).
The "view" of a store is what a kmsfs mount of it must show: plaintexts,
ENCRYPTION-INFO* hidden, each X-CHECKSUM over X's plaintext.  With no key,
the store itself is taken as a plaintext collection (e.g. a mount) and
every file must be plaintext.
"""

import fnmatch
import hashlib
import json
import os
import re

import crdb
import crdb_kms

ALL = "ALL"
INCREMENTALS = "incrementals"
DAY_RE = re.compile(r"^\d{8}$")
INC_RE = re.compile(r"^\d{6}\.\d{2}(-\d{8}-\d{6}\.\d{2})?$")
TMP_RE = re.compile(r"(\d+\.tmp$|^\.kmsfs-tmp-)")
MANIFESTS = ("BACKUP_METADATA", "BACKUP_MANIFEST", "BACKUP")
LOCK = "BACKUP-LOCK-"
CHECKSUM = "-CHECKSUM"
CHECKPOINT = "BACKUP-CHECKPOINT"


class RestoreError(Exception):
    """RESTORE cannot go on: no LATEST, no key, ..."""


class KeySpec:
    """How to get a chain's key: 'none' (plaintext collection),
    'passphrase', 'kms' (list of URIs, CockroachDB's rules) or 'key'."""

    def __init__(self, mode="none", passphrase=None, uris=None, key=None,
                 endpoints=None):
        self.mode = mode
        self.passphrase = passphrase
        self.uris = uris or []
        self.key = key
        self.endpoints = endpoints


class Result:
    def __init__(self):
        self.problems = []
        self.notes = []
        self.view = {}          # rel -> bytes, what a mount must show
        self.targets = []       # chain subdirs checked
        self.layers = {}        # subdir -> [layer rel dirs], full first
        self.keyinfo = {}       # subdir -> how the key was found
        self.counts = {"encrypted": 0, "plaintext": 0, "checksum": 0,
                       "bytes": 0}
        self.skipped = 0
        self.mode = "none"
        self.attempts = 0       # decryptions tried in the current chain
        self.wrong_key = []     # (rel, error) failing at the first chunk
        self.bad = set()        # paths (and chain subdirs) already failed

    def fail(self, rel, msg):
        self.bad.add(rel)
        msg = " ".join(msg.split())
        self.problems.append("%s: %s" % (rel, msg) if rel else msg)

    def failed(self, rel):
        """Already reported: rel, the file a checksum covers, its chain."""
        if rel in self.bad or (rel.endswith(CHECKSUM) and
                               rel[:-len(CHECKSUM)] in self.bad):
            return True
        return chain_of(rel, [b for b in self.bad if b.startswith("/")]) \
            is not None


# ------------------------------------------------------------ layout

def walk_files(root):
    """Sorted '/'-separated paths of the regular files under root."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for n in filenames:
            full = os.path.join(dirpath, n)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return sorted(out)


def read(root, rel):
    with open(os.path.join(root, rel), "rb") as f:
        return f.read()


def is_meta(rel):
    return rel == "LATEST" or rel.startswith("metadata/")


def appears_encrypted(data):
    return data[:len(crdb.PREAMBLE)] == crdb.PREAMBLE


def resolve_latest(store):
    """(subdir, the LATEST file read), as FindLatestFile does."""
    hist = os.path.join(store, "metadata", "latest")
    rel = None
    if os.path.isdir(hist):
        names = sorted(n for n in os.listdir(hist)
                       if os.path.isfile(os.path.join(hist, n)))
        if names:
            rel = "metadata/latest/" + names[0]
    if rel is None and os.path.isfile(os.path.join(store, "LATEST")):
        rel = "LATEST"
    if rel is None:
        raise RestoreError("path does not contain a completed latest backup")
    data = read(store, rel)
    if not data:
        raise RestoreError("%s: malformed LATEST file" % rel)
    if appears_encrypted(data):
        raise RestoreError("%s: LATEST is encrypted; CockroachDB writes it "
                           "in plaintext" % rel)
    try:
        sub = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RestoreError("%s: malformed LATEST file" % rel)
    return "/" + sub.strip("/"), rel


def find_chains(store):
    """Full backup subdirs: the topmost directories (outside metadata/ and
    incrementals/) holding a manifest, lock, checkpoint or
    ENCRYPTION-INFO."""
    roots = []
    for dirpath, dirnames, filenames in os.walk(store):
        dirnames.sort()
        rel = os.path.relpath(dirpath, store).replace(os.sep, "/")
        if rel == ".":
            dirnames[:] = [d for d in dirnames
                           if d not in ("metadata", INCREMENTALS)]
            continue
        if any(f in MANIFESTS or f.startswith(crdb.ENCINFO) or
               f.startswith(LOCK) or f.startswith(CHECKPOINT)
               for f in filenames):
            roots.append("/" + rel)
            dirnames[:] = []
    return roots


def inc_layers(store, base):
    """Incremental layer dirs <base>/<YYYYMMDD>/<HHMMSS.ss>[-<start>]."""
    out = []
    top = os.path.join(store, base)
    if not os.path.isdir(top):
        return out
    for day in sorted(os.listdir(top)):
        d = os.path.join(top, day)
        if not (DAY_RE.match(day) and os.path.isdir(d)):
            continue
        for t in sorted(os.listdir(d)):
            if INC_RE.match(t) and os.path.isdir(os.path.join(d, t)):
                out.append("%s/%s/%s" % (base, day, t))
    return out


def chain_of(rel, chains):
    """The chain subdir a store path belongs to, or None."""
    for sub in chains:
        s = sub.strip("/")
        if rel.startswith(s + "/") or \
                rel.startswith("%s/%s/" % (INCREMENTALS, s)):
            return sub
    return None


def kind_of(rel):
    base = rel.rsplit("/", 1)[-1]
    if TMP_RE.search(base):
        return "tmp"
    if base.startswith(crdb.ENCINFO):
        return "encinfo"
    if base.startswith(LOCK):
        return "lock"
    if base.endswith(CHECKSUM):
        return "checksum"
    return "encrypted"


def checksum(data):
    return hashlib.sha256(data).digest()[:4]


# ------------------------------------------------------------ keys

def encinfo_names(store, sub):
    d = os.path.join(store, sub.strip("/"))
    return sorted(n for n in os.listdir(d) if n.startswith(crdb.ENCINFO)
                  and os.path.isfile(os.path.join(d, n)))


def chain_key(store, sub, spec):
    """(key, how) for chain `sub`; RestoreError if RESTORE would fail."""
    names = encinfo_names(store, sub)
    if not names:
        raise RestoreError("could not find or read encryption information: "
                           "no ENCRYPTION-INFO files found in %s" % sub)
    if spec.mode == "key":
        return spec.key, "given key"
    infos = []
    for n in names:
        try:
            raw = read(store, sub.strip("/") + "/" + n)
            infos.append((n, crdb.parse_encinfo(raw)))
        except crdb.FormatError as e:
            raise RestoreError("%s/%s: %s" % (sub, n, e))
    if spec.mode == "passphrase":
        n, info = infos[-1]
        if not info["salt"]:
            raise RestoreError("%s/%s has no salt: a KMS chain, give KMS "
                               "URIs" % (sub, n))
        return crdb.pbkdf2(spec.passphrase, info["salt"]), \
            "passphrase, salt of %s" % n
    uris = [crdb_kms.KmsUri(u) for u in spec.uris]
    err = "no ENCRYPTION-INFO file"
    for n, info in reversed(infos):
        if any(u.map_key() not in info["kms"] for u in uris):
            err = ("one of the provided URIs was not used when encrypting "
                   "the base BACKUP: could not find an entry in the "
                   "encryptedDataKeyMap")
            continue
        u = uris[0]
        try:
            key = crdb_kms.unwrap(u, info["kms"][u.map_key()], spec.endpoints)
        except crdb_kms.KMSError as e:
            raise RestoreError("failed to decrypt data key: %s" % e)
        return key, "%s entry of %s" % (crdb_kms.redact(u.uri), n)
    raise RestoreError(err)


# ------------------------------------------------------------ check

def _check_meta(store, rel, data, res):
    if TMP_RE.search(rel):
        res.fail(rel, "leftover temporary file (written but never renamed "
                 "onto its final name)")
        return
    if appears_encrypted(data):
        res.fail(rel, "is encrypted; CockroachDB writes it in plaintext")
        return
    if rel == "LATEST" or rel.startswith("metadata/latest/"):
        sub = data.decode("utf-8", "replace")
        if not data or not os.path.isdir(os.path.join(store, sub.strip("/"))):
            res.fail(rel, "names %r, which is not a directory of the "
                     "collection" % sub[:80])
    res.view[rel] = data
    res.counts["plaintext"] += 1


def _decrypt(rel, data, key, res, allow_v1):
    res.attempts += 1
    try:
        info = {}
        plain = crdb.decrypt_bytes(key, data, info)
    except crdb.FormatError as e:
        if str(e).startswith("chunk 0: authentication failed") or \
                str(e).startswith("v1: failed to decrypt"):
            res.wrong_key.append((rel, str(e)))    # decided per chain
        else:
            res.fail(rel, str(e))
        return None
    if info["version"] != 2 and not allow_v1:
        res.fail(rel, "v%d file: CockroachDB's current reader and kmsfs "
                 "use v2" % info["version"])
        return None
    return plain


def _check_chain_file(store, sub, rel, stored, key, res, allow_v1):
    data = stored[rel]
    kind = kind_of(rel)
    base = rel.rsplit("/", 1)[-1]
    if kind == "tmp":
        res.fail(rel, "leftover temporary file (written but never renamed "
                 "onto its final name)")
    elif kind == "encinfo":
        if key is None:
            res.fail(rel, "ENCRYPTION-INFO in a plaintext collection (a "
                     "mount must hide it)")
        elif rel != sub.strip("/") + "/" + base:
            res.fail(rel, "ENCRYPTION-INFO outside the full backup "
                     "directory; incrementals use the full backup's")
    elif kind == "lock":
        if appears_encrypted(data):
            res.fail(rel, "is encrypted; CockroachDB writes BACKUP-LOCK in "
                     "plaintext")
        elif data != b"lock":
            res.fail(rel, "content %r, CockroachDB writes 'lock'" % data[:16])
        res.view[rel] = data
        res.counts["plaintext"] += 1
    elif kind == "checksum":
        res.counts["checksum"] += 1
        if len(data) != 4:
            res.fail(rel, "%d bytes, a checksum has 4" % len(data))
        elif rel[:-len(CHECKSUM)] not in stored:
            res.fail(rel, "checksum of a file that does not exist")
        # X sorts before X-CHECKSUM: keep the plaintext checksum it set
        res.view.setdefault(rel, data)
    else:
        _check_encrypted(rel, data, stored, key, res, allow_v1)


def _check_encrypted(rel, data, stored, key, res, allow_v1):
    sum_rel = rel + CHECKSUM
    if sum_rel in stored and len(stored[sum_rel]) == 4 and \
            stored[sum_rel] != checksum(data):
        res.fail(rel, "checksum mismatch; expected %s, got %s"
                 % (stored[sum_rel].hex(), checksum(data).hex()))
        return
    res.counts["encrypted"] += 1
    res.counts["bytes"] += len(data)
    if key is None:
        if appears_encrypted(data):
            res.fail(rel, 'file appears encrypted -- try specifying one of '
                     '"encryption_passphrase" or "kms"')
            return
        res.view[rel] = data
        return
    if not appears_encrypted(data):
        res.fail(rel, "file does not appear to be encrypted")
        return
    plain = _decrypt(rel, data, key, res, allow_v1)
    if plain is not None:
        res.view[rel] = plain
        if sum_rel in stored:
            res.view[sum_rel] = checksum(plain)


def _targets(store, target, chains, res):
    if target == ALL:
        return list(chains)
    if target in (None, "LATEST"):
        sub, rel = resolve_latest(store)
        res.notes.append("LATEST (%s) -> %s" % (rel, sub))
    else:
        sub = "/" + target.strip("/")
    if sub not in chains:
        raise RestoreError("%s is not a backup directory of the collection "
                           "(full backup directories found: %s)"
                           % (sub, " ".join(chains[:5]) or "none"))
    return [sub]


def check_collection(store, target="LATEST", spec=None, allow_v1=False,
                     ignore=()):
    """Check a store as RESTORE reads it; a Result (problems, view...).
    ignore: basename globs of files an encrypting layer keeps for itself
    and RESTORE never reads (e.g. .kmsfs-keycheck); left out entirely."""
    spec = spec or KeySpec()
    res = Result()
    res.mode = spec.mode
    if not os.path.isdir(store):
        res.fail(store, "not a directory")
        return res
    chains = find_chains(store)
    try:
        res.targets = _targets(store, target, chains, res)
    except RestoreError as e:
        res.fail("", str(e))
        return res
    stored = {}
    ignored = 0
    for rel in walk_files(store):
        if any(fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], g)
               for g in ignore):
            ignored += 1
            continue
        owner = chain_of(rel, chains)
        if is_meta(rel):
            _check_meta(store, rel, read(store, rel), res)
        elif owner is None:
            res.fail(rel, "belongs to no backup chain (no full backup "
                     "directory for it)")
        elif owner in res.targets:
            stored[rel] = read(store, rel)
        else:
            res.skipped += 1
    if ignored:
        res.notes.append("%d file(s) ignored (--ignore)" % ignored)
    for sub in res.targets:
        full = sub.strip("/")
        old = inc_layers(store, full)
        new = inc_layers(store, "%s/%s" % (INCREMENTALS, full))
        res.layers[sub] = [full] + old + new
        if old and new:
            res.notes.append("%s: incremental layers in both the pre-22.1 "
                             "and the 22.1+ location" % sub)
        for layer in old + new:
            if not any(layer + "/" + m in stored for m in MANIFESTS):
                res.notes.append("%s: no manifest (an unfinished layer)"
                                 % layer)
        key = None
        if spec.mode != "none":
            try:
                key, res.keyinfo[sub] = chain_key(store, sub, spec)
            except (RestoreError, crdb_kms.KMSError) as e:
                res.fail(sub, str(e))       # sub starts with "/"
                continue
        res.attempts, res.wrong_key = 0, []
        for rel in sorted(r for r in stored if chain_of(r, [sub])):
            _check_chain_file(store, sub, rel, stored, key, res, allow_v1)
        _wrong_key(sub, res)
    return res


def _wrong_key(sub, res):
    """One line when no file of the chain decrypts (a wrong key), else
    one line per file that fails at its first chunk."""
    if res.attempts >= 2 and len(res.wrong_key) == res.attempts:
        res.fail(sub, "none of its %d encrypted files decrypts with this "
                 "key (failed to decrypt - maybe incorrect key)"
                 % res.attempts)
    else:
        for rel, err in res.wrong_key:
            res.fail(rel, err)


# ------------------------------------------------------------ compare

def in_scope(rel, targets, all_chains):
    return all_chains or is_meta(rel) or chain_of(rel, targets) is not None


def expected_from_dir(d):
    return {rel: read(d, rel) for rel in walk_files(d)}


def expected_from_manifest(path):
    with open(path) as f:
        m = json.load(f)
    return {rel: bytes.fromhex(h) for rel, h in m["files"].items()}


def compare(res, expected, by_hash=False, all_chains=False):
    """Problems for each difference between res.view and expected (rel ->
    bytes, or rel -> sha256 digest with by_hash)."""
    if not res.targets:
        return                  # nothing restored: the cause is reported
    exp = {r: v for r, v in expected.items()
           if in_scope(r, res.targets, all_chains)}
    for rel in sorted(set(exp) | set(res.view)):
        if res.failed(rel):
            continue
        got = res.view.get(rel)
        want = exp.get(rel)
        if want is None:
            res.fail(rel, "in the store but not expected")
        elif got is None:
            res.fail(rel, "expected but missing from the restored view")
        elif by_hash and hashlib.sha256(got).digest() != want:
            res.fail(rel, "restored content (%d bytes) differs from the "
                     "expected sha256 %s" % (len(got), want.hex()[:16]))
        elif not by_hash and got != want:
            res.fail(rel, "restored content (%d bytes) differs from the "
                     "expected (%d bytes)" % (len(got), len(want)))


def dump(view, out):
    for rel, data in sorted(view.items()):
        p = os.path.join(out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)


# ------------------------------------------------------------ writer

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_encinfo(salt=b"", entries=None):
    """EncryptionInfo bytes (scheme 0 omitted, map sorted by key)."""
    out = b""
    if salt:
        out += b"\x12" + _varint(len(salt)) + salt
    for k, v in sorted((entries or {}).items()):
        e = b"\x0a" + _varint(len(k)) + k + b"\x12" + _varint(len(v)) + v
        out += b"\x1a" + _varint(len(e)) + e
    return out


def encrypt_collection(plain, store, spec, kms_files=None):
    """Write into `store` what an encrypting layer must leave for the
    plaintext collection `plain`: each chain's ENCRYPTION-INFO (passphrase:
    a random salt; kms: one file per URI list in kms_files, named
    ENCRYPTION-INFO, -2, ...), its files encrypted (v2, fresh IVs), and
    each X-CHECKSUM over X's ciphertext.  Returns {subdir: key}."""
    chains = find_chains(plain)
    keys = {}
    for sub in chains:
        d = os.path.join(store, sub.strip("/"))
        os.makedirs(d, exist_ok=True)
        if spec.mode == "passphrase":
            salt = os.urandom(16)
            keys[sub] = crdb.pbkdf2(spec.passphrase, salt)
            blobs = [encode_encinfo(salt=salt)]
        else:
            keys[sub] = os.urandom(32)
            blobs = [encode_encinfo(entries={
                crdb_kms.KmsUri(u).map_key():
                    crdb_kms.wrap(u, keys[sub], spec.endpoints)
                for u in uris}) for uris in kms_files]
        for i, b in enumerate(blobs):
            name = crdb.ENCINFO + ("-%d" % (i + 1) if i else "")
            with open(os.path.join(d, name), "wb") as f:
                f.write(b)
    files = walk_files(plain)
    out = {}
    for rel in files:
        data = read(plain, rel)
        owner = chain_of(rel, chains)
        if not is_meta(rel) and owner is None:
            raise RestoreError("%s belongs to no backup chain" % rel)
        if owner and kind_of(rel) == "encrypted":
            data = crdb.encrypt_bytes(keys[owner], data)
        out[rel] = data
    for rel in files:
        if kind_of(rel) == "checksum" and rel[:-len(CHECKSUM)] in out:
            out[rel] = checksum(out[rel[:-len(CHECKSUM)]])
    dump(out, store)
    return keys


# ------------------------------------------------------------ CLI glue

def report(res, quiet=False, out=None):
    """Print problems (one line each) and a summary; exit status."""
    import sys
    out = out or sys.stdout
    for p in res.problems:
        print("restore-check: FAIL %s" % p, file=out)
    if not quiet:
        for n in res.notes:
            print("restore-check: note: %s" % n, file=out)
        for sub in res.targets:
            layers = res.layers.get(sub, [])
            print("restore-check: chain %s: full + %d incremental layer(s)%s"
                  % (sub, max(len(layers) - 1, 0),
                     ", key: " + res.keyinfo[sub] if sub in res.keyinfo
                     else ""), file=out)
    c = res.counts
    print("restore-check: %s: %d %s file(s) (%d bytes), %d checksum(s), "
          "%d plaintext file(s)%s, %d problem(s)"
          % ("FAILED" if res.problems else "ok", c["encrypted"],
             "data" if res.mode == "none" else "encrypted", c["bytes"],
             c["checksum"], c["plaintext"],
             ", %d file(s) of other chains not checked" % res.skipped
             if res.skipped else "", len(res.problems)), file=out)
    return 1 if res.problems else 0


# ------------------------------------------------------------ CLI

def add_cli(sub):
    """The restore-check and encrypt-collection subcommands of crdb.py."""
    p = sub.add_parser("restore-check")
    p.add_argument("store")
    p.add_argument("target", nargs="?", default="LATEST")
    add_chain_key_opts(p)
    p.add_argument("--key-file")
    p.add_argument("--expect")
    p.add_argument("--expect-manifest")
    p.add_argument("--out")
    p.add_argument("--allow-v1", action="store_true")
    p.add_argument("--ignore", action="append", default=[],
                   metavar="GLOB", help="leave out files with this basename")
    p.add_argument("-q", "--quiet", action="store_true")
    p = sub.add_parser("encrypt-collection")
    p.add_argument("plain")
    p.add_argument("store")
    add_chain_key_opts(p, multi=True)


def run_cli(a, ap):
    if a.cmd == "restore-check":
        return cmd_restore_check(a, ap)
    return cmd_encrypt_collection(a, ap)


def add_chain_key_opts(p, multi=False):
    p.add_argument("--passphrase-file")
    p.add_argument("--kms-file", action="append" if multi else None)
    p.add_argument("--gcp-endpoint")
    p.add_argument("--azure-vault-url")
    p.add_argument("--azure-authority")
    p.add_argument("--ca-bundle")


def chain_key_spec(a, ap):
    ep = crdb_kms.Endpoints(a.gcp_endpoint, a.azure_vault_url,
                            a.azure_authority, a.ca_bundle)
    given = [o for o in ("passphrase_file", "kms_file", "key_file")
             if getattr(a, o, None)]
    if len(given) > 1:
        ap.error("give one of --passphrase-file, --kms-file, --key-file")
    if a.passphrase_file:
        return KeySpec("passphrase", endpoints=ep,
                                    passphrase=crdb.read_passphrase(
                                        a.passphrase_file))
    if a.kms_file:
        files = a.kms_file if isinstance(a.kms_file, list) else [a.kms_file]
        lists = [crdb_kms.read_kms_file(f) for f in files]
        spec = KeySpec("kms", uris=lists[0], endpoints=ep)
        spec.lists = lists
        return spec
    if getattr(a, "key_file", None):
        return KeySpec("key", key=crdb.read_key_file(a.key_file))
    return KeySpec()


def cmd_restore_check(a, ap):
    if a.expect and a.expect_manifest:
        ap.error("give --expect or --expect-manifest, not both")
    spec = chain_key_spec(a, ap)
    res = check_collection(a.store, a.target, spec, a.allow_v1, a.ignore)
    all_chains = a.target == ALL
    if a.expect:
        compare(res, expected_from_dir(a.expect), False, all_chains)
    if a.expect_manifest:
        compare(res, expected_from_manifest(a.expect_manifest), True,
                   all_chains)
    if a.out:
        dump(res.view, a.out)
    return report(res, a.quiet)


def cmd_encrypt_collection(a, ap):
    spec = chain_key_spec(a, ap)
    if spec.mode not in ("passphrase", "kms"):
        ap.error("encrypt-collection needs --passphrase-file or --kms-file")
    keys = encrypt_collection(a.plain, a.store, spec,
                                 getattr(spec, "lists", None))
    print("encrypt-collection: %d chain(s): %s"
          % (len(keys), " ".join(sorted(keys))))
    return 0


# ------------------------------------------------------------ self-test

def _copy_tree(src, dst):
    """A writable copy (the shared vectors are read-only)."""
    for rel in walk_files(src):
        p = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(read(src, rel))


def selftest_collection(coll, tmp):
    """shared/vectors/crdb-collection: collection/ restored with its
    passphrase is exactly expected/, expected/ itself passes as a
    plaintext collection, and each kind of damage is named.  Failures."""
    import shutil
    fails = []
    store, expdir = os.path.join(coll, "collection"), \
        os.path.join(coll, "expected")
    pp = KeySpec("passphrase", passphrase=b"correct horse battery staple")
    exp = expected_from_dir(expdir)
    res = check_collection(store, "LATEST", pp)
    if res.targets != ["/2023/07/14-211406.03"] or \
            len(res.layers[res.targets[0]]) != 2:
        fails.append("collection: LATEST/layers %r %r"
                     % (res.targets, res.layers))
    if res.view != exp:
        fails.append("collection: restored view != expected/ (%d vs %d "
                     "files)" % (len(res.view), len(exp)))
    compare(res, exp)
    fails += ["collection: " + p for p in res.problems]
    res = check_collection(expdir)
    compare(res, exp)
    fails += ["expected/ as plaintext: " + p for p in res.problems]

    full = "2023/07/14-211406.03"
    inc = "incrementals/%s/20230714/221406.03" % full
    key = bytes.fromhex("41a43ecbc7f48defc98455b017667d9db11a01e4576d940e"
                        "1e6952e402b002cc")
    latest = "metadata/latest/LATEST-ffeeddccbbaa"

    def flip(d, rel, pos=-1):
        b = bytearray(read(d, rel))
        b[pos] ^= 1
        write(d, rel, bytes(b))

    def write(d, rel, data):
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)

    cases = [
        ("manifest checksum", "checksum mismatch",
         lambda d: flip(d, full + "/BACKUP_MANIFEST-CHECKSUM")),
        ("inc manifest byte", "checksum mismatch",
         lambda d: flip(d, inc + "/BACKUP_MANIFEST", 30)),
        ("sst byte", "authentication failed",
         lambda d: flip(d, full + "/data/812345678901234567.sst", 70000)),
        ("sst cut at a chunk boundary", "truncated",
         lambda d: write(d, full + "/data/812345678901234567.sst",
                         read(d, full + "/data/812345678901234567.sst")
                         [:crdb.HEADER + 2 * crdb.CHUNK_CT])),
        ("no ENCRYPTION-INFO", "no ENCRYPTION-INFO files found",
         lambda d: os.remove(os.path.join(d, full, crdb.ENCINFO))),
        ("encrypted LATEST", "LATEST is encrypted",
         lambda d: write(d, latest, crdb.encrypt_bytes(key, read(d, latest)))),
        ("encrypted lock", "BACKUP-LOCK in plaintext",
         lambda d: write(d, full + "/BACKUP-LOCK-1234",
                         crdb.encrypt_bytes(key, b"lock"))),
        ("plaintext sst", "does not appear to be encrypted",
         lambda d: write(d, inc + "/data/812345699901234567.sst", b"x" * 99)),
        ("leftover tmp", "leftover temporary file",
         lambda d: write(d, full + "/data/1.sst4242.tmp", b"")),
        ("leftover kmsfs tmp", "leftover temporary file",
         lambda d: write(d, inc + "/.kmsfs-tmp-1", b"")),
        ("unknown encrypted file", "in the store but not expected",
         lambda d: write(d, full + "/.kmsfs-keycheck",
                         crdb.encrypt_bytes(key, b"x"))),
        ("ENCRYPTION-INFO in an incremental", "outside the full backup",
         lambda d: write(d, inc + "/ENCRYPTION-INFO",
                         read(d, full + "/ENCRYPTION-INFO"))),
        ("orphan checksum", "checksum of a file that does not exist",
         lambda d: write(d, inc + "/BACKUP_METADATA-CHECKSUM", b"abcd")),
        ("LATEST to nowhere", "not a backup directory",
         lambda d: write(d, "metadata/latest/LATEST-00", b"/2023/01/01")),
        ("stray file", "belongs to no backup chain",
         lambda d: write(d, "incrementals/2020/01/01-000000.00/x/y", b"")),
    ]
    for i, (name, want, damage) in enumerate(cases):
        d = os.path.join(tmp, "case%d" % i)
        _copy_tree(store, d)
        damage(d)
        res = check_collection(d, "LATEST", pp)
        compare(res, exp)
        if not any(want in p for p in res.problems):
            fails.append("damage '%s' not reported as %r: %r"
                         % (name, want, res.problems[:3]))
        shutil.rmtree(d)
    d = os.path.join(tmp, "ignore")
    _copy_tree(store, d)
    with open(os.path.join(d, full, ".kmsfs-keycheck"), "wb") as f:
        f.write(crdb.encrypt_bytes(key, b"x"))
    res = check_collection(d, "LATEST", pp, ignore=[".kmsfs-key*"])
    compare(res, exp)
    if res.problems or res.view != exp:
        fails.append("--ignore: %r" % res.problems)
    shutil.rmtree(d)
    res = check_collection(store, "LATEST",
                           KeySpec("passphrase", passphrase=b"wrong"))
    if not any("maybe incorrect key" in p for p in res.problems):
        fails.append("wrong passphrase accepted")
    res = check_collection(store, "LATEST", KeySpec("kms", uris=[
        "aws:///k?REGION=us-east-1&AUTH=implicit"]))
    if not any("no salt" in p or "one of the provided" in p
               for p in res.problems):
        fails.append("KMS URI on a passphrase chain: %r" % res.problems)
    wrong = dict(exp)
    wrong[latest] = b"/2023/07/14-211406.04"
    res = check_collection(store, "LATEST", pp)
    compare(res, wrong)
    if len(res.problems) != 1 or "differs" not in res.problems[0]:
        fails.append("--expect mismatch not reported: %r" % res.problems)
    return fails
