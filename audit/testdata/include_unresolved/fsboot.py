# Frozen boot file: runs before boot.py, with Ctrl-C disabled.
import sys

sys.path[:] = [".frozen"]  # before any other import: nothing on storage can shadow the guard (D23)
import fieldseal.boot
from fieldseal.ports.stm32 import Port
from board_slots import slot_device  # the board's block device over its dedicated state sector

fieldseal.boot.main(port=Port(slots=slot_device()))
