# Harness side of the simulator, running inside the MicroPython WebAssembly interpreter:
# turns JSON-line steps into calls on the guard. harness.mjs imports it before the guard
# boots; the guard then trims sys.path, so the application can never import this module.
import ujson
import ubinascii
import utime
import usys
from fieldseal import cbor
from fieldseal.ports.sim import Port, PowerCut

D = None
P = None


def b64(b):
    return ubinascii.b2a_base64(b).decode().strip()


def unb64(s):
    return ubinascii.a2b_base64(s)


def hexs(b):
    return ubinascii.hexlify(b).decode()


def hw():
    return {"now": P.now, "cover": P.cover, "latch": P.latch}


def boot(opts):
    global D, P
    o = ujson.loads(opts)
    P = Port(int_root="/int", now=o["now"], cover=o.get("cover", False), latch=o.get("latch", False),
             log_cap=o.get("log_cap", 12288))
    if o.get("cut_write"):
        P.store.arm(o["cut_write"], o.get("cut_byte", 0))
    from fieldseal import boot as fboot

    try:
        D = fboot.start(P)
    except PowerCut:
        return ujson.dumps({"ok": False, "error": "power-cut", "powered": False, "hw": hw()})
    out = {"ok": True, "hw": hw(), "summary": summary()}
    app = o.get("app")
    if app:
        out["app"] = do_import(app, None)
    return ujson.dumps(out)


def summary():
    s = D.chain.s
    x = s["x"]
    return {"dev": s["d"], "n": s["n"], "base": s["bn"], "boot": x["boot"], "rseq": x["rseq"],
            "flags": D.flags(), "bad": [[b[0], b[1]] for b in D.bad], "refused": sorted(D.refused),
            "dropped": s["dr"], "log_bytes": D.chain.log_size, "manifest_version": D.man.version,
            "service_until": x["svc"], "path": list(usys.path), "used_tokens": len(x["used"])}


def do_import(mod, attr):
    try:
        m = __import__(mod)
        for part in mod.split(".")[1:]:
            m = getattr(m, part)
        r = {"ok": True, "file": getattr(m, "__file__", "")}
        if attr:
            v = getattr(m, attr, None)
            r["value"] = v if isinstance(v, (int, str, bool)) or v is None else repr(v)
        return r
    except Exception as e:
        return {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}


def entries_json():
    out = []
    for n, t, typ, payload, tag in D.chain.entries():
        try:
            pl = cbor.dec(payload)
            pl = ujson.loads(ujson.dumps(_jsonable(pl)))
        except Exception:
            pl = None
        out.append({"n": n, "t": t, "type": typ, "payload": hexs(payload), "tag": hexs(tag), "decoded": pl})
    return out


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return hexs(v)
    return v


def tick(secs):
    reports = []
    end = P.now + secs
    while True:
        nxt = min(D.next_check, D.next_report, end)
        if nxt > P.now:
            P.now = nxt
        r = D.poll()
        if r is not None:
            reports.append(b64(r))
        if P.now >= end:
            return reports


def step(line):
    c = ujson.loads(line)
    try:
        return ujson.dumps(_step(c))
    except PowerCut:
        return ujson.dumps({"ok": False, "error": "power-cut", "powered": False, "hw": hw()})


def _step(c):
    cmd = c.get("cmd")
    r = {"ok": True}
    if cmd == "tick":
        r["reports"] = tick(c.get("s", 1))
    elif cmd == "cover":
        P.set_cover(bool(c.get("open")))
        D.poll()
    elif cmd == "magnet":
        P.mag = c.get("strength", 1)
        D.poll()
        P.mag = 0
    elif cmd == "report":
        r["report"] = b64(D.report())
    elif cmd == "ack":
        r["result"] = D.ack(unb64(c["b64"]) if "b64" in c else ubinascii.unhexlify(c["hex"]))
    elif cmd == "token":
        r["result"] = D.token(unb64(c["b64"]) if "b64" in c else ubinascii.unhexlify(c["hex"]))
    elif cmd == "check":
        D.check()
    elif cmd == "log":
        r["segment"] = b64(cbor.enc(D.chain.segment()))
        rc = D.st.read("receipt")
        if rc:
            r["receipt"] = b64(rc)  # the latest anchor receipt: with the log, an evidence bundle
        r["entries"] = entries_json()
    elif cmd == "state":
        pass
    elif cmd == "import":
        r["import"] = do_import(c["module"], c.get("attr"))
    elif cmd == "exec":
        g = {"D": D, "P": P}
        exec(c["code"], g)
        v = g.get("result")
        r["result"] = v if isinstance(v, (int, str, bool, list, dict, float)) or v is None else repr(v)
    elif cmd == "run_app":
        from fieldseal import boot as fboot

        def sim_sleep(s):
            P.now += s

        m = __import__(c.get("module", "main"))
        r["reports"] = [b64(x) for x in fboot.run_app(D, m, c.get("samples", 1), sim_sleep)]
        r["reading"] = D.reading
    elif cmd == "cut":
        P.store.arm(c.get("write", 1), c.get("byte", 0))
    else:
        return {"ok": False, "error": "unknown command %r" % cmd}
    r["summary"] = summary()
    r["hw"] = hw()
    return r
