package sim

import (
	"math"
	"time"
)

// Consumption is a meter's true water use, a pure function of time: a daily pattern (low
// at night, peaks at breakfast and dinner) times hour-to-hour noise drawn from a hash of
// (seed, meter, hour), so any goroutine can ask any meter's cumulative use at any time
// without shared state, and the district's bulk meter is exactly the sum of its parts.
type Consumption struct {
	Seed   uint64
	Index  uint64  // meter number: selects its noise
	PerDay float64 // mean litres per day
	Origin time.Time
}

// dayShape is the share of daily use in each hour, scaled so the weights sum to 24.
var dayShape = func() [24]float64 {
	w := [24]float64{0.25, 0.2, 0.15, 0.15, 0.2, 0.5, 1.4, 2.3, 2.0, 1.3, 1.0, 1.0,
		1.1, 1.0, 0.9, 0.9, 1.0, 1.3, 1.8, 2.0, 1.6, 1.1, 0.7, 0.4}
	var s float64
	for _, x := range w {
		s += x
	}
	for i := range w {
		w[i] *= 24 / s
	}
	return w
}()

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit is a deterministic uniform number in [0, 1).
func unit(a, b, c uint64) float64 {
	return float64(splitmix(a^splitmix(b^splitmix(c)))>>11) / (1 << 53)
}

// hourly is the litres used during hour h after the origin.
func (c *Consumption) hourly(h int64) float64 {
	hod := (int(c.Origin.Add(time.Duration(h)*time.Hour).Hour()) + 24) % 24
	noise := 0.6 + 0.8*unit(c.Seed, c.Index, uint64(h))
	return c.PerDay / 24 * dayShape[hod] * noise * c.dayFactor(floorDiv(h, 24))
}

// Hour is the litres used during hour h after the origin.
func (c *Consumption) Hour(h int64) float64 { return c.hourly(h) }

// dayFactor is the household's day-to-day variation: a drift that wanders between
// weekly knots (a guest staying, a family away for some days: ±20 %) times an
// independent day-to-day factor (±15 %). Both have mean 1.
func (c *Consumption) dayFactor(day int64) float64 {
	k := floorDiv(day, 7)
	f := float64(day-7*k) / 7
	knot := func(k int64) float64 { return 0.8 + 0.4*unit(c.Seed, c.Index, uint64(k)|1<<51) }
	drift := (1-f)*knot(k) + f*knot(k+1)
	return drift * (0.85 + 0.3*unit(c.Seed, c.Index, uint64(day)|1<<50))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// At is the cumulative litres used from the origin to t.
func (c *Consumption) At(t time.Time) float64 {
	el := t.Sub(c.Origin)
	if el <= 0 {
		return 0
	}
	hours := el.Hours()
	full := int64(math.Floor(hours))
	var s float64
	for h := int64(0); h < full; h++ {
		s += c.hourly(h)
	}
	return s + (hours-float64(full))*c.hourly(full)
}
