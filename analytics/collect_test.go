package analytics

import (
	"testing"
	"time"
)

// Forget keeps the last read before the cut, so a total from the cut on still
// interpolates at its start and equals the one over the full series.
func TestCollectorForgetKeepsTheReadBeforeTheCut(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var s Series
	for h := range 48 {
		s = append(s, Read{T: t0.Add(time.Duration(h)*time.Hour + 30*time.Minute), Litres: float64(100 * h)})
	}
	c := NewCollector(nil)
	c.series["m"] = s
	cfg := DistrictConfig{Name: "d", Inlets: []string{"m"}, Customers: []string{"m"}}
	from, to := t0.Add(24*time.Hour), t0.Add(40*time.Hour)
	before, err := Balance(cfg, c.Data([]string{"m"}), from, to)
	if err != nil {
		t.Fatal(err)
	}
	c.Forget(from)
	got := c.Series("m")
	if len(got) != 25 || !got[0].T.Before(from) || got[1].T.Before(from) {
		t.Fatalf("after Forget: %d reads from %v", len(got), got[0].T)
	}
	after, err := Balance(cfg, c.Data([]string{"m"}), from, to)
	if err != nil {
		t.Fatal(err)
	}
	if after.SystemInputM3 != before.SystemInputM3 || after.SystemInputM3 == 0 {
		t.Fatalf("system input %v after Forget, %v before", after.SystemInputM3, before.SystemInputM3)
	}
	c.Forget(from) // again: nothing more to drop
	if len(c.Series("m")) != 25 {
		t.Fatal("a second Forget dropped the read before the cut")
	}
}
