// Package unixnet shows the fieldseal guard working on a real MicroPython build over a real
// network: the unix port built from MICROPYTHON_DIR with the guard and a meter's manifest
// frozen in (device/micropython/firmware), reporting with its own MQTT and HTTP clients to a
// real fieldseal server. It has tests only.
package unixnet
