# Frozen _boot.py for fieldseal boards: replaces the port's stock one. It runs before
# boot.py/main.py with Ctrl-C disabled; the guard mounts the filesystem itself,
# verifies it and sets sys.path (device/micropython/fieldseal/boot.py).
#
# Reports leave through the guard's own uplink (fieldseal/uplink.py): MQTT 3.1.1 to the
# server URL of the provisioning bundle (mqtts:// with ca.der on internal storage when the
# firmware has TLS), over Wi-Fi with the credentials in wifi.json on internal storage
# (ports/esp32.py, network_up). For an Ethernet board, or another server URL, subclass the
# port: set UPLINK = "mqtt://host:1883" or "http://host:8080" and override network_up().
import fieldseal.boot

fieldseal.boot.main()
