package analytics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/sim"
)

var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func alarms(n *sim.Network) []analytics.Alarm {
	ws := analytics.Windows(n.Config, n.Data, n.Start, n.End, time.Hour)
	return analytics.Detect(analytics.DetectorFor(n.Config, analytics.DetectorConfig{}), ws)
}

// Quiet districts (tank, two inlets, outlet, drifting households, dropped reads): at most
// one false alarm per district per 30 days after calibration, over 6 districts × 30 days
// the total must stay ≤ 6 (the design rate is one a year: expect none).
func TestDetectorQuietFalseAlarms(t *testing.T) {
	total := 0
	for s := uint64(100); s < 106; s++ {
		for _, a := range alarms(sim.NewNetwork(sim.NetworkConfig{Seed: s, Days: 37})) {
			t.Logf("seed %d: %s %s", s, a.Kind, a.Reason)
			total++
		}
	}
	if total > 6 {
		t.Errorf("%d false alarms in 6 quiet districts × 30 days", total)
	}
}

// Two bursts of 15 % of the input, six days apart: each is caught within 24 h on its own
// (the first does not mask the second), and each alarm's start interval holds the truth.
func TestDetectorCatchesEachBurst(t *testing.T) {
	b1 := start.Add(10*24*time.Hour + 14*time.Hour + 20*time.Minute)
	b2 := b1.Add(6 * 24 * time.Hour)
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 7, Days: 24, Events: []sim.Event{
		{Kind: sim.EventBurst, At: b1, Pct: 15}, {Kind: sim.EventBurst, At: b2, Pct: 15}}})
	var rises []analytics.Alarm
	for _, a := range alarms(n) {
		if a.Kind == analytics.AlarmLossRise {
			rises = append(rises, a)
		}
	}
	if len(rises) != 2 {
		t.Fatalf("%d loss-rise alarms, want 2: %+v", len(rises), rises)
	}
	want := n.InputM3 * 0.15
	for i, b := range []time.Time{b1, b2} {
		a := rises[i]
		if a.At.Before(b) || a.At.Sub(b) > 24*time.Hour {
			t.Errorf("burst %d at %v: alarm at %v", i+1, b, a.At)
		}
		if b.Before(a.StartEarliest.Add(-time.Hour)) || b.After(a.StartLatest.Add(time.Hour)) {
			t.Errorf("burst %d at %v outside the start interval %v – %v", i+1, b, a.StartEarliest, a.StartLatest)
		}
		if a.SizeM3PerDay < 0.5*want || a.SizeM3PerDay > 1.6*want || a.SizePM95 <= 0 {
			t.Errorf("burst %d: size %.1f ± %.1f m³/day, true %.1f", i+1, a.SizeM3PerDay, a.SizePM95, want)
		}
	}
}

// A leak growing to 20 % of the input over ten weeks is caught within 30 days.
func TestDetectorCatchesGrowingLeak(t *testing.T) {
	for _, seed := range []uint64{11, 12} {
		b := start.Add(10 * 24 * time.Hour)
		n := sim.NewNetwork(sim.NetworkConfig{Seed: seed, Days: 45, Events: []sim.Event{{Kind: sim.EventGrowing, At: b, Pct: 20, Ramp: 70 * 24 * time.Hour}}})
		var got time.Time
		for _, a := range alarms(n) {
			if a.Kind == analytics.AlarmLossRise && got.IsZero() {
				if a.At.Before(b) {
					t.Errorf("seed %d: alarm before the leak: %s", seed, a.Reason)
				}
				got = a.At
			}
		}
		if got.IsZero() || got.Sub(b) > 30*24*time.Hour {
			t.Errorf("seed %d: growing leak from %v detected at %v", seed, b, got)
		}
	}
}

// A standing leak of 20 % from the first day cannot be a change: the standing rules flag
// it within a week; quiet districts are never flagged.
func TestStandingLossFlagged(t *testing.T) {
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 21, Days: 8, Events: []sim.Event{{Kind: sim.EventStanding, Pct: 20}}})
	kinds := map[string]time.Time{}
	for _, a := range alarms(n) {
		if _, ok := kinds[a.Kind]; !ok {
			kinds[a.Kind] = a.At
		}
	}
	for _, k := range []string{analytics.AlarmStandingNRW, analytics.AlarmStandingNight} {
		if at, ok := kinds[k]; !ok || at.Sub(n.Start) > 7*24*time.Hour {
			t.Errorf("%s: flagged at %v (start %v)", k, at, n.Start)
		}
	}
	q := sim.NewNetwork(sim.NetworkConfig{Seed: 21, Days: 8})
	for _, a := range alarms(q) {
		if strings.HasPrefix(a.Kind, "standing") {
			t.Errorf("quiet district flagged: %s", a.Reason)
		}
	}
}

// Customers read once a day: the windows become daily (StepFor), quiet days stay quiet,
// and a 15 % burst is caught within two days — the reads cannot say more sooner.
func TestDetectorOnDailyCustomerReads(t *testing.T) {
	b := start.Add(10*24*time.Hour + 5*time.Hour)
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 41, Days: 24, CustomerReadEvery: 24 * time.Hour,
		Events: []sim.Event{{Kind: sim.EventBurst, At: b, Pct: 15}}})
	if s := analytics.StepFor(n.Config, n.Data); s != 24*time.Hour {
		t.Fatalf("step %v for daily reads, want 24h", s)
	}
	ws := analytics.Windows(n.Config, n.Data, n.Start, n.End, 24*time.Hour)
	var got time.Time
	for _, a := range analytics.Detect(analytics.DetectorFor(n.Config, analytics.DetectorConfig{}), ws) {
		if a.Kind != analytics.AlarmLossRise {
			continue
		}
		if a.At.Before(b) {
			t.Errorf("alarm before the burst: %s", a.Reason)
		}
		if got.IsZero() {
			got = a.At
		}
	}
	if got.IsZero() || got.Sub(b) > 48*time.Hour {
		t.Errorf("burst at %v caught at %v", b, got)
	}
	h := sim.NewNetwork(sim.NetworkConfig{Seed: 41, Days: 2})
	if s := analytics.StepFor(h.Config, h.Data); s != time.Hour {
		t.Errorf("step %v for hourly reads, want 1h", s)
	}
}
