# generated: the manifest the guard enforces, frozen into firmware
FORMAT = 1
PRODUCT = "watermeter"
VERSION = 1
CREATED = 1767225600
ROOT = b'\x7f\xee\x1d\x2e\x30\x79\x21\xec\xf1\x55\x61\x82\xf8\x8e\x1f\x6c\x66\x1a\x47\x6b\xea\x22\xf6\xfd\xeb\x25\xf3\xff\x24\x61\x68\xe0'
KID = b''
FILES = (
    ("main.mpy", 100, b'\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00'),
)
MUTABLE = ()
POLICY = {'on_mismatch': "refuse", 'on_cover_open': "report", 'check_interval': 3600, 'report_interval': 900, 'extra_files': "flag"}
MPY = {'major': 6, 'minor': 3, 'arch': "bytecode", 'small_int_bits': 31}
