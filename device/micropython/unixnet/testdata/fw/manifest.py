# The unix port with the fieldseal guard and the test meter's manifest frozen in
# (device/micropython/unixnet): everything the meter imports comes from the firmware.
package("fieldseal", base_path="../../..")
module("_fieldseal_manifest.py")
# The stm32-lorawan board template's modem adapter (RUI3 AT dialect, LoRaWAN uplink).
module("lorawan_modem.py", base_path="../../../../../examples/boards/stm32-lorawan/modules")
