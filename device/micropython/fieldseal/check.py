# Measure the application on external storage against the manifest, and serve exactly
# the verified bytes to the importer through a read-only VFS (micropython-hardening.md §2.4).
import uio
import uos
from uhashlib import sha256
from fieldseal import cbor
from fieldseal.fscrypto import ct_eq, H

CHUNK = 512
IMPORTABLE = (".mpy", ".py")
S_IFDIR = 0x4000
S_IFREG = 0x8000


class Manifest:
    """The manifest the guard enforces: the frozen _fieldseal_manifest module, or a higher
    version installed by a manifest token (kept on internal storage as CBOR)."""

    def __init__(self, product, version, root, files, mutable, policy):
        self.product = product
        self.version = version
        self.root = root
        self.files = files  # ((path, size, sha256), ...) sorted by path
        self.mutable = tuple(mutable)
        self.policy = policy  # dict: on_mismatch, on_cover_open, check_interval, report_interval, extra_files
        self.index = {}
        for i, f in enumerate(files):
            self.index[f[0]] = i

    @staticmethod
    def frozen():
        import _fieldseal_manifest as m

        return Manifest(m.PRODUCT, m.VERSION, m.ROOT, m.FILES, m.MUTABLE, dict(m.POLICY))

    @staticmethod
    def from_cbor(payload):
        """Decode a wire.Manifest payload (protocol.md keys 1..8) and check its root."""
        m = cbor.dec(payload, maxlen=1 << 20, maxitems=1 << 16)
        files = tuple((f[0], f[1], f[2]) for f in m[4])
        if not ct_eq(H(cbor.enc([list(f) for f in files])), m[7]):
            raise ValueError("root does not match the file list")
        p = m[6]
        policy = {"on_mismatch": p[1], "on_cover_open": p[2], "check_interval": p[3],
                  "report_interval": p[4], "extra_files": p[5]}
        return Manifest(m[1], m[2], m[7], files, m[5] or (), policy)

    def is_mutable(self, path):
        for pre in self.mutable:
            if path.startswith(pre):
                return True
        return False


def walk(root, rel=""):
    """Every file under root, as '/'-separated paths relative to root."""
    try:
        it = uos.ilistdir(root + ("/" + rel if rel else ""))
    except OSError:
        return
    for e in it:
        name = e[0]
        p = rel + "/" + name if rel else name
        if e[1] & S_IFDIR:
            yield from walk(root, p)
        else:
            yield p


_chunk = bytearray(CHUNK)  # one read buffer for the guard's whole life: bounded RAM


def hash_file(full, size, keep):
    """Stream a file through SHA-256 in CHUNK-byte pieces. With keep, the first size bytes
    are kept in one buffer (the verified copy); returns (digest, buffer or None, length)."""
    h = sha256()
    buf = None
    total = 0
    with open(full, "rb") as f:
        if keep:
            buf = f.read(size)  # one allocation of at most the manifest's size
            total = len(buf)
            h.update(buf)
        cm = memoryview(_chunk)
        while True:
            n = f.readinto(_chunk)
            if not n:
                break
            h.update(cm[:n])
            total += n
    return h.digest(), buf, total


def mpy_problem(b):
    """The structural check `fieldseal build` applies to every .mpy (manifest.ParseMpy):
    None for a whole bytecode .mpy v6, else why not. MicroPython's loader trusts a .mpy
    completely (a truncated one hangs the import forever, a native one runs machine code),
    so a modified module that fails this is never handed to it (D6)."""
    n = len(b)
    if n < 4 or b[0] != 0x4D:
        return "not a .mpy" if n and b[0] != 0x4D else "truncated"
    if b[1] != 6 or b[2] & 0x80 or not 8 <= b[3] <= 64:
        return "unsupported .mpy header"
    if (b[2] >> 2) & 0x0F:
        return "native code"
    pos = [4]

    def vuint():
        v = 0
        for _ in range(9):
            if pos[0] >= n:
                raise IndexError
            c = b[pos[0]]
            pos[0] += 1
            v = (v << 7) | (c & 0x7F)
            if not c & 0x80:
                return v
        raise ValueError

    def skip(k):
        if k > n - pos[0]:
            raise IndexError
        pos[0] += k

    def obj(depth):
        if depth > 64 or pos[0] >= n:
            raise IndexError
        t = b[pos[0]]
        pos[0] += 1
        if t <= 4:
            return
        if t == 10:
            k = vuint()
            if k > n - pos[0]:
                raise IndexError
            for _ in range(k):
                obj(depth + 1)
        elif t in (5, 6):
            skip(vuint() + 1)
        elif t in (7, 8, 9):
            skip(vuint())
        else:
            raise ValueError

    def raw(depth):
        if depth > 64:
            raise ValueError
        kl = vuint()
        if kl & 3:
            return True  # native raw code
        skip(kl >> 3)
        if kl & 4:
            k = vuint()
            if k > n - pos[0]:
                raise IndexError
            for _ in range(k):
                if raw(depth + 1):
                    return True
        return False

    try:
        if b[2] & 0x40:
            vuint()
        nq = vuint()
        no = vuint()
        if nq > n or no > n:
            return "truncated"
        for _ in range(nq):
            q = vuint()
            if not q & 1:
                skip((q >> 1) + 1)
        for _ in range(no):
            obj(0)
        if raw(0):
            return "native code"
    except IndexError:
        return "truncated"
    except (ValueError, RuntimeError):
        return "malformed"
    if pos[0] != n:
        return "malformed"
    return None


MAX_FINDINGS = 64
MAX_NAME = 160  # bytes of an attacker-chosen file name kept in findings and log entries


def clip(name):
    return name if len(name) <= MAX_NAME else name[:MAX_NAME]


class Result:
    def __init__(self):
        self.more = 0  # findings beyond MAX_FINDINGS, counted only
        self.bad = []  # [path, kind, expected prefix, seen prefix]
        self.files = 0
        self.kept = {}
        self.ms = 0

    def kinds(self):
        d = {}
        for b in self.bad:
            d[b[0]] = b[1]
        return d


def measure(man, ext, keep_modules, feed=None):
    """Hash every manifest file on ext; with keep_modules, keep the verified bytes of every
    importable module. Extra files are flagged unless the policy says ignore."""
    r = Result()
    report_policy = man.policy.get("on_mismatch") == "report"
    for path, size, digest in man.files:
        if feed:
            feed()  # the watchdog: hashing a large app takes a while
        r.files += 1
        full = ext + "/" + path
        keep = keep_modules and path.endswith(IMPORTABLE)
        try:
            d, buf, n = hash_file(full, size, keep)
        except MemoryError:
            raise
        except Exception:
            try:
                st = uos.stat(full)
            except OSError:
                r.bad.append([path, "missing", digest[:8], b""])
                continue
            r.bad.append([path, "modified" if st[0] & S_IFDIR else "unreadable", digest[:8], b""])
            continue
        if n == size and d == digest:  # digests of files are not secrets: plain compare
            if buf is not None:
                r.kept[path] = buf
        else:
            r.bad.append([path, "modified", digest[:8], d[:8]])
            if keep and report_policy:
                # policy "report": the modified module is served (and logged as such); keep
                # the whole file, bounded, whatever its size now
                # bounded, whatever its size now; a .mpy only if it passes build's structural
                # check (a truncated one would hang the loader forever, D6)
                try:
                    with open(full, "rb") as f:
                        buf = f.read(4 * size + 4096)
                    if not path.endswith(".mpy") or mpy_problem(buf) is None:
                        r.kept[path] = buf
                except OSError:
                    pass
    if man.policy.get("extra_files", "flag") != "ignore":
        for p in walk(ext):
            if p not in man.index and not man.is_mutable(p):
                if len(r.bad) >= MAX_FINDINGS:  # an attacker may write thousands of files
                    r.more += 1
                    continue
                r.bad.append([clip(p), "extra", b"", b""])
    return r


class VerifiedFS:
    """Read-only VFS over the manifest: stat/open answer only for files that verified.
    Kept module bytes are served from RAM; anything else is read once, hashed and served
    from that same buffer, so what the importer gets is exactly what was hashed (D3)."""

    def __init__(self, guard):
        self.g = guard
        self.dirs = set()
        for f in guard.man.files:
            p = f[0]
            i = p.rfind("/")
            while i > 0:
                p = p[:i]
                self.dirs.add(p)
                i = p.rfind("/")

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    def _rel(self, p):
        return p.strip("/")

    def _allowed(self, rel):
        """Index of rel in the manifest if it may be served; logs a refusal once otherwise."""
        g = self.g
        i = g.man.index.get(rel)
        kind = g.bad_kinds.get(rel) if g.bad_kinds else None
        if i is not None and kind is None:
            if g.man.policy.get("on_cover_open") == "refuse" and g.cover_was_open():
                g.refuse(rel, "cover-open")  # policy: no code loads until a clear token
                return None
            return i
        if i is not None:
            if g.man.policy.get("on_mismatch") == "report" and rel in g.kept:
                return i
            g.refuse(rel, kind)
            return None
        # not in the manifest: never served; refused and logged if the last check found it
        # on storage (D4, D5). Plain probes of the importer (x.py before x.mpy) cost no I/O.
        if kind == "extra":
            g.refuse(rel, "not-in-manifest")
        elif g.bad_kinds:
            pre = rel + "/"
            for k in g.bad_kinds:
                if k.startswith(pre):  # an extra package
                    g.refuse(rel, "not-in-manifest")
                    break
        return None

    def stat(self, p):
        rel = self._rel(p)
        if rel == "" or rel in self.dirs:
            return (S_IFDIR, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        i = self._allowed(rel)
        if i is None:
            raise OSError(2)
        return (S_IFREG, 0, 0, 0, 0, 0, self.g.man.files[i][1], 0, 0, 0)

    def ilistdir(self, p):
        rel = self._rel(p)
        pre = rel + "/" if rel else ""
        seen = set()
        for f in self.g.man.files:
            q = f[0]
            if q.startswith(pre):
                name = q[len(pre):]
                j = name.find("/")
                if j >= 0:
                    name = name[:j]
                    if name not in seen:
                        seen.add(name)
                        yield (name, S_IFDIR, 0, 0)
                elif self.g.bad_kinds.get(q) is None:
                    yield (name, S_IFREG, 0, f[1])

    def open(self, p, mode):
        if "w" in mode or "a" in mode or "+" in mode:
            raise OSError(30)  # EROFS
        rel = self._rel(p)
        i = self._allowed(rel)
        if i is None:
            raise OSError(2)
        g = self.g
        buf = g.kept.pop(rel, None)
        if buf is None:
            path, size, digest = g.man.files[i]
            try:
                d, buf, n = hash_file(g.ext + "/" + path, size, True)
            except Exception:
                buf, n, d = None, -1, b""
            if n != size or d != digest:
                g.refuse(rel, "modified")
                raise OSError(2)
        # BytesIO copies buf; the kept copy is released, later opens re-read and re-verify
        f = uio.BytesIO(buf)
        if "b" not in mode:
            f = uio.StringIO(bytes(buf).decode())
        return f

    def chdir(self, p):
        pass

    def getcwd(self):
        return ""

    def statvfs(self, p):
        return (512, 512, 0, 0, 0, 0, 0, 0, 0, 255)
