# Frozen boot file: runs before boot.py, with Ctrl-C disabled.
import fieldseal.boot

fieldseal.boot.main()
