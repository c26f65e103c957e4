package analytics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/sim"
)

// Three bypassed meters (50 % under-registration, together 2 % of demand) and a burst of
// 15 % of the input starting the same hour. After 7 days the victims are the top 3 — the
// burst puts no honest meter above them — and the verdict sends the burst to the network
// team, with nearly every meter short of the inlet together.
func TestInspectSeparatesBypassFromBurst(t *testing.T) {
	b := start.Add(10*24*time.Hour + 9*time.Hour)
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 31, Days: 18, Events: []sim.Event{
		{Kind: sim.EventBypass, At: b, Pct: 50, Victims: 3, DemandPct: 2},
		{Kind: sim.EventBurst, At: b, Pct: 15}}})
	in, err := analytics.Inspect(n.Config, n.Data, n.Start, b.Add(7*24*time.Hour), analytics.InspectConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	victim := map[string]bool{}
	for _, v := range n.Victims {
		victim[v] = true
	}
	for _, c := range in.List[:3] {
		if !victim[c.Device] || !c.Flagged || c.ShortfallPct < 35 || c.ShortfallPct > 65 || c.AtStakeM3Day <= 0 {
			t.Errorf("top 3 must be the victims, flagged, ~50 %% short: %+v", c)
		}
		if c.Since.Before(b.Add(-12*time.Hour)) || !strings.Contains(c.Reason, "less than its usual share") {
			t.Errorf("victim %s: since %v (bypass %v), reason %q", c.Device, c.Since, b, c.Reason)
		}
	}
	t.Logf("network: %s", in.Network)
	if !strings.Contains(in.Network, "real loss") || !strings.Contains(in.Network, "net night flow") || in.ShortTogetherPct < 60 {
		t.Errorf("network verdict %q, %.0f %% short together: want the burst called a real loss", in.Network, in.ShortTogetherPct)
	}
	if in.Balance == nil || in.LastDay == nil || in.LastDay.NonRevenuePct <= in.Balance.NonRevenuePct || len(in.Night) < 7 {
		t.Errorf("balances: whole %+v, last day %+v, %d nights", in.Balance, in.LastDay, len(in.Night))
	}
}

// A burst alone: no customer carries it. The loss-rise alarm is called a real loss and the
// flagged meters' volume (if any) explains less than half of it.
func TestInspectBurstBlamesNoCustomer(t *testing.T) {
	b := start.Add(10*24*time.Hour + 3*time.Hour)
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 32, Days: 14, Events: []sim.Event{{Kind: sim.EventBurst, At: b, Pct: 15}}})
	in, err := analytics.Inspect(n.Config, n.Data, n.Start, n.End, analytics.InspectConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stake float64
	for _, c := range in.List {
		if c.Flagged {
			stake += c.AtStakeM3Day
		}
	}
	if !strings.Contains(in.Network, "real loss") || stake > 0.5*0.15*n.InputM3 {
		t.Errorf("verdict %q; flagged meters carry %.2f m³/day of a %.2f m³/day burst", in.Network, stake, 0.15*n.InputM3)
	}
}

// Tamper evidence from the seal raises a meter's rank: the same district, the same data,
// a meter from the middle of the list with a cover-open alert moves up.
func TestSealEvidenceRaisesRank(t *testing.T) {
	n := sim.NewNetwork(sim.NetworkConfig{Seed: 33, Days: 10})
	cfg := analytics.InspectConfig{}
	plain, err := analytics.Inspect(n.Config, n.Data, n.Start, n.End, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	mid := plain.List[len(plain.List)/2]
	seals := map[string]analytics.Seal{mid.Device: {State: "tampered", Tamper: []string{"cover-open"}}}
	sealed, _ := analytics.Inspect(n.Config, n.Data, n.Start, n.End, cfg, seals)
	for _, c := range sealed.List {
		if c.Device != mid.Device {
			continue
		}
		if c.Rank >= mid.Rank || c.Score-mid.Score < analytics.SealOddsNats-1e-9 || !strings.Contains(c.Reason, "cover-open") {
			t.Errorf("with tamper evidence: rank %d (was %d), score %.2f (was %.2f), reason %q", c.Rank, mid.Rank, c.Score, mid.Score, c.Reason)
		}
	}
}

// The demo's case: one virtual day, the shares learned over its first 7 hours — the
// night, whose use is mostly its last hour or two — and one typical household bypassed
// (registering 15 %) at 08:24. Over 20 seeded districts of 100 households read every 15
// minutes, the victim tops its list and is flagged, and no honest meter is flagged: an
// evening of a few low hours is not a bypass, however well the night seemed to fix the share.
func TestInspectShortBaselineFlagsOnlyTheBypass(t *testing.T) {
	day := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	ic := analytics.InspectConfig{Baseline: 7 * time.Hour}
	var honestFlagged, honest int
	for seed := uint64(1); seed <= 20; seed++ {
		n := sim.NewNetwork(sim.NetworkConfig{Seed: seed, Start: day, Days: 1, Customers: 100,
			CustomerReadEvery: 15 * time.Minute, Events: []sim.Event{
				{Kind: sim.EventBypass, At: day.Add(8*time.Hour + 24*time.Minute), Pct: 85, Victims: 1, DemandPct: 1}}})
		in, err := analytics.Inspect(n.Config, n.Data, n.Start, n.End, ic, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(n.Victims) != 1 || len(in.List) == 0 {
			t.Fatalf("seed %d: victims %v, list of %d", seed, n.Victims, len(in.List))
		}
		if top := in.List[0]; top.Device != n.Victims[0] || !top.Flagged {
			t.Errorf("seed %d: the victim %s must top the list, flagged: top is %+v", seed, n.Victims[0], top)
		}
		for _, c := range in.List {
			if c.Device == n.Victims[0] {
				continue
			}
			honest++
			if c.Flagged {
				honestFlagged++
				t.Errorf("seed %d: honest meter flagged: %+v", seed, c)
			}
		}
	}
	t.Logf("honest meters flagged: %d of %d", honestFlagged, honest)
}
