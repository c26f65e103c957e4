package sim

import (
	"testing"
	"time"
)

// Behind measures the oldest step still due, so the demo can tell a stalled simulation
// from silent meters.
func TestBehindIsTheOldestDueStep(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	town := &Town{Meters: []*Meter{{due: now.Add(time.Minute)}, {due: now.Add(-40 * time.Minute)}, {due: now.Add(-5 * time.Minute)}}}
	if got := town.Behind(now); got != 40*time.Minute {
		t.Fatalf("Behind = %s, want 40m", got)
	}
	town.Meters[1].due = now.Add(time.Second)
	town.Meters[2].due = now
	if got := town.Behind(now); got != 0 {
		t.Fatalf("Behind = %s with nothing overdue, want 0", got)
	}
}
