"""A log writer for the jsonlog tests: appends numbered JSON lines to a
path at a given rate and, like logging.handlers.WatchedFileHandler, opens
the path again whenever it names another file (renamed or deleted away),
so the test can rotate under it. Usage: jsonlog_writer.py PATH COUNT RATE"""
import json
import os
import sys
import time

path, count, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
f = open(path, "a")
ino = os.fstat(f.fileno()).st_ino
start = time.time()
for i in range(count):
    try:
        same = os.stat(path).st_ino == ino
    except FileNotFoundError:
        same = False
    if not same:
        f.close()
        f = open(path, "a")
        ino = os.fstat(f.fileno()).st_ino
    f.write(json.dumps({"level": 30, "time": int(time.time() * 1000), "msg": "line", "n": i}) + "\n")
    f.flush()
    ahead = (i + 1) / rate - (time.time() - start)
    if ahead > 0:
        time.sleep(ahead)
f.close()
