# Runs the real entry point fieldseal.boot.main() on the sim port: /data/ext is the
# application, /data/int internal storage (with bundle.json), /data/_fieldseal_manifest.py
# the manifest. The port's clock runs 1 s per sleep; after /data/seconds.txt seconds the
# "power" goes (an exception out of sleep). Prints one JSON line: the reports main() sent
# (base64), the app's reading and sys.path as the app saw it.
import ujson
import ubinascii
import usys
import uos

with open("/data/_fieldseal_manifest.py") as f:
    src = f.read()
with open("/frozen/_fieldseal_manifest.py", "w") as f:
    f.write(src)
from fieldseal.ports.sim import Port
from fieldseal import boot


class Off(BaseException):
    pass


class MainPort(Port):
    EXT = "/data/ext"

    def __init__(self, limit):
        Port.__init__(self, int_root="/data/int")
        self.limit = limit
        self.sent = []
        self.slept = 0

    def sleep(self, s):
        self.now += s
        self.slept += s
        if self.slept >= self.limit:
            raise Off()

    def send(self, report):
        self.sent.append(ubinascii.b2a_base64(report).decode().strip())
        return None


with open("/data/seconds.txt") as f:
    limit = int(f.read())
p = MainPort(limit)
try:
    boot.main(port=p)
except Off:
    pass
print(ujson.dumps({"reports": p.sent, "path": list(usys.path), "feeds": p.feeds}))
