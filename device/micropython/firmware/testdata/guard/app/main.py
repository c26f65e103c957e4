# The sealed application of the qemu guard tests: imported by the guard from verified bytes
# once boot and check are done, it prints what the tests measure (with qemu -icount, a
# ticks_us tick is 1,000 instructions since power-on).
import gc
import sys
import time

t = time.ticks_us()
gc.collect()
print("APP ticks_us=%d alloc=%d free=%d path=%s" % (t, gc.mem_alloc(), gc.mem_free(), sys.path))
