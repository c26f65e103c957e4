# Frozen _boot.py for fieldseal boards: replaces the port's stock one and runs before
# boot.py/main.py with Ctrl-C disabled (esp32/main.c).
# First statement: sys is a built-in no file can shadow; trim sys.path before any other
# import so nothing on a filesystem can stand in for the guard (D23).
import sys; sys.path[:] = [".frozen"]  # noqa: E702

# The stock _boot.py was the only code that mounted the flash filesystem: mount it here,
# before the guard needs its storage. Never format on failure (a corrupted superblock must
# not erase the evidence, reference A9): the guard then fails, says why and resets.
import vfs
from flashbdev import bdev

try:
    vfs.mount(bdev, "/")
except OSError as e:
    print("fieldseal: flash filesystem not mounted:", e)

# Reports leave through the guard's own uplink (fieldseal/uplink.py): MQTT 3.1.1 to the
# server URL of the provisioning bundle, over Wi-Fi with the credentials in wifi.json on
# internal storage (ports/esp32.py, network_up). For an Ethernet board, or another server
# URL, subclass the port: set UPLINK = "mqtt://host:1883" or "http://host:8080" and override
# network_up(). For TLS set UPLINK = "mqtts://fleet.example:8883" (the name the server's
# certificate carries) and TLS_CA to the CA's DER bytes, or put ca.der on internal storage
# (HARDENING.md, "TLS on the uplink"). MQTT topics go under the topic root the bundle names
# (the server's --topic-root); TOPIC_ROOT on the port overrides it.
import fieldseal.boot

fieldseal.boot.main()
