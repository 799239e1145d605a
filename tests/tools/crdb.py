#!/usr/bin/python3
"""crdb.py - an independent reader/writer of CockroachDB's encrypted files.

Used by the mount tests to check the bytes kmsfs leaves on the backing
store without trusting any kmsfs code.  Written from the format description
(shared/spec/cockroach-interop.md sections 1, 2, 6) with Python's
`cryptography` package; `verify-vectors` proves it against files that
CockroachDB's own code encrypted (shared/vectors/crdb) before tests rely on
it.

Commands (exit 0 = ok, 1 = check failed / bad data, 2 = usage):
  verify-vectors [--vectors DIR]     self-test against the CockroachDB vectors
  decrypt KEYOPT FILE [-o OUT]       plaintext of one v1/v2 file (all or nothing)
  encrypt KEYOPT [--iv HEX] [--v1] IN [-o OUT]   write a v2 (or v1) file
  check-tree KEYOPT|--structure-only STORE   every regular file except
                                     ENCRYPTION-INFO* is a well-formed v2
                                     file that decrypts, final chunk short
  decrypt-tree --passphrase-file P STORE OUTDIR   mirror STORE decrypted
  ivs [--unique] STORE               "IVHEX path" for every encrypted file
                                     (hard links once); --unique: exit 1
                                     if two files share an IV
  encinfo FILE                       dump an ENCRYPTION-INFO file
  chain-key --passphrase-file P --encinfo FILE   print the chain key (hex)
  plain-size N | cipher-size N       the size mapping
  restore-check STORE [LATEST|SUBDIR|ALL] [CHAINKEY] [--expect DIR |
          --expect-manifest FILE] [--out DIR] [--ignore GLOB] [-q]
                                     read a CockroachDB collection the way
                                     RESTORE does (crdb_restore.py): resolve
                                     LATEST, find the full backup and its
                                     incrementals, get the chain key from
                                     the full backup's ENCRYPTION-INFO*,
                                     check every -CHECKSUM against the stored
                                     bytes, decrypt every file, check that
                                     LATEST, metadata/**, BACKUP-LOCK-* are
                                     plaintext and no *.tmp is left; then
                                     compare the restored view (what a kmsfs
                                     mount shows: plaintexts, ENCRYPTION-INFO
                                     hidden, checksums of plaintexts) with
                                     DIR / a crdb_replay.py manifest, or
                                     write it to --out DIR.  One line per
                                     problem, exit 1 on any.
  encrypt-collection PLAIN STORE (--passphrase-file P | --kms-file F...)
                                     write STORE as an encrypting layer must
                                     for the plaintext collection PLAIN (one
                                     ENCRYPTION-INFO(-N) per --kms-file)
KEYOPT: --key-hex HEX | --key-file F (64 hex chars or 32 raw bytes)
        | --passphrase-file P --encinfo ENCRYPTION-INFO
CHAINKEY (restore-check): --passphrase-file P | --kms-file F (one URI a
        line, CockroachDB's rules: every URI must have an entry in one
        ENCRYPTION-INFO file, the first one is unwrapped) | --key-file F;
        none: a plaintext collection (a mount).  Test endpoints for KMS
        URIs: --gcp-endpoint, --azure-vault-url, --azure-authority,
        --ca-bundle (default: $KMSFS_GCP_KMS_ENDPOINT, $KMSFS_AZURE_VAULT_URL,
        $AZURE_AUTHORITY_HOST, $KMSFS_CA_BUNDLE).
For tree commands the key of each file comes from its chain: the top-level
directory's ENCRYPTION-INFO, or STORE/ENCRYPTION-INFO for files at the root.
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREAMBLE = b"encrypt"
HEADER = 20
IV_SIZE = 12
TAG = 16
CHUNK = 65536
CHUNK_CT = CHUNK + TAG
PBKDF2_ITER = 64000
ENCINFO = "ENCRYPTION-INFO"


class FormatError(Exception):
    """The bytes are not a valid CockroachDB encrypted file."""


# ---------------------------------------------------------------- format

def chunk_nonce(iv, idx):
    """IV with bytes [4..12) as big-endian uint64 plus idx, mod 2^64."""
    (ctr,) = struct.unpack(">Q", iv[4:12])
    return iv[:4] + struct.pack(">Q", (ctr + idx) % (1 << 64))


def cipher_size(plain):
    return HEADER + plain + TAG * (plain // CHUNK + 1)


def plain_size(cipher):
    """Plaintext size of a v2 file of `cipher` bytes, or None if no writer
    can produce that size."""
    s = cipher - HEADER
    if s < TAG or s % CHUNK_CT < TAG:
        return None
    return s - TAG * (s // CHUNK_CT + 1)


def parse_header(data):
    if len(data) < len(PREAMBLE) or data[:7] != PREAMBLE:
        raise FormatError("file does not appear to be encrypted")
    if len(data) < HEADER:
        raise FormatError("invalid encryption header")
    version = data[7]
    if version not in (1, 2):
        raise FormatError(
            "unexpected encryption scheme/config version %d" % version)
    return version, bytes(data[8:HEADER])


def decrypt_bytes(key, data, info=None):
    """Plaintext of a whole v1/v2 file.  Raises FormatError naming the
    failing chunk.  info (dict, optional) receives version, iv, chunks and
    the length of the final chunk's plaintext."""
    version, iv = parse_header(data)
    gcm = AESGCM(key)
    body = memoryview(data)[HEADER:]
    if info is not None:
        info.update(version=version, iv=iv)
    if version == 1:
        try:
            plain = gcm.decrypt(iv, bytes(body), None)
        except InvalidTag:
            raise FormatError("v1: failed to decrypt - maybe incorrect key")
        if info is not None:
            info.update(chunks=1, last=len(plain))
        return plain
    out = []
    idx = 0
    while True:
        ct = body[idx * CHUNK_CT:(idx + 1) * CHUNK_CT]
        if len(ct) < TAG:
            raise FormatError(
                "chunk %d: %d bytes, truncated (failed to decrypt - maybe "
                "incorrect key)" % (idx, len(ct)))
        try:
            p = gcm.decrypt(chunk_nonce(iv, idx), bytes(ct), None)
        except InvalidTag:
            raise FormatError("chunk %d: authentication failed (failed to "
                              "decrypt - maybe incorrect key)" % idx)
        out.append(p)
        if len(p) < CHUNK:
            break
        idx += 1
    if len(body) > (idx + 1) * CHUNK_CT:
        # Unreachable for sizes a writer makes: the final chunk is short,
        # so anything after it is trailing garbage.
        raise FormatError("%d trailing bytes after the final chunk"
                          % (len(body) - (idx + 1) * CHUNK_CT))
    if info is not None:
        info.update(chunks=idx + 1, last=len(out[-1]))
    return b"".join(out)


def encrypt_bytes(key, plain, iv=None, version=2):
    iv = iv if iv is not None else os.urandom(IV_SIZE)
    assert len(iv) == IV_SIZE
    gcm = AESGCM(key)
    head = PREAMBLE + bytes([version]) + iv
    if version == 1:
        return head + gcm.encrypt(iv, plain, None)
    parts = [head]
    n = len(plain) // CHUNK + 1     # the final chunk is always short
    for i in range(n):
        parts.append(gcm.encrypt(chunk_nonce(iv, i),
                                 plain[i * CHUNK:(i + 1) * CHUNK], None))
    return b"".join(parts)


# ----------------------------------------------------- ENCRYPTION-INFO

def _varint(buf, pos):
    shift = 0
    val = 0
    while True:
        if pos >= len(buf):
            raise FormatError("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        val |= (b & 0x7F) << shift
        if not b & 0x80:
            return val, pos
        shift += 7
        if shift > 63:
            raise FormatError("protobuf: varint too long")


def _fields(buf):
    """Yield (field number, wire type, value) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        field, wt = tag >> 3, tag & 7
        if field == 0:
            raise FormatError("protobuf: field number 0")
        if wt == 0:
            val, pos = _varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise FormatError("protobuf: truncated fixed64")
            val, pos = bytes(buf[pos:pos + 8]), pos + 8
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise FormatError("protobuf: truncated field %d" % field)
            val, pos = bytes(buf[pos:pos + n]), pos + n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise FormatError("protobuf: truncated fixed32")
            val, pos = bytes(buf[pos:pos + 4]), pos + 4
        else:
            raise FormatError("protobuf: wire type %d" % wt)
        yield field, wt, val


def parse_encinfo(buf):
    """EncryptionInfo {scheme=1; bytes salt=2; map<string,bytes>=3}.
    Returns dict(scheme, salt, kms={rawkey: blob})."""
    info = {"scheme": 0, "salt": b"", "kms": {}}
    for field, wt, val in _fields(buf):
        if field == 1 and wt == 0:
            info["scheme"] = val
        elif field == 2 and wt == 2:
            info["salt"] = val
        elif field == 3 and wt == 2:
            k, v = b"", b""
            for f2, wt2, val2 in _fields(val):
                if f2 == 1 and wt2 == 2:
                    k = val2
                elif f2 == 2 and wt2 == 2:
                    v = val2
            info["kms"][k] = v
        elif field in (1, 2, 3):
            raise FormatError("protobuf: field %d has wire type %d"
                              % (field, wt))
        # unknown fields are skipped, as proto3 does
    return info


def pbkdf2(passphrase, salt):
    return hashlib.pbkdf2_hmac("sha256", passphrase, salt, PBKDF2_ITER, 32)


def read_passphrase(path):
    with open(path, "rb") as f:
        p = f.read()
    # A passphrase file holds one line; the newline is not part of it.
    if p.endswith(b"\r\n"):
        p = p[:-2]
    elif p.endswith(b"\n"):
        p = p[:-1]
    return p


def read_key_file(path):
    with open(path, "rb") as f:
        raw = f.read()
    txt = raw.strip()
    if len(txt) == 64:
        try:
            return bytes.fromhex(txt.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            pass
    if len(raw) == 32:
        return raw
    raise SystemExit("crdb.py: %s: key must be 64 hex chars or 32 raw bytes"
                     % path)


def chain_key_from_encinfo(passphrase, path):
    with open(path, "rb") as f:
        info = parse_encinfo(f.read())
    if len(info["salt"]) != 16:
        raise FormatError("%s: not a passphrase ENCRYPTION-INFO (salt %d "
                          "bytes, %d KMS entries)"
                          % (path, len(info["salt"]), len(info["kms"])))
    return pbkdf2(passphrase, info["salt"])


# ---------------------------------------------------------------- trees

def is_encinfo(name):
    return name.startswith(ENCINFO)


def walk_store(store):
    """Yield (relpath, chain) for every regular file that is not an
    ENCRYPTION-INFO*; chain is the top-level directory or '' (root)."""
    for dirpath, dirnames, filenames in os.walk(store):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full) or not os.path.isfile(full):
                continue
            rel = os.path.relpath(full, store)
            parts = rel.split(os.sep)
            chain = parts[0] if len(parts) > 1 else ""
            if is_encinfo(name) and len(parts) <= 2:
                continue
            yield rel, chain


class ChainKeys:
    """Keys of the chains of a store, derived on first use."""

    def __init__(self, store, passphrase):
        self.store = store
        self.passphrase = passphrase
        self.cache = {}

    def get(self, chain):
        if chain not in self.cache:
            d = os.path.join(self.store, chain)
            names = sorted(n for n in os.listdir(d) if is_encinfo(n))
            if not names:
                raise FormatError("no ENCRYPTION-INFO in %s" % (d or "."))
            # CockroachDB takes the salt of the last file in listing order.
            self.cache[chain] = chain_key_from_encinfo(
                self.passphrase, os.path.join(d, names[-1]))
        return self.cache[chain]


def check_structure(data):
    """Header and size checks that need no key."""
    version, _ = parse_header(data)
    if version != 2:
        raise FormatError("version %d, kmsfs must write v2" % version)
    if plain_size(len(data)) is None:
        raise FormatError("size %d is impossible for a v2 file" % len(data))


def cmd_check_tree(a):
    keys = None if a.structure_only else ChainKeys(
        a.store, read_passphrase(a.passphrase_file))
    ok = bad = 0
    for rel, chain in walk_store(a.store):
        with open(os.path.join(a.store, rel), "rb") as f:
            data = f.read()
        try:
            check_structure(data)
            if keys is not None:
                info = {}
                plain = decrypt_bytes(keys.get(chain), data, info)
                if info["last"] >= CHUNK:
                    raise FormatError("final chunk is not short")
                if len(plain) != plain_size(len(data)):
                    raise FormatError("plaintext %d bytes, size map says %d"
                                      % (len(plain), plain_size(len(data))))
            ok += 1
        except FormatError as e:
            bad += 1
            print("BAD %s: %s" % (rel, e))
    print("check-tree: %d ok, %d bad" % (ok, bad))
    return 1 if bad else 0


def cmd_decrypt_tree(a):
    keys = ChainKeys(a.store, read_passphrase(a.passphrase_file))
    bad = 0
    for dirpath, dirnames, filenames in os.walk(a.store):
        rel_dir = os.path.relpath(dirpath, a.store)
        os.makedirs(os.path.join(a.out, rel_dir), exist_ok=True)
        for name in dirnames + filenames:
            src = os.path.join(dirpath, name)
            if os.path.islink(src):
                os.symlink(os.readlink(src), os.path.join(a.out, rel_dir,
                                                          name))
    for rel, chain in walk_store(a.store):
        src = os.path.join(a.store, rel)
        with open(src, "rb") as f:
            data = f.read()
        try:
            plain = decrypt_bytes(keys.get(chain), data)
        except FormatError as e:
            bad += 1
            print("BAD %s: %s" % (rel, e), file=sys.stderr)
            continue
        dst = os.path.join(a.out, rel)
        with open(dst, "wb") as f:
            f.write(plain)
        os.chmod(dst, os.stat(src).st_mode & 0o7777)
    for dirpath, _, _ in os.walk(a.store):
        rel_dir = os.path.relpath(dirpath, a.store)
        os.chmod(os.path.join(a.out, rel_dir),
                 os.stat(dirpath).st_mode & 0o7777)
    return 1 if bad else 0


def cmd_ivs(a):
    seen = {}
    inodes = set()
    dup = 0
    for rel, _ in walk_store(a.store):
        full = os.path.join(a.store, rel)
        st = os.stat(full)
        if (st.st_dev, st.st_ino) in inodes:
            continue            # another name of a hard-linked file
        inodes.add((st.st_dev, st.st_ino))
        with open(full, "rb") as f:
            head = f.read(HEADER)
        try:
            _, iv = parse_header(head)
        except FormatError:
            continue
        h = iv.hex()
        print("%s %s" % (h, rel))
        if h in seen:
            dup += 1
            print("DUPLICATE IV %s: %s and %s" % (h, seen[h], rel),
                  file=sys.stderr)
        seen[h] = rel
    if a.unique:
        print("ivs: %d files, %d duplicate IVs" % (len(seen) + dup, dup),
              file=sys.stderr)
        return 1 if dup else 0
    return 0


# --------------------------------------------------------- self-test

def cmd_verify_vectors(a):
    d = a.vectors
    fails = []

    def check(cond, what):
        if not cond:
            fails.append(what)

    with open(os.path.join(d, "vectors.json")) as f:
        cases = json.load(f)
    check(len(cases) >= 16, "vectors.json has %d cases" % len(cases))
    for c in cases:
        key = bytes.fromhex(c["Key"])
        with open(os.path.join(d, c["Cipher"]), "rb") as f:
            ct = f.read()
        with open(os.path.join(d, c["Plain"]), "rb") as f:
            pt = f.read()
        name = c["Name"]
        check(len(pt) == c["PlainSize"], name + ": plain size")
        check(hashlib.sha256(pt).hexdigest() == c["PlainSHA256"],
              name + ": plain sha256")
        info = {}
        try:
            got = decrypt_bytes(key, ct, info)
        except FormatError as e:
            fails.append("%s: %s" % (name, e))
            continue
        check(got == pt, name + ": decrypt")
        check(info["version"] == int(c["Format"][1:]), name + ": version")
        # Re-encrypting with the file's own IV must give the same bytes:
        # proves the writer side (chunking, nonces, empty final chunk).
        check(encrypt_bytes(key, pt, info["iv"], info["version"]) == ct,
              name + ": re-encrypt differs from CockroachDB's bytes")
        if c["Format"] == "v2":
            check(plain_size(len(ct)) == len(pt), name + ": plain_size")
            check(cipher_size(len(pt)) == len(ct), name + ": cipher_size")
            check(info["last"] < CHUNK, name + ": final chunk short")
            bad_key = bytes(b ^ 1 for b in key)
            try:
                decrypt_bytes(bad_key, ct)
                fails.append(name + ": wrong key accepted")
            except FormatError:
                pass
            for pos in (HEADER, len(ct) // 2, len(ct) - 1, 8):
                flipped = bytearray(ct)
                flipped[pos] ^= 0x40
                try:
                    decrypt_bytes(key, bytes(flipped))
                    fails.append("%s: flip at %d accepted" % (name, pos))
                except FormatError:
                    pass

    # Negative cases named in vectors/README.md.
    key = bytes.fromhex(cases[0]["Key"])
    with open(os.path.join(d, "v2-131072.enc"), "rb") as f:
        ct = f.read()
    for cut in (HEADER + 2 * CHUNK_CT, HEADER + CHUNK_CT, len(ct) - 1,
                HEADER + 2 * CHUNK_CT + 8):
        try:
            decrypt_bytes(key, ct[:cut])
            fails.append("truncation at %d accepted" % cut)
        except FormatError:
            pass
    try:
        decrypt_bytes(key, ct[:7])
        fails.append("7-byte file accepted")
    except FormatError:
        pass
    try:
        decrypt_bytes(key, ct[:6])
        fails.append("6-byte file accepted")
    except FormatError as e:
        check("does not appear to be encrypted" in str(e), "6-byte message")
    try:
        decrypt_bytes(key, ct[:19])
        fails.append("19-byte file accepted")
    except FormatError as e:
        check("invalid encryption header" in str(e), "19-byte message")
    try:
        decrypt_bytes(key, b"a")
        fails.append("'a' accepted")
    except FormatError:
        pass
    # Spliced chunks: swapping chunk 0 and 1 must fail (nonce binds index).
    swapped = (ct[:HEADER] + ct[HEADER + CHUNK_CT:HEADER + 2 * CHUNK_CT]
               + ct[HEADER:HEADER + CHUNK_CT] + ct[HEADER + 2 * CHUNK_CT:])
    try:
        decrypt_bytes(key, swapped)
        fails.append("swapped chunks accepted")
    except FormatError:
        pass

    # spec §6.2 computed vectors (key 00..1f, IV 00..0b).
    k = bytes(range(32))
    iv = bytes(range(12))
    check(encrypt_bytes(k, b"", iv).hex() ==
          "656e637279707402000102030405060708090a0b"
          "f4c2db1dc38805a37b92171c5d0a81cc", "spec empty file")
    check(encrypt_bytes(k, b"hello world\n", iv).hex() ==
          "656e637279707402000102030405060708090a0b"
          "2f67ba77aac5b574ff2df38167d815bb82abfc50a9eecc5c02ba4b11",
          "spec hello world")
    check(hashlib.sha256(encrypt_bytes(k, bytes(65536), iv)).hexdigest() ==
          "bb0489fcac7ec576f3f8f49bd7e201142e9a2d86f23f76f2350f609c798d4a7d",
          "spec 65536 zeros")
    check(chunk_nonce(bytes.fromhex("aabbccddffffffffffffffff"), 1).hex() ==
          "aabbccdd0000000000000000", "nonce wrap")
    for c_, p_ in ((36, 0), (48, 12), (65588, 65536), (65589, 65537),
                   (131140, 131072)):
        check(plain_size(c_) == p_, "plain_size(%d)" % c_)
    check(plain_size(20) is None and plain_size(20 + 65552 + 5) is None,
          "impossible sizes")

    # PBKDF2 (CockroachDB GenerateKey).
    salt = bytes(range(16))
    check(pbkdf2(b"this is a a key", salt).hex() ==
          "be6b0982d19f15f82cb0b2a4a12472bab60ceb1a2d9e58100aed486c3a4717a9",
          "pbkdf2 vector 1")
    check(pbkdf2(b"correct horse battery staple", salt).hex() ==
          "b1799651c8c298d25843d678e5124c0983183ece192a53174a4a04be9675351a",
          "pbkdf2 vector 2")
    check(pbkdf2(b"", bytes(16)).hex() ==
          "54ed67d5e9c1a80664b4537b3c0861f44dd9f5d45339217125e7bc3460e3171b",
          "pbkdf2 empty passphrase")

    # ENCRYPTION-INFO parsing.
    with open(os.path.join(d, "encinfo-passphrase.bin"), "rb") as f:
        pi = parse_encinfo(f.read())
    check(pi["salt"] == salt and not pi["kms"], "encinfo-passphrase")
    with open(os.path.join(d, "encinfo-kms3.bin"), "rb") as f:
        raw = f.read()
    ki = parse_encinfo(raw)
    want = {
        "arn:aws:kms:us-east-1:111122223333:key/"
        "1234abcd-12ab-34cd-56ef-1234567890ab": bytes.fromhex("deadbeef"),
        "projects/p/locations/global/keyRings/r/cryptoKeys/k":
            bytes(range(32)),
        "my-key": b"\x01" * 256,
    }
    check(ki["salt"] == b"" and len(ki["kms"]) == 3, "encinfo-kms3 shape")
    for kid, blob in want.items():
        check(ki["kms"].get(hashlib.sha256(kid.encode()).digest()) == blob,
              "encinfo-kms3 entry " + kid)
    # A cut between top-level fields is a valid shorter message; a cut
    # inside a field must be rejected.
    bounds, pos = {0}, 0
    while pos < len(raw):
        _, pos = _varint(raw, pos)
        n, pos = _varint(raw, pos)
        pos += n
        bounds.add(pos)
    for cut in range(1, len(raw)):
        try:
            parse_encinfo(raw[:cut])
            check(cut in bounds, "encinfo cut at %d accepted" % cut)
        except FormatError:
            check(cut not in bounds, "encinfo cut at %d rejected" % cut)

    # The CockroachDB-layout collection, as RESTORE reads it, and the
    # replay + restore-check round trips (crdb_replay.py).
    fails += selftest_collections(os.path.join(d, "..", "crdb-collection"))

    # The CockroachDB-layout collection: key from its ENCRYPTION-INFO.
    coll = os.path.join(d, "..", "crdb-collection")
    full = os.path.join(coll, "collection", "2023", "07", "14-211406.03")
    if os.path.isdir(full):
        ck = chain_key_from_encinfo(b"correct horse battery staple",
                                    os.path.join(full, ENCINFO))
        check(ck.hex() == "41a43ecbc7f48defc98455b017667d9db11a01e4"
              "576d940e1e6952e402b002cc", "collection chain key")
        exp = os.path.join(coll, "expected", "2023", "07", "14-211406.03")
        for rel in ("BACKUP_MANIFEST", "data/812345678901234567.sst",
                    "data/812345678901234568.sst"):
            with open(os.path.join(full, rel), "rb") as f:
                got = decrypt_bytes(ck, f.read())
            with open(os.path.join(exp, rel), "rb") as f:
                check(got == f.read(), "collection " + rel)

    for f_ in fails:
        print("FAIL: " + f_)
    print("verify-vectors: %d cases, collection and replay round trips, "
          "%d failures" % (len(cases), len(fails)))
    return 1 if fails else 0


def selftest_collections(coll):
    """crdb_restore.py on shared/vectors/crdb-collection and the
    crdb_replay.py + restore-check round trips; failures."""
    import crdb_replay
    import crdb_restore
    tmp = tempfile.mkdtemp(prefix="crdb-selftest.")
    try:
        fails = []
        if os.path.isdir(coll):
            fails += crdb_restore.selftest_collection(coll, tmp)
        else:
            fails.append("no collection vector at %s" % coll)
        fails += crdb_replay.selftest(tmp)
    finally:
        shutil.rmtree(tmp)
    return fails


# -------------------------------------------------------------- CLI

def key_from_args(a):
    if a.key_hex:
        return bytes.fromhex(a.key_hex)
    if a.key_file:
        return read_key_file(a.key_file)
    if a.passphrase_file and a.encinfo:
        return chain_key_from_encinfo(read_passphrase(a.passphrase_file),
                                      a.encinfo)
    raise SystemExit("crdb.py: need --key-hex, --key-file, or "
                     "--passphrase-file with --encinfo")


def add_key_opts(p):
    p.add_argument("--key-hex")
    p.add_argument("--key-file")
    p.add_argument("--passphrase-file")
    p.add_argument("--encinfo")


def write_out(path, data):
    if path and path != "-":
        with open(path, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_vectors = os.environ.get(
        "KMSFS_VECTORS",
        os.path.join(here, "..", "..", "..", "shared", "vectors", "crdb"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("verify-vectors")
    p.add_argument("--vectors", default=default_vectors)
    p = sub.add_parser("decrypt")
    add_key_opts(p)
    p.add_argument("file")
    p.add_argument("-o", "--out")
    p = sub.add_parser("encrypt")
    add_key_opts(p)
    p.add_argument("--iv")
    p.add_argument("--v1", action="store_true")
    p.add_argument("file")
    p.add_argument("-o", "--out")
    p = sub.add_parser("check-tree")
    p.add_argument("--passphrase-file")
    p.add_argument("--structure-only", action="store_true")
    p.add_argument("store")
    p = sub.add_parser("decrypt-tree")
    p.add_argument("--passphrase-file", required=True)
    p.add_argument("store")
    p.add_argument("out")
    p = sub.add_parser("ivs")
    p.add_argument("--unique", action="store_true")
    p.add_argument("store")
    p = sub.add_parser("encinfo")
    p.add_argument("file")
    p = sub.add_parser("chain-key")
    p.add_argument("--passphrase-file", required=True)
    p.add_argument("--encinfo", required=True)
    p = sub.add_parser("plain-size")
    p.add_argument("n", type=int)
    p = sub.add_parser("cipher-size")
    p.add_argument("n", type=int)
    import crdb_restore
    crdb_restore.add_cli(sub)
    a = ap.parse_args()

    try:
        if a.cmd == "verify-vectors":
            return cmd_verify_vectors(a)
        if a.cmd == "decrypt":
            with open(a.file, "rb") as f:
                data = f.read()
            write_out(a.out, decrypt_bytes(key_from_args(a), data))
            return 0
        if a.cmd == "encrypt":
            if a.file == "-":
                data = sys.stdin.buffer.read()
            else:
                with open(a.file, "rb") as f:
                    data = f.read()
            iv = bytes.fromhex(a.iv) if a.iv else None
            write_out(a.out, encrypt_bytes(key_from_args(a), data, iv,
                                           1 if a.v1 else 2))
            return 0
        if a.cmd == "check-tree":
            if not a.structure_only and not a.passphrase_file:
                ap.error("check-tree needs --passphrase-file or "
                         "--structure-only")
            return cmd_check_tree(a)
        if a.cmd == "decrypt-tree":
            return cmd_decrypt_tree(a)
        if a.cmd == "ivs":
            return cmd_ivs(a)
        if a.cmd == "encinfo":
            with open(a.file, "rb") as f:
                info = parse_encinfo(f.read())
            mode = "passphrase" if info["salt"] else "kms"
            print("mode %s" % mode)
            print("scheme %d" % info["scheme"])
            print("salt %s" % info["salt"].hex())
            for k in sorted(info["kms"]):
                print("kms %s %s" % (k.hex(), info["kms"][k].hex()))
            return 0
        if a.cmd == "chain-key":
            print(chain_key_from_encinfo(read_passphrase(a.passphrase_file),
                                         a.encinfo).hex())
            return 0
        if a.cmd == "plain-size":
            print(plain_size(a.n))
            return 0
        if a.cmd == "cipher-size":
            print(cipher_size(a.n))
            return 0
        if a.cmd in ("restore-check", "encrypt-collection"):
            return crdb_restore.run_cli(a, ap)
    except (FormatError, crdb_restore.RestoreError,
            crdb_restore.crdb_kms.KMSError) as e:
        print("crdb.py: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        print("crdb.py: %s" % e, file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    # crdb_restore.py and crdb_replay.py `import crdb`: let them share this
    # module (one FormatError class); no __pycache__ in the source tree.
    sys.modules.setdefault("crdb", sys.modules["__main__"])
    sys.dont_write_bytecode = True
    sys.exit(main())
