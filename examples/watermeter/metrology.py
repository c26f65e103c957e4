# Metrology: turns reed-switch pulses into litres using the calibration table.
#
# A mechanical meter under-registers at low flow and slightly over-registers at high
# flow; the calibration table (calibration.json, sealed like the code) holds a correction
# factor per flow rate, interpolated linearly. Tampering with that table is as good as
# tampering with the code, which is why fieldseal seals data files too.

DEFAULT_TABLE = {
    "litres_per_pulse": 1.0,
    "points": [{"flow_lph": 0, "factor": 1.0}],
}


def load_table(path="calibration.json", opener=open):
    """Read and check the calibration table; opener lets the guard serve verified bytes."""
    import json

    with opener(path) as f:
        table = json.loads(f.read())
    check_table(table)
    return table


def check_table(table):
    lpp = table.get("litres_per_pulse")
    if not isinstance(lpp, (int, float)) or lpp <= 0:
        raise ValueError("calibration: litres_per_pulse must be > 0")
    pts = table.get("points")
    if not pts:
        raise ValueError("calibration: no points")
    last = -1
    for p in pts:
        if p["flow_lph"] <= last:
            raise ValueError("calibration: flow_lph must increase")
        if not 0.5 < p["factor"] < 1.5:
            raise ValueError("calibration: factor out of range")
        last = p["flow_lph"]


def factor(table, flow_lph):
    """Correction factor at a flow rate (litres per hour), linear between points."""
    pts = table["points"]
    if flow_lph <= pts[0]["flow_lph"]:
        return pts[0]["factor"]
    for i in range(1, len(pts)):
        a, b = pts[i - 1], pts[i]
        if flow_lph <= b["flow_lph"]:
            span = b["flow_lph"] - a["flow_lph"]
            return a["factor"] + (b["factor"] - a["factor"]) * (flow_lph - a["flow_lph"]) / span
    return pts[-1]["factor"]


class Register:
    """The meter's cumulative register, fed with pulse counts per interval."""

    def __init__(self, table, litres=0.0):
        check_table(table)
        self.table = table
        self.litres = litres

    def add_pulses(self, pulses, seconds):
        """Account for pulses seen over seconds; returns the corrected volume in litres."""
        if pulses < 0 or seconds <= 0:
            raise ValueError("pulses must be >= 0 and seconds > 0")
        raw = pulses * self.table["litres_per_pulse"]
        flow_lph = raw * 3600 / seconds
        vol = raw * factor(self.table, flow_lph)
        self.litres += vol
        return vol

    def reading(self):
        return int(self.litres)
