# Test driver for the stm32-lorawan template's modem adapter on the unix port
# (device/micropython/unixnet): boots the meter with the guard frozen, then runs n report
# rounds through lorawan_modem.LoRaWANUplink and Rui3 (frozen, as on the board) over a TCP
# socket to the test's emulated modem, and prints one JSON line. The socket is only the
# byte pipe in place of UART 2. Arguments: internal folder, application folder, modem
# address host:port, rounds, and optionally a backlog: register reads logged before the
# first round.
import sys
import json
import socket
import select
from fieldseal.ports.unix import Port
from fieldseal import boot
from lorawan_modem import LoRaWANUplink, Rui3


class PipeUART:
    """machine.UART's write/any/read over a socket: the byte pipe, nothing more."""

    def __init__(self, sock):
        self.s = sock
        self.p = select.poll()
        self.p.register(sock, select.POLLIN)

    def write(self, b):
        return self.s.write(b)

    def any(self):
        return 64 if self.p.poll(0) else 0

    def read(self, n):
        return self.s.recv(n)


int_dir, ext, addr, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
backlog = int(sys.argv[5]) if len(sys.argv) > 5 else 0
host, port = addr.split(":")
s = socket.socket()
s.connect(socket.getaddrinfo(host, int(port))[0][-1])
d = boot.start(Port(int_dir, ext))
up = LoRaWANUplink(d, Rui3(PipeUART(s), timeout_ms=10000))
for i in range(backlog):
    d.log(13, {1: 500 + i})
sizes = []
uplink = up.meter.uplink


def counted():
    fs = uplink()
    sizes.append(len(fs))
    return fs


up.meter.uplink = counted  # each round's frame count, for the test
out = []
for i in range(rounds):
    d.log(13, {1: 1000 + i})  # a signed register read: something new to report and prune
    res = up.deliver(None)
    out.append({"res": res, "last": up.last, "rseq": d.x["rseq"], "sent_n": up.meter.sent_n, "base": d.chain.s["bn"], "n": d.chain.s["n"], "frames": sizes[-1] if sizes else 0})
s.close()
print(json.dumps({"cycles": out, "flags": d.flags(), "bad": [[b[0], b[1]] for b in d.bad]}))
