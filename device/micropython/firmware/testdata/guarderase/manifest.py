# testdata/guard's image sealed with on-mismatch=erase (D16): the same guard, boot file and
# adapter, the same app, a manifest module whose policy deletes what does not verify.
include("../../../../../examples/boards/guard.py")
module("fsboot.py", base_path="../../../../../examples/boards/stm32")
module("fieldseal_port.py", base_path="../../qemu")
module("_fieldseal_manifest.py")
