# generated: the manifest the guard enforces, frozen into firmware
FORMAT = 1
PRODUCT = "watermeter"
VERSION = 1
CREATED = 1767225600
ROOT = b'\x48\x08\xbb\xa3\x15\x39\xf7\x5f\x9f\xa9\x98\xb0\xe9\x5f\xe0\x00\x7a\xbd\xc8\x00\x51\x43\xc5\x3c\x0e\x3b\x7f\x75\x43\xde\x2d\x95'
KID = b''
FILES = (
    ("main.mpy", 199, b'\xb7\x53\xcb\x2a\xa5\x39\x00\x89\x91\x1e\x7f\x43\xbd\x99\xdf\x65\x22\xb6\x6b\x43\xa6\x6b\x26\xef\xaa\x30\x82\x07\x1b\xc1\x66\x9c'),
)
MUTABLE = ()
POLICY = {'on_mismatch': "erase", 'on_cover_open': "report", 'check_interval': 3600, 'report_interval': 900, 'extra_files': "flag"}
MPY = {'major': 6, 'minor': 3, 'arch': "bytecode", 'small_int_bits': 31}
