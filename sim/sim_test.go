package sim

import (
	"math"
	"testing"
	"time"
)

func TestConsumptionIsAPureFunctionOfTime(t *testing.T) {
	o := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	c := Consumption{Seed: 1, Index: 9, PerDay: 400, Origin: o}
	a, b := c.At(o.Add(30*time.Hour+17*time.Minute)), c.At(o.Add(30*time.Hour+17*time.Minute))
	if a != b || a <= 0 {
		t.Fatalf("At is not deterministic: %v %v", a, b)
	}
	var prev float64
	for m := 0; m <= 48*60; m += 7 {
		v := c.At(o.Add(time.Duration(m) * time.Minute))
		if v < prev {
			t.Fatalf("register went backwards at minute %d", m)
		}
		prev = v
	}
	day := c.At(o.Add(24*time.Hour)) - c.At(o)
	if math.Abs(day-400) > 100 {
		t.Errorf("a day's use is %.0f L, want about 400", day)
	}
	night := c.At(o.Add(4*time.Hour)) - c.At(o.Add(2*time.Hour))
	morning := c.At(o.Add(9*time.Hour)) - c.At(o.Add(7*time.Hour))
	if night*3 > morning {
		t.Errorf("night use %.1f L is not well below the morning's %.1f L", night, morning)
	}
}

func TestClockSpeedChangeKeepsTimeContinuous(t *testing.T) {
	o := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	wall := time.Unix(1000, 0)
	c := NewClock(o, 10)
	c.wallNow = func() time.Time { return wall }
	if !c.Now().Equal(o) {
		t.Fatal("a stopped clock moved")
	}
	c.Start()
	wall = wall.Add(time.Second)
	if got := c.Now(); !got.Equal(o.Add(10 * time.Second)) {
		t.Fatalf("at 10x after 1 s: %v", got.Sub(o))
	}
	c.SetSpeed(100)
	if got := c.Now(); !got.Equal(o.Add(10 * time.Second)) {
		t.Fatalf("speed change jumped to %v", got.Sub(o))
	}
	wall = wall.Add(time.Second)
	if got := c.Now(); !got.Equal(o.Add(110 * time.Second)) {
		t.Fatalf("at 100x one more second: %v", got.Sub(o))
	}
	if !c.Origin().Equal(o) {
		t.Fatal("origin moved")
	}
	c.Stop()
	wall = wall.Add(time.Hour)
	if got := c.Now(); !got.Equal(o.Add(110 * time.Second)) {
		t.Fatalf("a stopped clock moved to %v", got.Sub(o))
	}
}
