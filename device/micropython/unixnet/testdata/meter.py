# Test driver for the frozen guard on the unix port (device/micropython/unixnet): boots the
# meter, then runs n report cycles through the guard's own uplink over real sockets, and
# prints one JSON line. Arguments: internal folder, application folder, uplink URL ("" for
# the server URLs of the provisioning bundle), cycles, and optionally the port's MQTT topic
# root (over the bundle's). "mem" is the MicroPython heap in use
# (gc.mem_alloc after a collection) before the uplink exists, once it exists (with TLS: the
# context and the parsed CA) and after the first report, while the MQTT session (TLS or
# not) stays open: what holding the uplink costs the guard. "fds" are the process's open
# file descriptors before the uplink exists and after it is closed (a leaked socket shows).
import gc
import os
import sys
import json
from fieldseal.ports.unix import Port
from fieldseal import boot, uplink

int_dir, ext, url, cycles = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
root = sys.argv[5] if len(sys.argv) > 5 else None
d = boot.start(Port(int_dir, ext, uplink=url or None, topic_root=root))
gc.collect()
mem = [gc.mem_alloc()]


def fds():
    return len(list(os.ilistdir("/proc/self/fd")))


open_fds = [fds()]
up = uplink.pick(d)
out = []
for i in range(cycles):
    d.log(13, {1: 1000 + i})  # a signed register read: something new to report and prune
    n_sent = d.chain.s["n"]
    r = d.report()
    if i == 0:
        gc.collect()
        mem.append(gc.mem_alloc())
    res = up.deliver(r)
    if i == 0:
        gc.collect()
        mem.append(gc.mem_alloc())
    out.append({"res": res, "last": up.last, "rseq": d.x["rseq"], "sent_n": n_sent, "base": d.chain.s["bn"], "n": d.chain.s["n"]})
up.close()
open_fds.append(fds())
print(json.dumps({"cycles": out, "mem": mem, "fds": open_fds, "flags": d.flags(), "bad": [[b[0], b[1]] for b in d.bad], "url": up.url, "root": up.root}))
