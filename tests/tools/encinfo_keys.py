#!/usr/bin/python3
"""encinfo_keys.py - small, independent ENCRYPTION-INFO helpers for tests.

Parses the protobuf by hand (spec cockroach-interop.md §2.1: map entries
are field 3, each with key field 1 = the raw 32-byte SHA-256 of the master
key ID and value field 2 = the wrapped data key) without any kmsfs code.

  keys FILE                  hex of every map key, one per line, file order
                             (exit 1 if the file is not a valid message)
  entries FILE               "KEYHEX VALUELEN" per map entry, file order
  sha256 ID                  hex SHA-256 of a master key ID string
  local-mapkey KEYFILE       map key of a kmsfs file:/// master key
                             (its ID is "kmsfs-local:" + hex of the first
                             16 bytes of HMAC-SHA256(key, "kmsfs local
                             master key id v1"), keystore/local.c)
  local-unwrap KEYFILE FILE  the data key (hex) that FILE's entry for that
                             local key wraps (blob = 01 || nonce(12) ||
                             ct(32) || tag(16), AAD = the master key ID)
"""

import hashlib
import hmac
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Bad(Exception):
    pass


def varint(b, i):
    v = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise Bad("truncated varint at %d" % i)
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """(field number, wire type, value) of every field of one message."""
    i, out = 0, []
    while i < len(b):
        tag, i = varint(b, i)
        num, wt = tag >> 3, tag & 7
        if num == 0:
            raise Bad("field number 0")
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise Bad("truncated length-delimited field %d" % num)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise Bad("wire type %d" % wt)
        if i > len(b):
            raise Bad("truncated field %d" % num)
        out.append((num, wt, v))
    return out


def entries(path):
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for num, wt, v in fields(data):
        if num != 3:
            continue
        if wt != 2:
            raise Bad("field 3 is not length-delimited")
        key = val = None
        for n2, w2, v2 in fields(v):
            if n2 == 1 and w2 == 2:
                key = v2
            elif n2 == 2 and w2 == 2:
                val = v2
        if key is None or len(key) != 32:
            raise Bad("map entry key is not 32 raw bytes")
        out.append((key, val or b""))
    return out


def local_id(keyfile):
    with open(keyfile, "rb") as f:
        key = f.read()
    if len(key) != 32:
        raise Bad("local key file is not 32 bytes")
    md = hmac.new(key, b"kmsfs local master key id v1", hashlib.sha256)
    return key, "kmsfs-local:" + md.digest()[:16].hex()


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "keys":
            for k, _ in entries(argv[2]):
                print(k.hex())
        elif len(argv) == 3 and argv[1] == "entries":
            for k, v in entries(argv[2]):
                print(k.hex(), len(v))
        elif len(argv) == 3 and argv[1] == "sha256":
            print(hashlib.sha256(argv[2].encode()).hexdigest())
        elif len(argv) == 3 and argv[1] == "local-mapkey":
            _, kid = local_id(argv[2])
            print(hashlib.sha256(kid.encode()).hexdigest())
        elif len(argv) == 4 and argv[1] == "local-unwrap":
            key, kid = local_id(argv[2])
            want = hashlib.sha256(kid.encode()).digest()
            blobs = [v for k, v in entries(argv[3]) if k == want]
            if len(blobs) != 1:
                raise Bad("%d entries for this local key" % len(blobs))
            b = blobs[0]
            if len(b) != 61 or b[0] != 1:
                raise Bad("local blob of %d bytes" % len(b))
            dk = AESGCM(key).decrypt(b[1:13], b[13:], kid.encode())
            print(dk.hex())
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (Bad, OSError, ValueError) as e:
        print("encinfo_keys.py: %s" % e, file=sys.stderr)
        return 1
    except Exception as e:  # InvalidTag has no message
        print("encinfo_keys.py: %s" % type(e).__name__, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
