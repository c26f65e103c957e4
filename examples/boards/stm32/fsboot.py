# Frozen boot file (MICROPY_BOARD_FROZEN_BOOT_FILE "fsboot.py"): runs first, before boot.py,
# with Ctrl-C disabled. Its name must not mangle to the same C name as a frozen module
# (fieldseal_boot.py collided with fieldseal/boot.py).
# First statement: sys is a built-in that no file can shadow; trimming sys.path before any
# other import means nothing on /flash (the working directory, first on sys.path) can
# stand in for the guard (D23).
import sys; sys.path[:] = [".frozen"]  # noqa: E702

import fieldseal.boot

fieldseal.boot.main()
