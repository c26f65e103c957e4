# The unix port with the fieldseal guard and the test meter's manifest frozen in
# (device/micropython/unixnet): everything the meter imports comes from the firmware.
package("fieldseal", base_path="../../..")
module("_fieldseal_manifest.py")
