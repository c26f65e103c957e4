# Run by the unix micropython built from the same tree: write files into a littlefs image
# (a host file used as a block device by the qemu board).
# argv: image block_size [path_in_image=host_file ...]
import os
import sys
import vfs


class BD:
    def __init__(self, f, bs):
        self.f, self.bs = f, bs
        f.seek(0, 2)
        self.n = f.tell() // bs

    def readblocks(self, b, buf, off=0):
        self.f.seek(b * self.bs + off)
        self.f.readinto(buf)

    def writeblocks(self, b, buf, off=0):
        self.f.seek(b * self.bs + off)
        self.f.write(buf)

    def ioctl(self, op, arg):
        return self.n if op == 4 else (self.bs if op == 5 else 0)


f = open(sys.argv[1], "r+b")
bd = BD(f, int(sys.argv[2]))
try:
    fs = vfs.VfsLfs2(bd)
except OSError:
    vfs.VfsLfs2.mkfs(bd)
    fs = vfs.VfsLfs2(bd)
vfs.mount(fs, "/img")
for arg in sys.argv[3:]:
    path, src = arg.split("=", 1)
    with open(src, "rb") as f_in:
        data = f_in.read()
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        try:
            os.mkdir("/img/" + "/".join(parts[:i]))
        except OSError:
            pass
    with open("/img/" + path.strip("/"), "wb") as out:
        out.write(data)
vfs.umount("/img")
f.close()
