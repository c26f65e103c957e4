# Test driver for the frozen guard on the unix port (device/micropython/unixnet): boots the
# meter, then runs n report cycles through the guard's own uplink over real sockets, and
# prints one JSON line. Arguments: internal folder, application folder, uplink URL ("" for
# the server URLs of the provisioning bundle), cycles.
import sys
import json
from fieldseal.ports.unix import Port
from fieldseal import boot, uplink

int_dir, ext, url, cycles = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
d = boot.start(Port(int_dir, ext, uplink=url or None))
up = uplink.pick(d)
out = []
for i in range(cycles):
    d.log(13, {1: 1000 + i})  # a signed register read: something new to report and prune
    n_sent = d.chain.s["n"]
    res = up.deliver(d.report())
    out.append({"res": res, "last": up.last, "rseq": d.x["rseq"], "sent_n": n_sent, "base": d.chain.s["bn"], "n": d.chain.s["n"]})
up.close()
print(json.dumps({"cycles": out, "flags": d.flags(), "bad": [[b[0], b[1]] for b in d.bad], "url": up.url}))
