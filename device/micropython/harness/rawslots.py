# State slots on a raw block device (RawSlotStore): a NOR-flash-like RAM device (erase sets
# 0xFF, a write can only clear bits). Checks that after appends no earlier chain key is
# anywhere on the device or in the log file (forward security at the storage level), that
# the state reloads, and that a power cut at any block operation of an append leaves a log
# that verifies. Prints one JSON line.
import ujson
import uos
from fieldseal import cbor, fschain as fc
from fieldseal.store import RawSlotStore
import fsverify

DEV = "meter-0001"
K1 = bytes(range(32))


class Cut(BaseException):
    pass


class NOR:
    def __init__(self, blocks, bs=512):
        self.bs = bs
        self.mem = bytearray(blocks * bs)
        for i in range(len(self.mem)):
            self.mem[i] = 0xFF
        self.ops = 0
        self.cut_at = 0

    def _op(self):
        self.ops += 1
        if self.cut_at and self.ops == self.cut_at:
            raise Cut()

    def readblocks(self, n, buf, off=0):
        a = n * self.bs + off
        buf[:] = self.mem[a:a + len(buf)]

    def writeblocks(self, n, buf, off=0):
        self._op()
        a = n * self.bs + off
        for i in range(len(buf)):
            self.mem[a + i] &= buf[i]

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.mem) // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            self._op()
            a = arg * self.bs
            for i in range(self.bs):
                self.mem[a + i] = 0xFF
            return 0
        return None


def fresh(root):
    try:
        uos.mkdir(root)
    except OSError:
        pass
    for n in uos.listdir(root):
        uos.remove(root + "/" + n)


out = {}
fresh("/raw")
dev = NOR(16)
c = fc.Chain(RawSlotStore("/raw", dev))
c.create(DEV, 1, K1, {"boot": 1})
keys = [K1]
for i in range(20):
    c.append(1767225600 + i, 2, cbor.enc({1: i}))
    keys.append(fc.evolve(keys[-1]))
blob = bytes(dev.mem) + (open("/raw/log", "rb").read())
out["old_keys_found"] = sum(1 for k in keys[:-1] if blob.find(k) >= 0)
out["current_key_found"] = blob.find(keys[-1]) >= 0
c2 = fc.Chain(RawSlotStore("/raw", dev))
c2.load()
out["reload_n"] = c2.s["n"]
seg = c2.segment()
try:
    fsverify.verify(DEV, 1, 0, fc.genesis(DEV.encode(), 1), K1, seg)
    out["verifies"] = True
except fsverify.VerifyError as e:
    out["verifies"] = "%s at %d" % (e.name, e.seq)

# a power cut at every block operation of an append
fails = []
cases = 0
base_mem = bytes(dev.mem)
base_log = open("/raw/log", "rb").read()
for k in range(1, 20):
    dev.mem[:] = base_mem
    with open("/raw/log", "wb") as f:
        f.write(base_log)
    c = fc.Chain(RawSlotStore("/raw", dev))
    c.load()
    dev.ops = 0
    dev.cut_at = k
    try:
        c.append(1767229999, 4, cbor.enc({1: "irq"}))
        dev.cut_at = 0
        break
    except Cut:
        pass
    dev.cut_at = 0
    cases += 1
    c = fc.Chain(RawSlotStore("/raw", dev))
    c.load()
    try:
        fsverify.verify(DEV, 1, 0, fc.genesis(DEV.encode(), 1), K1, c.segment())
        if c.s["n"] not in (20, 21):
            fails.append("op %d: n=%d" % (k, c.s["n"]))
    except fsverify.VerifyError as e:
        fails.append("op %d: %s at %d" % (k, e.name, e.seq))
out["cut_cases"] = cases
out["cut_failures"] = fails
print(ujson.dumps(out))
