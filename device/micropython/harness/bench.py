# Guard benchmark, run in the MicroPython WebAssembly interpreter by bench/guard.sh:
# /data/app is a sealed application (DIST/app), /data/_fieldseal_manifest.py its manifest.
#  1. verified import (hash every file, keep module bytes, import through the verifying
#     mount) vs plain import of the same .mpy files from storage, same interpreter;
#  2. heap the guard allocates beyond the files it keeps, with the GC off (an upper bound
#     on its peak): the streaming scheduled check, and the boot measurement.
import gc
import sys
import ujson
import utime
import vfs

sys.path[:] = ["/frozen", "/data"]
import _fieldseal_manifest
from fieldseal.check import Manifest, measure, VerifiedFS

EXT = "/data/app"
man = Manifest.frozen()
mods = [f[0][:-4].replace("/", ".") for f in man.files if f[0].endswith(".mpy")]
N = 200


class G:
    # the guard's fields the verifying filesystem uses
    def __init__(self, r):
        self.man = man
        self.ext = EXT
        self.kept = r.kept
        self.bad_kinds = r.kinds()
        self.refused = set()

    def refuse(self, path, kind):
        self.refused.add(path)

    def cover_was_open(self):
        return False


def unload():
    for m in mods:
        sys.modules.pop(m, None)


def plain():
    sys.path[:] = ["/frozen", EXT]
    for m in mods:
        __import__(m)
    unload()


def verified():
    r = measure(man, EXT, True)
    assert not r.bad, r.bad
    vfs.mount(VerifiedFS(G(r)), "/verified", readonly=True)
    sys.path[:] = ["/frozen", "/verified"]
    for m in mods:
        __import__(m)
    vfs.umount("/verified")
    unload()


def timed(f):
    # the WebAssembly port's clock ticks in milliseconds: time a batch, report per run
    t = utime.ticks_ms()
    for _ in range(N):
        f()
    return utime.ticks_diff(utime.ticks_ms(), t) * 1000 // N


plain()
verified()  # warm up
pt = []
vt = []
for _ in range(5):  # interleaved, best of 5 batches
    pt.append(timed(plain))
    vt.append(timed(verified))
p = min(pt)
v = min(vt)


def alloc(keep):
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    r = measure(man, EXT, keep)
    a1 = gc.mem_alloc()
    gc.enable()
    kept = sum(len(b) for b in r.kept.values())
    return a1 - a0, kept


def device_boot():
    # the whole guard boot (state, recovery, measurement keeping module bytes, boot entry
    # and its state write): everything allocated with the GC off bounds the peak; what is
    # still live after a collection is what the guard keeps
    import uos
    from fieldseal.device import Device
    from fieldseal.ports.sim import Port

    try:
        uos.mkdir("/bint")
    except OSError:
        pass
    with open("/bint/bundle.json", "w") as f:
        f.write(ujson.dumps({"device": "bench-1", "epoch": 1, "chain_key": "11" * 32, "uplink_key": "22" * 32,
                             "downlink_key": "33" * 32, "server_pub": "44" * 32, "product": man.product,
                             "manifest_version": man.version}))
    p = Port(int_root="/bint")
    p.EXT = EXT
    p.FROZEN = "/frozen"
    Device(p).boot(mount=False)  # provisions; warm up
    gc.collect()
    base = gc.mem_alloc()
    gc.disable()
    d = Device(p)
    d.boot(mount=False)
    total = gc.mem_alloc() - base
    gc.enable()
    gc.collect()
    live = gc.mem_alloc() - base
    kept = sum(len(b) for b in d.kept.values())
    # a report carrying a log filled to its routine capacity (store-and-forward while offline)
    from fieldseal import cbor

    while d.chain.log_size + 60 < d.chain.cap:
        d.log(2, {1: 4, 2: man.root, 3: 12})
    gc.collect()
    gc.disable()
    a0 = gc.mem_alloc()
    rep = d.report()
    report_alloc = gc.mem_alloc() - a0
    gc.enable()
    REPORT.update({"report_bytes": len(rep), "report_log_bytes": d.chain.log_size, "report_alloc_bytes": report_alloc})
    return total, live, kept


REPORT = {}
dev_total, dev_live, dev_kept = device_boot()
check_alloc, _ = alloc(False)
boot_alloc, kept = alloc(True)
largest = max(f[1] for f in man.files)
print(ujson.dumps({
    "files": len(man.files), "modules": len(mods), "bytes": sum(f[1] for f in man.files), "largest_file": largest,
    "plain_import_us": p, "verified_import_us": v, "ratio": v / p,
    "check_heap_bytes": check_alloc, "boot_heap_bytes": boot_alloc, "boot_kept_bytes": kept,
    "boot_heap_beyond_kept": boot_alloc - kept,
    "report_bytes": REPORT["report_bytes"], "report_log_bytes": REPORT["report_log_bytes"],
    "report_alloc_bytes": REPORT["report_alloc_bytes"],
    "device_boot_alloc_bytes": dev_total, "device_boot_alloc_beyond_kept": dev_total - dev_kept, "device_boot_live_bytes": dev_live,
}))
