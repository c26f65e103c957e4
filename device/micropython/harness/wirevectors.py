# Runs testdata/vectors/wire/vectors.json (copied to /data) through the guard's CBOR and
# COSE code: COSE_Mac0 made by the guard must equal Go's byte for byte, Go's acks and
# tokens must open under T, forged ones must not; then topic-roots.json through the guard's
# topic-root rule. One JSON line per vector.
import ujson
from ubinascii import unhexlify as uh
from fieldseal import cbor, cose
import usys

DATA = (usys.argv[1:] or ["/data"])[0]  # run.mjs copies the vectors to /data; firmware tests name their folder

with open(DATA + "/vectors.json") as f:
    vs = ujson.load(f)
for v in vs:
    why = None
    try:
        key = uh(v["key"])
        kid = uh(v["kid"])
        payload = uh(v["payload"])
        data = uh(v["cose"])
        if cbor.enc(cbor.dec(payload, maxitems=1 << 14)) != payload:
            why = "payload does not round-trip through the guard's CBOR"
        elif v["kind"] == "receipt":
            if cose.sign1_payload(data) != payload:
                why = "receipt payload"
        elif "forged" in v["desc"] or "instead of" in v["desc"]:
            try:
                cose.open_mac0(data, key)
                why = "forged message accepted"
            except cose.BadMessage as e:
                if e.args[0] != "bad-mac":
                    why = "rejected as %s, want bad-mac" % e.args[0]
        else:
            if v["kind"] == "report" and cose.mac0(key, kid, payload) != data:
                why = "COSE_Mac0 differs from Go's"
            k2, p2 = cose.open_mac0(data, key)
            if k2 != kid or p2 != payload:
                why = "open_mac0"
    except Exception as e:
        why = "%s: %s" % (type(e).__name__, e)
    print(ujson.dumps({"desc": v["desc"], "ok": why is None, "why": why or ""}))

# testdata/vectors/wire/topic-roots.json: the guard's topic-root rule is wire.ValidTopicRoot.
from fieldseal.uplink import check_topic_root


def valid_topic_root(root):
    try:
        return check_topic_root(root, "vector") == root
    except ValueError:
        return False


with open(DATA + "/topic-roots.json") as f:
    for v in ujson.load(f):
        got = valid_topic_root(v["root"])
        why = "" if got == v["valid"] else "valid_topic_root(%r) = %s, want %s" % (v["root"], got, v["valid"])
        print(ujson.dumps({"desc": "topic root: " + v["desc"], "ok": not why, "why": why}))
