package analytics

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the time-zone test must not depend on the machine's zoneinfo
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

// A district worked by hand: misaligned reads prorated to the period's ends, two inlets,
// an outlet, a tank, an estimated customer, allowances and the ILI.
func handDistrict() (DistrictConfig, Data) {
	cfg := DistrictConfig{Name: "hand", Inlets: []string{"in1", "in2"}, Outlets: []string{"out1"},
		Tanks: []Tank{{Level: "tank", AreaM2: 10}}, Customers: []string{"c1", "c2", "c3"},
		BilledUnmeteredM3PerDay: 1, UnbilledMeteredM3PerDay: 0.5, UnbilledUnmeteredM3PerDay: 0.5,
		UnauthorisedPct: 1, MeterUnderRegPct: 4, MainsKm: 2, Connections: 4, ServiceLengthM: 10, AvgPressureM: 40}
	d := Data{Registers: map[string]Series{
		// 1000 L/h, read at −6 h and 18 h and 30 h: 6000 at 00:00, 30000 at 24:00.
		"in1":  {{at(-6), 0}, {at(18), 24000}, {at(30), 36000}},
		"in2":  {{at(0), 0}, {at(24), 12000}},
		"out1": {{at(0), 500}, {at(24), 6500}},
		// 250 L/h: 3000 at 00:00, 9000 at 24:00 → 6 m³.
		"c1": {{at(-12), 0}, {at(12), 6000}, {at(36), 12000}},
		"c2": {{at(0), 100}, {at(24), 10100}},
		// Reads stop at 12:00: the rest of the day at its mean rate, 2000/12 L/h → 4 m³.
		"c3": {{at(0), 0}, {at(12), 2000}},
	}, Levels: map[string]Series{"tank": {{at(0), 2.0}, {at(24), 2.3}}}}
	return cfg, d
}

func TestBalanceIWAArithmetic(t *testing.T) {
	cfg, d := handDistrict()
	b, err := Balance(cfg, d, at(0), at(24))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]float64{
		"storage":     {b.StorageIncreaseM3, 3},
		"SIV":         {b.SystemInputM3, 24 + 12 - 6 - 3},
		"billed met":  {b.BilledMeteredM3, 6 + 10 + 4},
		"authorised":  {b.AuthorisedM3, 22},
		"losses":      {b.WaterLossesM3, 5},
		"unauth":      {b.UnauthorisedM3, 0.27},
		"inaccuracy":  {b.MeteringInaccuracyM3, 20 * 0.04 / 0.96},
		"real":        {b.RealLossesM3, 5 - 0.27 - 20*0.04/0.96},
		"revenue":     {b.RevenueWaterM3, 21},
		"NRW":         {b.NonRevenueM3, 6},
		"NRW %":       {b.NonRevenuePct, 600.0 / 27},
		"L/conn/day":  {b.RealLossesLConDay, (5 - 0.27 - 20*0.04/0.96) * 1000 / 4},
		"UARL m3/day": {b.UARLM3Day, (18*2 + 0.8*4 + 25*0.04) * 40 / 1000},
		"ILI":         {b.ILI, (5 - 0.27 - 20*0.04/0.96) / ((18*2 + 0.8*4 + 25*0.04) * 40 / 1000)},
	}
	for name, v := range want {
		if math.Abs(v[0]-v[1]) > 1e-9 {
			t.Errorf("%s = %.6f, want %.6f", name, v[0], v[1])
		}
	}
	if b.CustomersRead != 2 || len(b.CustomersEstimated) != 1 || b.CustomersEstimated[0] != "c3" {
		t.Errorf("read %d, estimated %v: want 2 and [c3]", b.CustomersRead, b.CustomersEstimated)
	}
	if len(b.Notes) == 0 || !strings.Contains(b.Notes[len(b.Notes)-1], "3000 connections") {
		t.Errorf("a 4-connection ILI must carry the UARL validity note: %v", b.Notes)
	}
}

func TestWriteCSVIWALayout(t *testing.T) {
	cfg, d := handDistrict()
	b, err := Balance(cfg, d, at(0), at(24))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, b); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, line := range []string{
		"district,from,to,level,component,m3,m3_per_day,pct_of_system_input",
		"hand,2026-03-02T00:00:00Z,2026-03-03T00:00:00Z,1,System input volume,27.000,27.000,100.00",
		",2,Non-revenue water,6.000,6.000,22.22",
		",4,Billed metered consumption,20.000,20.000,74.07",
		",0,Infrastructure leakage index,2.423,,",
	} {
		if !strings.Contains(out, line) {
			t.Errorf("CSV lacks %q:\n%s", line, out)
		}
	}
}

func TestBalanceNamesMeterNotCovering(t *testing.T) {
	cfg, d := handDistrict()
	_, err := Balance(cfg, d, at(0), at(48))
	if err == nil || !strings.Contains(err.Error(), `"in1"`) {
		t.Errorf("err = %v: want the inlet that does not cover the period named", err)
	}
	cfg.Inlets = append(cfg.Inlets, "in-typo")
	_, err = Balance(cfg, d, at(0), at(24))
	if err == nil || !strings.Contains(err.Error(), `"in-typo"`) {
		t.Errorf("err = %v: want the unknown meter named", err)
	}
}

// A bulk meter counting 100 L pulses, read every 5 minutes: the least-squares rate over
// two hours is far closer to the truth than the difference of the interpolated ends.
func TestRateRobustToQuantisedRegister(t *testing.T) {
	const true_ = 1234.0 // L/h
	var s Series
	for m := 0; m <= 180; m += 5 {
		v := math.Floor((true_*float64(m)/60+77)/100) * 100
		s = append(s, Read{at(float64(m) / 60), v})
	}
	r, ok := s.Rate(at(0.5), at(2.5))
	if !ok || math.Abs(r-true_) > 20 {
		t.Errorf("rate %.1f L/h, want %.0f ± 20", r, true_)
	}
	if u, _ := s.Usage(at(0.5), at(2.5)); math.Abs(u/2-true_) < math.Abs(r-true_) {
		t.Logf("note: difference of ends %.1f L/h happened to be closer", u/2)
	}
}

// Night flow: inlet 500 L/h through a 100-L-pulse register, customers using 200 L/h in
// total: the net night flow is 0.3 m³/h within the pulse's error.
func TestNightFlowNetOfMeteredUse(t *testing.T) {
	cfg := DistrictConfig{Name: "n", Inlets: []string{"in"}, Customers: []string{"a", "b"}, Connections: 2}
	d := Data{Registers: map[string]Series{}}
	var in, a, b Series
	for m := 0; m <= 24*60; m += 15 {
		h := float64(m) / 60
		in = append(in, Read{at(h), math.Floor(500*h/100) * 100})
		a = append(a, Read{at(h), math.Floor(120 * h)})
		b = append(b, Read{at(h), math.Floor(80 * h)})
	}
	d.Registers["in"], d.Registers["a"], d.Registers["b"] = in, a, b
	ns := NightFlows(cfg, d, at(0), at(24))
	if len(ns) != 1 {
		t.Fatalf("%d nights, want 1", len(ns))
	}
	n := ns[0]
	if math.Abs(n.NetM3PerH-0.3) > 0.02 || math.Abs(n.MeteredM3PerH-0.2) > 0.005 || math.Abs(n.NetLConnH-150) > 10 {
		t.Errorf("night %+v: want net 0.3 m³/h, metered 0.2, 150 L/connection/h", n)
	}
}

func TestWindowsProrateAndEstimate(t *testing.T) {
	cfg, d := handDistrict()
	cfg.MaxBulkGapHours = 24 // the hand district's bulk meters are read once a day
	ws := Windows(cfg, d, at(0), at(24), 6*time.Hour)
	if len(ws) != 4 {
		t.Fatalf("%d windows, want 4", len(ws))
	}
	var siv, met float64
	for _, w := range ws {
		siv += w.InputM3
		met += w.MeteredM3
	}
	// Windows telescope to the day's balance; c3 is read only in the first two windows
	// and estimated from its share in the others.
	if math.Abs(siv-27) > 1e-9 {
		t.Errorf("windows' input %.6f, want 27", siv)
	}
	if !math.IsNaN(ws[3].Use[2]) || ws[3].Estimated != 1 || math.IsNaN(ws[0].Use[2]) {
		t.Errorf("c3 use %v: want read in window 0, NaN in window 3", []float64{ws[0].Use[2], ws[3].Use[2]})
	}
	if math.Abs(met-20) > 1.5 {
		t.Errorf("windows' metered %.3f, want about 20", met)
	}
}

// A bulk meter silent for ten hours: the windows inside the gap are left out, not
// invented by interpolation, and the windows after it are kept; the day's balance still
// prorates across the gap.
func TestWindowsSkipBulkGap(t *testing.T) {
	cfg := DistrictConfig{Name: "g", Inlets: []string{"in"}, Customers: []string{"a"}}
	var in, a Series
	for m := 0; m <= 24*60; m += 15 {
		h := float64(m) / 60
		a = append(a, Read{at(h), 100 * h})
		if h > 6 && h < 16 {
			continue
		}
		in = append(in, Read{at(h), 150 * h})
	}
	d := Data{Registers: map[string]Series{"in": in, "a": a}}
	ws := Windows(cfg, d, at(0), at(24), time.Hour)
	if len(ws) != 14 {
		t.Errorf("%d windows, want 14 (24 less the 10 in the gap)", len(ws))
	}
	for _, w := range ws {
		if w.From.After(at(5.5)) && w.To.Before(at(16.5)) {
			t.Errorf("window %v–%v inside the gap", w.From, w.To)
		}
		if math.Abs(w.LossM3-0.05) > 1e-9 {
			t.Errorf("window %v: loss %.4f, want 0.05", w.From, w.LossM3)
		}
	}
	b, err := Balance(cfg, d, at(0), at(24))
	if err != nil || math.Abs(b.WaterLossesM3-1.2) > 1e-9 {
		t.Errorf("balance %+v, %v: want losses 1.2 m³", b, err)
	}
}

// The night window is in the district's time zone: 02:00–04:00 in Tokyo is 17:00–19:00
// UTC, when this district's customers use 300 L/h instead of 200.
func TestNightFlowInDistrictTimeZone(t *testing.T) {
	cfg := DistrictConfig{Name: "tz", Inlets: []string{"in"}, Customers: []string{"a"}, TimeZone: "Asia/Tokyo"}
	var in, a Series
	var ca float64
	for m := 0; m <= 48*60; m += 15 {
		h := float64(m) / 60
		in = append(in, Read{at(h), 500 * h})
		a = append(a, Read{at(h), ca})
		rate := 200.0
		if hh := math.Mod(h, 24); hh >= 17 && hh < 19 {
			rate = 300
		}
		ca += rate / 4
	}
	d := Data{Registers: map[string]Series{"in": in, "a": a}}
	ns := NightFlows(cfg, d, at(0), at(48))
	if len(ns) == 0 {
		t.Fatal("no night")
	}
	for _, n := range ns {
		if math.Abs(n.NetM3PerH-0.2) > 0.01 {
			t.Errorf("night %v: net %.3f m³/h, want 0.2 (local 02:00–04:00 = 17:00–19:00 UTC)", n.Date, n.NetM3PerH)
		}
	}
	cfg.TimeZone = "Mars/Olympus"
	if _, err := Balance(cfg, d, at(0), at(24)); err == nil || !strings.Contains(err.Error(), "Mars/Olympus") {
		t.Errorf("err = %v: want the bad time zone named", err)
	}
}

// A level sensor that reads in centimetres, with a few millimetres of noise, every 15
// minutes: the smoothed level is within a few millimetres of the truth, where one read can
// be half a step off.
func TestSmoothedLevelFinerThanStep(t *testing.T) {
	truth := func(h float64) float64 { return 2 + 0.037*h }
	var s Series
	for m := 0; m <= 6*60; m += 15 {
		h := float64(m) / 60
		noise := 0.003 * math.Sin(float64(m)*1.7) // deterministic dither
		s = append(s, Read{at(h), math.Round((truth(h)+noise)*100) / 100})
	}
	for _, h := range []float64{2, 3.1, 4} {
		v, ok := s.Smoothed(at(h), time.Hour)
		if !ok || math.Abs(v-truth(h)) > 0.003 {
			t.Errorf("smoothed level at %.1f h = %.4f, truth %.4f", h, v, truth(h))
		}
	}
}
