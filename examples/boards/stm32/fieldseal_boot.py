# Frozen boot file (MICROPY_BOARD_FROZEN_BOOT_FILE): runs first, before boot.py, with
# Ctrl-C disabled. The guard verifies storage, mounts the verifying filesystem and
# sets sys.path; see device/micropython/fieldseal/boot.py.
import sys

sys.path[:] = [".frozen"]  # before any other import: nothing on storage can shadow the guard (D23)
import fieldseal.boot

fieldseal.boot.main()
