# Test driver: the guard's MQTT client (frozen) against a hostile broker. Arguments: port,
# deadline ms. Prints one JSON line: the error raised, the watchdog feeds while waiting and
# the milliseconds it took.
import sys
import json
import utime
from fieldseal.mqtt import Client, MQTTError

port, deadline = int(sys.argv[1]), int(sys.argv[2])
feeds = [0]


def feed():
    feeds[0] += 1


c = Client("127.0.0.1", port, "wm-h", user="wm-h", password="x", feed=feed, timeout_ms=deadline)
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
