# Runs testdata/vectors/lpwan/vectors.json (copied to /data) through the guard's LPWAN code
# (fieldseal/lpwan.py): status and entry frames built from the fields equal Go's bytes,
# downlinks open under T and decode to their fields, altered frames fail as bad-mac.
import ujson
import ustruct
from ubinascii import unhexlify as uh
from fieldseal import lpwan, cose
import usys

DATA = (usys.argv[1:] or ["/data"])[0]  # run.mjs copies the vectors to /data; firmware tests name their folder

with open(DATA + "/vectors.json") as f:
    vs = ujson.load(f)
entry = {}
for v in vs:
    why = None
    key, dev, ep, frame = uh(v["key"]), v["dev"], v["epoch"], uh(v["frame"])
    fl = v.get("fields") or {}
    try:
        if v.get("error"):
            try:
                lpwan.open_frame(frame, key, dev, ep)
                why = "altered frame accepted"
            except cose.BadMessage as e:
                if e.args[0] != v["error"]:
                    why = "rejected as %s, want %s" % (e.args[0], v["error"])
        elif v["name"] == "status":
            got = lpwan.status(key, dev, ep, fl["ctl"], fl["rseq"], fl["boot"], fl["time"], fl["state"], fl["meas_status"],
                               fl["bad_files"], fl["man_version"], uh(fl["root_prefix"]), fl["n"], uh(fl["seal_prefix"]),
                               fl["litres"], fl["flow"])
            if got != frame:
                why = "status differs: %s" % got.hex()
        elif v["name"].startswith("entry-fragment"):
            frames = lpwan.entry_frames(key, dev, ep, fl["n"], fl["t"], fl["type"], uh(fl["payload"]), uh(fl["tag"]))
            if frames[fl["index"]] != frame:
                why = "fragment %d differs" % fl["index"]
        elif v["name"] == "ack":
            body = lpwan.open_frame(frame, key, dev, ep)
            acked, n = ustruct.unpack(">II", body[1:9])
            if body[0] != lpwan.ACK or acked != fl["acked_rseq"] or n != fl["anchor_n"] or body[9:17] != uh(fl["head_prefix"]) or body[17] != fl["flags"]:
                why = "ack fields"
        elif v["name"].startswith("token"):
            body = lpwan.open_frame(frame, key, dev, ep)
            until, expires = ustruct.unpack(">II", body[18:26])
            if body[1:17] != uh(fl["id"]) or lpwan.ACTIONS[body[17]] != fl["action"] or until != fl["until_rseq"] or expires != fl["expires"]:
                why = "token fields"
        else:
            why = "unknown vector"
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print(ujson.dumps({"name": v["name"], "ok": why is None, "why": why}))
