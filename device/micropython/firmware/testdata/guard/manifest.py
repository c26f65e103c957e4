# The guard as a production stm32 image freezes it (the board template's own guard list and
# boot file), plus the qemu board's adapter and a sealed manifest module.
include("../../../../../examples/boards/guard.py")
module("fsboot.py", base_path="../../../../../examples/boards/stm32")
module("fieldseal_port.py", base_path="../../qemu")
module("_fieldseal_manifest.py")
