# Test driver: the guard's MQTT client (frozen) against a hostile broker. Arguments: port,
# deadline ms, and a CA certificate file (DER) to connect over TLS. Prints one JSON line: the error raised, the watchdog feeds while waiting and
# the milliseconds it took.
import sys
import json
import utime
from fieldseal.mqtt import Client, MQTTError

port, deadline = int(sys.argv[1]), int(sys.argv[2])
feeds = [0]


def feed():
    feeds[0] += 1


tls = None
if len(sys.argv) > 3:
    from fieldseal.uplink import tls_wrapper

    with open(sys.argv[3], "rb") as f:
        tls = tls_wrapper(f.read())
c = Client("127.0.0.1", port, "wm-h", user="wm-h", password="x", tls=tls, feed=feed, timeout_ms=deadline)
t0 = utime.ticks_ms()
err = None
try:
    c.connect()
    c.subscribe("fieldseal/v1/wm-h/down")
    c.publish("fieldseal/v1/wm-h/up", b"report")
    c.wait(deadline)
except MQTTError as e:
    err = str(e)
except OSError as e:
    err = "OSError %s" % e
print(json.dumps({"error": err, "feeds": feeds[0], "ms": utime.ticks_diff(utime.ticks_ms(), t0)}))
