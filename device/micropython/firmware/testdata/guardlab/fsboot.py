# Lab boot file: sys.path trimmed as the board's fsboot.py does, the guard not started.
import sys; sys.path[:] = [".frozen"]  # noqa: E702
