# The guard image of testdata/guard with a lab boot file instead of the board's: the same
# frozen guard, adapter and sealed manifest, but the boot file only trims sys.path, so the
# tests reach the REPL and drive the guard's own API on the same storage (filling the log,
# feeding the cover input); the real boot then runs on testdata/guard's image.
include("../../../../../examples/boards/guard.py")
module("fsboot.py")
module("fieldseal_port.py", base_path="../../qemu")
module("_fieldseal_manifest.py", base_path="../guard")
