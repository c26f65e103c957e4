// Package analytics turns meter registers into a utility's answers, in the terms of the
// IWA/AWWA water balance (AWWA M36): per district and period, system input volume (several
// inlets and outlets, corrected for storage in a tank inside the district), billed and
// unbilled consumption, water losses split into apparent and real, non-revenue water and
// the infrastructure leakage index (Balance, WriteCSV); night flow against the customers'
// own measured night use (NightFlows); a sequential detector with a stated decision rule
// and a calibrated false-alarm rate (Detector); and an inspection list that separates
// losses in the network from meters that stopped registering their share (Inspector,
// Inspect). docs/WATER_BALANCE.md states every rule.
//
// Inputs are cumulative registers (litres) and tank levels (metres), read at any times:
// every total over a period is prorated by linear interpolation of the cumulative
// register to the period's boundaries. Outputs are in m³, m³/day, % and litres per
// connection per day. Nothing here depends on the server: a caller hands in reads.
package analytics

import (
	"math"
	"sort"
	"time"
)

// Read is one register reading: cumulative litres at a time. A tank level series uses the
// same type with Litres holding the level in metres (see Data.Levels).
type Read struct {
	T      time.Time
	Litres float64
}

// Series is a meter's reads in time order.
type Series []Read

// At is the register at t by linear interpolation; false outside the series.
func (s Series) At(t time.Time) (float64, bool) {
	if len(s) == 0 || t.Before(s[0].T) || t.After(s[len(s)-1].T) {
		return 0, false
	}
	i := sort.Search(len(s), func(i int) bool { return !s[i].T.Before(t) })
	if s[i].T.Equal(t) || i == 0 {
		return s[i].Litres, true
	}
	a, b := s[i-1], s[i]
	f := float64(t.Sub(a.T)) / float64(b.T.Sub(a.T))
	return a.Litres + f*(b.Litres-a.Litres), true
}

// Usage is the litres registered between from and to, prorated over the reads either side
// of each boundary; false when the series does not cover the interval.
func (s Series) Usage(from, to time.Time) (float64, bool) {
	a, ok1 := s.At(from)
	b, ok2 := s.At(to)
	return b - a, ok1 && ok2
}

// Gap is the time between the reads either side of t (zero on a read; false outside the
// series): how much of an interpolated value at t is guesswork.
func (s Series) Gap(t time.Time) (time.Duration, bool) {
	if len(s) == 0 || t.Before(s[0].T) || t.After(s[len(s)-1].T) {
		return 0, false
	}
	i := sort.Search(len(s), func(i int) bool { return !s[i].T.Before(t) })
	if s[i].T.Equal(t) || i == 0 {
		return 0, true
	}
	return s[i].T.Sub(s[i-1].T), true
}

// Covers reports whether the series has reads at or before from and at or after to.
func (s Series) Covers(from, to time.Time) bool {
	return len(s) > 0 && !s[0].T.After(from) && !s[len(s)-1].T.Before(to)
}

// Last is the time of the last read (zero for an empty series).
func (s Series) Last() time.Time {
	if len(s) == 0 {
		return time.Time{}
	}
	return s[len(s)-1].T
}

// UsageEstimated is Usage where the series covers the interval; where it does not, the part
// outside its reads is estimated at the meter's mean rate over all its reads. estimated
// says whether any of it was; ok is false when the meter has fewer than two reads.
func (s Series) UsageEstimated(from, to time.Time) (litres float64, estimated, ok bool) {
	if len(s) < 2 || !s[len(s)-1].T.After(s[0].T) {
		return 0, true, false
	}
	first, last := s[0].T, s[len(s)-1].T
	rate := (s[len(s)-1].Litres - s[0].Litres) / last.Sub(first).Hours()
	a, b := from, to
	if a.Before(first) {
		end := first
		if to.Before(end) {
			end = to
		}
		litres += rate * end.Sub(a).Hours()
		a, estimated = first, true
	}
	if b.After(last) {
		beg := last
		if from.After(beg) {
			beg = from
		}
		litres += rate * b.Sub(beg).Hours()
		b, estimated = last, true
	}
	if a.Before(b) {
		u, _ := s.Usage(a, b)
		litres += u
	}
	return litres, estimated, true
}

// Rate is the register's mean rate in litres per hour over [from, to]. With four or more
// reads inside the interval it is the least-squares slope through them, which a register
// that moves in coarse steps (a bulk meter's 100 L pulses, a level sensor's centimetres)
// leaves unbiased where the difference of two interpolated ends would carry a whole step
// of error; otherwise it is the prorated difference. ok is false when the series covers
// neither way.
func (s Series) Rate(from, to time.Time) (float64, bool) {
	if !to.After(from) {
		return 0, false
	}
	i := sort.Search(len(s), func(i int) bool { return !s[i].T.Before(from) })
	j := sort.Search(len(s), func(i int) bool { return s[i].T.After(to) })
	if j-i >= 4 {
		return slope(s[i:j], from), true
	}
	u, ok := s.Usage(from, to)
	return u / to.Sub(from).Hours(), ok
}

// slope is the least-squares slope (per hour) of the reads, times taken from origin.
func slope(rs []Read, origin time.Time) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(rs))
	for _, r := range rs {
		x := r.T.Sub(origin).Hours()
		sx += x
		sy += r.Litres
		sxx += x * x
		sxy += x * r.Litres
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// Smoothed is the series' value at t from a straight line fitted to the reads within
// ±half of t (at least three of them on both sides together), so a quantised sensor read
// often gives a value finer than its step; otherwise the interpolated read. ok is false
// outside the series.
func (s Series) Smoothed(t time.Time, half time.Duration) (float64, bool) {
	if half > 0 {
		i := sort.Search(len(s), func(i int) bool { return !s[i].T.Before(t.Add(-half)) })
		j := sort.Search(len(s), func(i int) bool { return s[i].T.After(t.Add(half)) })
		if j-i >= 3 && i < len(s) && s[i].T.Before(t) && s[j-1].T.After(t) {
			b := slope(s[i:j], t)
			var my, mx float64
			for _, r := range s[i:j] {
				my += r.Litres
				mx += r.T.Sub(t).Hours()
			}
			n := float64(j - i)
			return my/n - b*mx/n, true
		}
	}
	return s.At(t)
}

// quantile of xs (sorted in place), q in [0, 1], linear between order statistics.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	p := q * float64(len(xs)-1)
	i := int(math.Floor(p))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	return xs[i] + (p-float64(i))*(xs[i+1]-xs[i])
}
