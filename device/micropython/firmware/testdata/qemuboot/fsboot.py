import os

print("fwboot: cwd=" + os.getcwd())
