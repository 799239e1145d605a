#!/usr/bin/python3
"""crdb_replay.py - replay the file writes of CockroachDB BACKUPs into a
nodelocal collection directory (later: a kmsfs mount), deterministically.

  crdb_replay.py [options] TARGET        a full backup and N incrementals
  crdb_replay.py --incremental-only ...  N more incrementals of LATEST
  crdb_replay.py --list-versions         the layouts it can mimic
  crdb_replay.py selftest                replay + crdb.py restore-check
                                         round trips without kmsfs

It does what a cluster without an Enterprise licence does when its
external IO directory (or a symlink in it) points at TARGET and it runs
  BACKUP INTO 'nodelocal://1/<dir>' ...           (the full backup)
  BACKUP INTO LATEST IN 'nodelocal://1/<dir>' ... (each incremental)
so every file is PLAINTEXT and each checksum is over the plaintext.  Each
file goes through CockroachDB's local storage writer (pkg/blobs
LocalStorage.Writer): MkdirAll(dir, 0755); CreateTemp(dir, base+"*.tmp"),
i.e. "<final name><random decimal>.tmp", O_EXCL, mode 0600; the bytes in
several write() calls; fsync; close; rename onto the final name.  Before
each incremental it reads what BACKUP INTO LATEST reads, through TARGET:
LATEST (first entry of metadata/latest/, else the root file), the listing
of the chain's incremental layers, and every layer's BACKUP_METADATA and
BACKUP_MANIFEST with its -CHECKSUM (must be SHA-256(file)[:4]); and no
destination may already hold a manifest, lock or checkpoint.

Files of one backup, in order (backup_job.go, backupinfo; v25.x, older
layouts drop what they did not write):
  BACKUP-LOCK-<job id>                               "lock" (22.1+)
  progress/BACKUP-CHECKPOINT-<hexdesc(now)>, its -CHECKSUM   (22.1+;
      before: BACKUP-CHECKPOINT in the backup dir, renamed over in place)
  data/<n>.sst..., a second checkpoint half way, data/<n>.sst...
  BACKUP_MANIFEST, BACKUP_MANIFEST-CHECKSUM
  filelist.sst, descriptorslist.sst, BACKUP_METADATA, its -CHECKSUM (23.1+)
  BACKUP-STATISTICS
  metadata/index/<hexdesc(full end)>_<full end>/
      <hexdesc(end)>_<start|0>_<end>_metadata.pb     (25.4+)
  full backups only: metadata/latest/LATEST-<hexdesc(now)> (22.1+), or
      the root LATEST (before 22.1), holding "/YYYY/MM/DD-HHMMSS.ss"
Directories: full = YYYY/MM/DD-HHMMSS.ss (its end time, hundredths);
incrementals = incrementals/<full>/YYYYMMDD/HHMMSS.ss (22.1+), plus
"-YYYYMMDD-HHMMSS.ss" (its start time) from v25.2, or
<full>/YYYYMMDD/HHMMSS.ss before 22.1.  <hexdesc(now)> = hex of
EncodeStringDescending(Go time.String() of a simulated clock): the newest
name sorts first, as in CockroachDB; index names use EncodeDescendingTS.
Contents are pseudo-random (SHAKE-256 of seed and path; manifests and
checkpoints gzipped, BACKUP-STATISTICS not): names, sizes (data SSTs on
the 64 KiB chunk edges), order and write pattern are CockroachDB's; the
bytes are not real SSTs or protobufs.  Same seed and options, same tree.

--manifest FILE gets JSON whose "files" maps every path of the collection
(as this and, with --incremental-only, the earlier run left it) to the
sha256 of its plaintext: what a kmsfs mount must show and what
`crdb.py restore-check STORE ... --expect-manifest FILE` compares the
backing store with.  Exit 0 ok, 1 a write or a read-back failed, 2 usage.

Mount test recipe (kmsfs mounted STORE on MNT with a crdb profile):
  crdb_replay.py --manifest M.json MNT           (or into MNT/sub, etc.)
  fusermount3 -u MNT
  crdb.py restore-check STORE --passphrase-file P --expect-manifest M.json
  crdb.py restore-check STORE --kms-file K1 --expect-manifest M.json
"""

import argparse
import datetime
import gzip
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor

sys.dont_write_bytecode = True

# layouts: CockroachDB versions -> features of their collections
VERSIONS = {
    "21.2": dict(lock=False, progress=False, history=False, meta_ssts=False,
                 inc_dir="full", inc_start=False, index=False,
                 covers="v21.2 (the pre-22.1 layout: incrementals in "
                        "the full backup directory, root LATEST)"),
    "22.2": dict(lock=True, progress=True, history=True, meta_ssts=False,
                 inc_dir="incrementals", inc_start=False, index=False,
                 covers="v22.1 and v22.2"),
    "23.1": dict(lock=True, progress=True, history=True, meta_ssts=True,
                 inc_dir="incrementals", inc_start=False, index=False,
                 covers="v23.1 to v25.1"),
    "25.2": dict(lock=True, progress=True, history=True, meta_ssts=True,
                 inc_dir="incrementals", inc_start=True, index=False,
                 covers="v25.2 and v25.3"),
    "25.4": dict(lock=True, progress=True, history=True, meta_ssts=True,
                 inc_dir="incrementals", inc_start=True, index=True,
                 covers="v25.4 and later (backup index written)"),
}
DEFAULT_VERSION = "25.2"
DEFAULT_TIME = "2025-07-30T12:00:00.00"
# data SST sizes per backup: chunk edges of the v2 format (64 KiB)
SST_SIZES = [[1, 65535, 65536, 65537, 200000, 300017],
             [131072, 4096, 70000],
             [65520, 131073, 17]]


class ReplayError(Exception):
    pass


# ------------------------------------------------------------ encodings

def go_time_string(t):
    """Go's time.Time.String() of a UTC time (fraction without trailing
    zeros), as timeutil.Now().String() gives it."""
    s = t.strftime("%Y-%m-%d %H:%M:%S")
    if t.microsecond:
        s += ("." + "%06d" % t.microsecond).rstrip("0")
    return s + " +0000 UTC"


def hexdesc_string(s):
    """hex(encoding.EncodeStringDescending(s)): 0x13, the bytes with 0x00
    escaped as 00 ff and terminated by 00 01, all but the marker inverted."""
    body = s.encode().replace(b"\x00", b"\x00\xff") + b"\x00\x01"
    return (b"\x13" + bytes(b ^ 0xFF for b in body)).hex()


def hexdesc_ts(t):
    """backuputils.EncodeDescendingTS: EncodeUvarintDescending(UnixMilli)."""
    d = t - datetime.datetime(1970, 1, 1)
    v = d.days * 86400000 + d.seconds * 1000 + d.microseconds // 1000
    n = (v.bit_length() + 7) // 8
    if v == 0:
        return "88"
    inv = (~v) & ((1 << (8 * n)) - 1)
    return (bytes([0x80 + 8 - n]) + inv.to_bytes(n, "big")).hex()


def hundredths(t):
    return "%02d" % (t.microsecond // 10000)


def full_subdir(t):
    return t.strftime("/%Y/%m/%d-%H%M%S.") + hundredths(t)


def inc_subdir(start, end, with_start):
    s = end.strftime("%Y%m%d/%H%M%S.") + hundredths(end)
    if with_start:
        s += start.strftime("-%Y%m%d-%H%M%S.") + hundredths(start)
    return s


def index_ts(t):
    return t.strftime("%Y%m%d-%H%M%S.") + hundredths(t)


def content(seed, rel, n):
    return hashlib.shake_256(b"crdb_replay %d %s" % (seed, rel.encode())) \
        .digest(n) if n else b""


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def checksum(data):
    return hashlib.sha256(data).digest()[:4]


# ------------------------------------------------------------ writer

class Collection:
    """Writes through CockroachDB's nodelocal pattern; records the files."""

    def __init__(self, target, seed, fsync=True, log=None):
        self.target = target
        self.seed = seed
        self.fsync = fsync
        self.log = log
        self.files = {}     # rel -> sha256 hex of the final content
        self.writes = []
        self.lock = threading.Lock()

    def _rng(self, rel, what):
        h = hashlib.sha256(b"%d %s %s" % (self.seed, what, rel.encode()))
        return random.Random(h.digest())

    def put(self, rel, data):
        full = os.path.join(self.target, rel)
        d, base = os.path.split(full)
        os.makedirs(d, mode=0o755, exist_ok=True)
        rng = self._rng(rel, b"tmp")
        while True:
            tmp = os.path.join(d, "%s%d.tmp" % (base, rng.getrandbits(32)))
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL |
                             os.O_CLOEXEC, 0o600)
                break
            except FileExistsError:
                continue
        try:
            pos = 0
            while pos < len(data):
                n = rng.randint(1, 96 * 1024) if len(data) > 4096 \
                    else len(data)
                pos += os.write(fd, data[pos:pos + n])
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, full)
        with self.lock:
            self.files[rel] = hashlib.sha256(data).hexdigest()
            self.writes.append(rel)
        if self.log:
            self.log("wrote %s (%d bytes via %s)"
                     % (rel, len(data), os.path.basename(tmp)))

    def get(self, rel):
        with open(os.path.join(self.target, rel), "rb") as f:
            return f.read()

    def exists(self, rel):
        return os.path.lexists(os.path.join(self.target, rel))

    def listdir(self, rel):
        p = os.path.join(self.target, rel)
        return sorted(os.listdir(p)) if os.path.isdir(p) else []


# ------------------------------------------------------------ backups

class Replay:
    def __init__(self, coll, version, when, jobs=1, scale=1):
        self.c = coll
        self.v = VERSIONS[version]
        self.version = version
        self.clock = when + datetime.timedelta(seconds=1)
        self.jobs = jobs
        self.scale = scale
        self.backups = []

    def now(self, ms=7):
        self.clock += datetime.timedelta(milliseconds=ms)
        return self.clock

    def uid(self, rel, what):
        """A CockroachDB-like unique_rowid()/job id: a large decimal."""
        r = self.c._rng(rel, what)
        return 800000000000000000 + r.randrange(10 ** 17)

    def read_latest(self):
        hist = self.c.listdir("metadata/latest")
        rel = "metadata/latest/" + hist[0] if hist else "LATEST"
        if not self.c.exists(rel):
            raise ReplayError("BACKUP INTO LATEST: no LATEST file")
        sub = self.c.get(rel).decode()
        if not sub.startswith("/") or not self.c.exists(sub.strip("/")):
            raise ReplayError("%s names %r, not a backup directory"
                              % (rel, sub))
        return sub

    def read_manifest(self, layer):
        """ReadBackupManifest of a prior layer, through the target:
        BACKUP_METADATA (23.1+) and BACKUP_MANIFEST, each checked against
        its -CHECKSUM (over the plaintext: the cluster's files are)."""
        for name in ("BACKUP_METADATA", "BACKUP_MANIFEST"):
            m = layer + "/" + name
            if not self.v["meta_ssts"] and name == "BACKUP_METADATA":
                continue
            data, want = self.c.get(m), self.c.get(m + "-CHECKSUM")
            if checksum(data) != want:
                raise ReplayError("%s: checksum mismatch; expected %s, got %s "
                                  "(read back through the target)"
                                  % (m, want.hex(), checksum(data).hex()))
            if data[:3] != b"\x1f\x8b\x08":
                raise ReplayError("%s: not the gzip manifest written" % m)
            if hashlib.sha256(data).hexdigest() != \
                    self.c.files.get(m, hashlib.sha256(data).hexdigest()):
                raise ReplayError("%s: reads back different bytes" % m)

    def list_layers(self, base):
        """The incremental layers FindPriorBackups lists under base:
        YYYYMMDD/HHMMSS.ss[-YYYYMMDD-HHMMSS.ss] holding a BACKUP_MANIFEST."""
        out = []
        for day in self.c.listdir(base):
            if len(day) != 8 or not day.isdigit():
                continue
            for t in self.c.listdir(base + "/" + day):
                rel = "%s/%s/%s" % (base, day, t)
                if t[:6].isdigit() and t[6:7] == "." and \
                        self.c.exists(rel + "/BACKUP_MANIFEST"):
                    out.append(rel)
        return out

    def check_destination(self, d):
        for n in self.c.listdir(d):
            if n in ("BACKUP_MANIFEST", "BACKUP_METADATA") or \
                    n.startswith("BACKUP-LOCK-") or \
                    n.startswith("BACKUP-CHECKPOINT"):
                raise ReplayError("%s already contains a %s file" % (d, n))

    def checkpoint(self, d, idx):
        name = "BACKUP-CHECKPOINT"
        if self.v["progress"]:
            name = "progress/BACKUP-CHECKPOINT-" + hexdesc_string(
                go_time_string(self.now()))
        data = gz(content(self.c.seed, "%s#%d" % (d, idx), 900 + 300 * idx))
        self.c.put("%s/%s" % (d, name), data)
        self.c.put("%s/%s-CHECKSUM" % (d, name), checksum(data))

    def data_files(self, d, sizes, first):
        rels = ["%s/data/%d.sst" % (d, self.uid("%s/%d" % (d, i), b"sst"))
                for i in range(first, first + len(sizes))]
        work = [(r, content(self.c.seed, r, n)) for r, n in zip(rels, sizes)]
        if self.jobs > 1:
            with ThreadPoolExecutor(self.jobs) as ex:
                list(ex.map(lambda rw: self.c.put(*rw), work))
        else:
            for rw in work:
                self.c.put(*rw)

    def manifest_like(self, d, name, n):
        data = gz(content(self.c.seed, "%s/%s" % (d, name), n))
        self.c.put("%s/%s" % (d, name), data)
        self.c.put("%s/%s-CHECKSUM" % (d, name), checksum(data))

    def one(self, d, sizes, full_sub, start, end):
        """One BACKUP job writing into directory d."""
        self.check_destination(d)
        if self.v["lock"]:
            self.c.put("%s/BACKUP-LOCK-%d" % (d, self.uid(d, b"job")),
                       b"lock")
        self.checkpoint(d, 0)
        half = len(sizes) // 2
        self.data_files(d, sizes[:half], 0)
        self.checkpoint(d, 1)
        self.data_files(d, sizes[half:], half)
        self.manifest_like(d, "BACKUP_MANIFEST", 2000 + 40 * len(sizes))
        if self.v["meta_ssts"]:
            for n, size in (("filelist.sst", 1500), ("descriptorslist.sst",
                                                      2600)):
                self.c.put("%s/%s" % (d, n),
                           content(self.c.seed, d + "/" + n, size))
            self.manifest_like(d, "BACKUP_METADATA", 700)
        self.c.put(d + "/BACKUP-STATISTICS",
                   content(self.c.seed, d + "/BACKUP-STATISTICS", 333))
        if self.v["index"]:
            self.index(full_sub, start, end)
        if start is None:
            self.latest(full_sub)

    def index(self, full_sub, start, end):
        fe = datetime.datetime.strptime(full_sub, "/%Y/%m/%d-%H%M%S.%f")
        name = "%s_%s_%s_metadata.pb" % (
            hexdesc_ts(end), index_ts(start) if start else "0",
            index_ts(end))
        rel = "metadata/index/%s_%s/%s" % (hexdesc_ts(fe), index_ts(fe), name)
        self.c.put(rel, content(self.c.seed, rel, 60))

    def latest(self, full_sub):
        if self.v["history"]:
            rel = "metadata/latest/LATEST-" + hexdesc_string(
                go_time_string(self.now()))
        else:
            rel = "LATEST"
        self.c.put(rel, full_sub.encode())

    def full(self, when):
        full_sub = full_subdir(when)
        self.one(full_sub.strip("/"), SST_SIZES[0] * self.scale, full_sub,
                 None, when)
        self.backups.append({"kind": "full", "dir": full_sub.strip("/"),
                             "end": when.isoformat()})

    def inc_base(self, sub):
        if self.v["inc_dir"] == "incrementals":
            return "incrementals" + sub
        return sub.strip("/")

    def resume(self):
        """The chain LATEST names, rebuilt from the target's listing
        (--incremental-only: earlier backups were written by another run)."""
        sub = self.read_latest()
        self.backups = [{"kind": "full", "dir": sub.strip("/"), "end":
                         datetime.datetime.strptime(
                             sub, "/%Y/%m/%d-%H%M%S.%f").isoformat()}]
        for layer in self.list_layers(self.inc_base(sub)):
            end = datetime.datetime.strptime(
                "/".join(layer.split("/")[-2:])[:18], "%Y%m%d/%H%M%S.%f")
            self.backups.append({"kind": "incremental", "dir": layer,
                                 "end": end.isoformat()})
        self.clock = max(self.clock, datetime.datetime.fromisoformat(
            self.backups[-1]["end"]) + datetime.timedelta(seconds=1))

    def incremental(self):
        """BACKUP INTO LATEST: resolve LATEST, list and read the prior
        layers through the target, then write the next layer."""
        k = len(self.backups) - 1
        start = datetime.datetime.fromisoformat(self.backups[-1]["end"])
        end = start + datetime.timedelta(hours=1, milliseconds=370 * k)
        self.clock = max(self.clock, end) + datetime.timedelta(seconds=1)
        sub = self.read_latest()
        base = self.inc_base(sub)
        layers = [sub.strip("/")] + self.list_layers(base)
        if layers != [b["dir"] for b in self.backups]:
            raise ReplayError("listing %s gives layers %r, expected %r"
                              % (base, layers,
                                 [b["dir"] for b in self.backups]))
        for layer in layers:
            self.read_manifest(layer)
        d = "%s/%s" % (base, inc_subdir(start, end, self.v["inc_start"]))
        self.one(d, SST_SIZES[1 + k % 2] * self.scale, sub, start, end)
        self.backups.append({"kind": "incremental", "dir": d,
                             "start": start.isoformat(),
                             "end": end.isoformat()})


def replay(target, seed=1, version=DEFAULT_VERSION, when=None,
           incrementals=2, jobs=1, scale=1, fsync=True, log=None,
           full=True, known=None):
    """Replay into target a full backup (unless full=False: BACKUP INTO
    LATEST only) and `incrementals` incrementals; the manifest dict.
    known: {path: sha256 hex} of files an earlier run wrote (its
    manifest's "files"), kept in the returned manifest."""
    when = when or datetime.datetime.strptime(DEFAULT_TIME,
                                              "%Y-%m-%dT%H:%M:%S.%f")
    coll = Collection(target, seed, fsync, log)
    coll.files.update(known or {})
    r = Replay(coll, version, when, jobs, scale)
    if full:
        r.full(when)
    else:
        r.resume()
    for _ in range(incrementals):
        r.incremental()
    return {"tool": "crdb_replay.py", "version": version,
            "covers": VERSIONS[version]["covers"], "seed": seed,
            "latest": "/" + r.backups[0]["dir"], "backups": r.backups,
            "writes": coll.writes, "files": dict(sorted(coll.files.items()))}


# ------------------------------------------------------------ self-test

def selftest(tmp):
    """Round trips without kmsfs; a list of failures."""
    import crdb
    import crdb_restore as cr
    fails = []
    key_a, key_b, key_c = (os.path.join(tmp, k) for k in ("a.key", "b.key",
                                                           "c.key"))
    for k in (key_a, key_b, key_c):
        with open(k, "wb") as f:
            f.write(os.urandom(32))
    if hexdesc_string("a") != "139efffe" or hexdesc_ts(
            datetime.datetime(1970, 1, 1, 0, 0, 0, 1000)) != "87fe" or \
            go_time_string(datetime.datetime(2025, 7, 30, 12, 0, 1, 7000)) \
            != "2025-07-30 12:00:01.007 +0000 UTC":
        fails.append("descending name encodings")
    pp = cr.KeySpec("passphrase", passphrase=b"correct horse battery staple")
    for version in sorted(VERSIONS):
        plain = os.path.join(tmp, "plain-" + version)
        m = replay(plain, seed=7, version=version, fsync=False)
        exp = {r: bytes.fromhex(h) for r, h in m["files"].items()}
        leftovers = [r for r in cr.walk_files(plain) if cr.TMP_RE.search(r)]
        if leftovers or sorted(cr.walk_files(plain)) != sorted(exp):
            fails.append("%s: replay tree differs from its manifest" % version)
        res = cr.check_collection(plain)         # as an unencrypted RESTORE
        cr.compare(res, exp, by_hash=True)
        fails += ["%s plaintext: %s" % (version, p) for p in res.problems]
        if len(res.layers.get(m["latest"], [])) != 3:
            fails.append("%s: %r layers" % (version, res.layers))
        for b, sizes in zip(m["backups"], (SST_SIZES[0], SST_SIZES[1],
                                           SST_SIZES[2])):
            n = len([r for r in exp if r.startswith(b["dir"] + "/data/")])
            if n != len(sizes):
                fails.append("%s: %d data files in %s" % (version, n,
                                                          b["dir"]))
            prog = os.path.join(plain, b["dir"], "progress")
            if VERSIONS[version]["progress"] and \
                    b["dir"] + "/progress/" + sorted(os.listdir(prog))[0] \
                    != [w for w in m["writes"] if "/progress/" in w and
                        w.startswith(b["dir"] + "/")][-2]:
                fails.append("%s: newest checkpoint does not sort first"
                             % version)
        store = os.path.join(tmp, "store-" + version)
        cr.encrypt_collection(plain, store, pp)
        res = cr.check_collection(store, "LATEST", pp)
        cr.compare(res, exp, by_hash=True)
        fails += ["%s passphrase: %s" % (version, p) for p in res.problems]
        if res.counts["encrypted"] < 10:
            fails.append("%s: only %d encrypted files"
                         % (version, res.counts["encrypted"]))
    # determinism, and parallel data writes give the same tree
    again = os.path.join(tmp, "again")
    m2 = replay(again, seed=7, version="25.2", jobs=4, fsync=False)
    if m2["files"] != replay(os.path.join(tmp, "again1"), seed=7,
                             version="25.2", fsync=False)["files"]:
        fails.append("replay is not deterministic")
    # full + 1 incremental, then --incremental-only: the same collection
    split = os.path.join(tmp, "split")
    m3 = replay(split, seed=7, version="25.2", incrementals=1, fsync=False)
    m3 = replay(split, seed=7, version="25.2", incrementals=1, fsync=False,
                full=False, known=m3["files"])
    if m3["files"] != m2["files"]:
        fails.append("--incremental-only does not continue the chain")
    f = os.path.join(split, m3["backups"][2]["dir"],
                     "BACKUP_MANIFEST-CHECKSUM")
    with open(f, "wb") as fh:
        fh.write(b"\0\0\0\0")
    try:
        replay(split, seed=7, version="25.2", incrementals=1, fsync=False,
               full=False)
        fails.append("a wrong checksum read back was accepted")
    except ReplayError as e:
        if "checksum mismatch" not in str(e):
            fails.append("wrong checksum read back: %s" % e)
    # a KMS chain: ENCRYPTION-INFO (key a) and ENCRYPTION-INFO-2 (key b)
    ua, ub, uc = ("file://" + k for k in (key_a, key_b, key_c))
    store = os.path.join(tmp, "store-kms")
    exp = {r: bytes.fromhex(h) for r, h in m2["files"].items()}
    cr.encrypt_collection(again, store, cr.KeySpec("kms"), [[ua], [ub]])
    for uris, want in (([ub], None), ([ua], None), ([ub, ua], "one of the "),
                       ([uc], "one of the provided")):
        res = cr.check_collection(store, "LATEST", cr.KeySpec("kms",
                                                              uris=uris))
        if want is None:
            cr.compare(res, exp, by_hash=True)
            fails += ["kms %d: %s" % (len(uris), p) for p in res.problems]
        elif not any(want in p for p in res.problems):
            fails.append("kms %r: no %r in %r" % (uris, want, res.problems))
    # the store of a replay must not pass as plaintext, nor its tree as
    # encrypted
    res = cr.check_collection(store)
    if not any("appears encrypted" in p for p in res.problems):
        fails.append("encrypted store accepted without a key")
    res = cr.check_collection(again, "LATEST", pp)
    if not res.problems:
        fails.append("plaintext tree accepted as an encrypted store")
    # a rewritten manifest whose checksum was not recomputed
    f = os.path.join(store, m2["backups"][1]["dir"], "BACKUP_MANIFEST")
    data = open(f, "rb").read()
    with open(f, "wb") as fh:
        fh.write(crdb.encrypt_bytes(os.urandom(32), b"x"))
    res = cr.check_collection(store, "LATEST", cr.KeySpec("kms", uris=[ub]))
    if not any("checksum mismatch" in p for p in res.problems):
        fails.append("stale checksum not detected: %r" % res.problems)
    with open(f, "wb") as fh:
        fh.write(data)
    return fails


# ------------------------------------------------------------ CLI

def main():
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    ap.add_argument("target", nargs="?",
                    help="collection directory, or 'selftest'")
    ap.add_argument("--version", dest="crdb_version", default=DEFAULT_VERSION,
                    choices=sorted(VERSIONS),
                    help="CockroachDB layout (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time", default=DEFAULT_TIME,
                    help="end time of the full backup, UTC "
                         "(default %(default)s)")
    ap.add_argument("--incrementals", type=int, default=2)
    ap.add_argument("--incremental-only", action="store_true",
                    help="no full backup: BACKUP INTO LATEST of an existing "
                         "collection; an existing --manifest is extended")
    ap.add_argument("--scale", type=int, default=1,
                    help="repeat the data SST list this many times")
    ap.add_argument("--jobs", type=int, default=1,
                    help="threads writing data SSTs (contents unchanged)")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--manifest", help="write the JSON manifest here")
    ap.add_argument("--list-versions", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    if a.list_versions:
        for k in sorted(VERSIONS):
            print("%s  %s" % (k, VERSIONS[k]["covers"]))
        return 0
    if a.target == "selftest":
        tmp = tempfile.mkdtemp(prefix="crdb-replay-selftest.")
        try:
            fails = selftest(tmp)
        finally:
            shutil.rmtree(tmp)
        for f in fails:
            print("FAIL: " + f)
        print("crdb_replay selftest: %d failures" % len(fails))
        return 1 if fails else 0
    if not a.target:
        ap.error("need a TARGET directory")
    try:
        when = datetime.datetime.strptime(a.time, "%Y-%m-%dT%H:%M:%S.%f")
    except ValueError:
        ap.error("--time must look like %s" % DEFAULT_TIME)
    log = (lambda s: print("crdb_replay: " + s)) if a.verbose else None
    known = None
    if a.incremental_only and a.manifest and os.path.exists(a.manifest):
        with open(a.manifest) as f:
            known = json.load(f)["files"]
    try:
        m = replay(a.target, a.seed, a.crdb_version, when, a.incrementals,
                   a.jobs, a.scale, not a.no_fsync, log,
                   not a.incremental_only, known)
    except (ReplayError, OSError, ValueError) as e:
        print("crdb_replay: %s" % e, file=sys.stderr)
        return 1
    if a.manifest:
        with open(a.manifest, "w") as f:
            json.dump(m, f, indent=1)
            f.write("\n")
    print("crdb_replay: %s layout, %d backups, %d files written (%d final), "
          "LATEST -> %s" % (a.crdb_version, len(m["backups"]),
                            len(m["writes"]), len(m["files"]), m["latest"]))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
