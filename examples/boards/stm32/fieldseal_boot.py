# Frozen boot file (MICROPY_BOARD_FROZEN_BOOT_FILE): runs first, before boot.py, with
# Ctrl-C disabled. The guard verifies storage, mounts the verifying filesystem and
# sets sys.path; see device/micropython/fieldseal/boot.py.
import fieldseal.boot

fieldseal.boot.main()
