// Package analytics turns meter registers into the utility's answers: district water
// balance (what the bulk inlet meter delivered against what the district's meters
// registered, window by window), night flow, and an inspection list that ranks meters by
// how much their registration fell behind their usual share once the district's losses
// stepped up — which is how a bypass or a stalled meter shows when the meter itself
// reports nothing wrong.
//
// The inputs are signed billing reads: register entries of the devices' evidence logs,
// verified by the server before they were stored.
package analytics

import (
	"math"
	"sort"
	"time"
)

// Read is one register reading: cumulative litres at a time.
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

// Usage is the litres registered between from and to; false when the series does not
// cover the interval.
func (s Series) Usage(from, to time.Time) (float64, bool) {
	a, ok1 := s.At(from)
	b, ok2 := s.At(to)
	return b - a, ok1 && ok2
}

// District is what the balance needs of one district.
type District struct {
	Name   string
	Inlet  Series
	Meters map[string]Series
}

// Window is the balance of one district over one window.
type Window struct {
	From, To  time.Time
	Inlet     float64 // litres delivered through the inlet
	Metered   float64 // litres registered by the district's meters
	Loss      float64 // Inlet − Metered: leaks, theft, under-registration
	Estimated int     // meters not covering the window, estimated from their mean rate
}

// Balance computes the district's water balance over consecutive windows of length step.
// Windows start once every meter has read and end where nine in ten meters have read: the
// rest report later in their interval, and a meter that is silent or offline must not hold
// the balance back. A meter not covering a window is estimated from its usual share of the
// covered meters' use in that window (so the estimate follows the day's pattern) and the
// window says how many were.
func Balance(d *District, step time.Duration) []Window {
	if len(d.Inlet) < 2 || step <= 0 {
		return nil
	}
	first := d.Inlet[0].T
	end := d.Inlet[len(d.Inlet)-1].T
	var lasts []time.Time
	for _, s := range d.Meters {
		if len(s) == 0 {
			continue
		}
		if s[0].T.After(first) {
			first = s[0].T
		}
		lasts = append(lasts, s[len(s)-1].T)
	}
	if len(lasts) > 0 {
		sort.Slice(lasts, func(i, j int) bool { return lasts[i].Before(lasts[j]) })
		if q := lasts[len(lasts)/10]; q.Before(end) {
			end = q
		}
	}
	start := first.Truncate(step)
	if start.Before(first) {
		start = start.Add(step)
	}
	ids := make([]string, 0, len(d.Meters))
	for id := range d.Meters {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	type cell struct {
		u  float64
		ok bool
	}
	var froms []time.Time
	for from := start; !from.Add(step).After(end); from = from.Add(step) {
		froms = append(froms, from)
	}
	use := make([][]cell, len(froms)) // [window][meter]
	covered := make([]float64, len(froms))
	for wi, from := range froms {
		use[wi] = make([]cell, len(ids))
		for mi, id := range ids {
			u, ok := d.Meters[id].Usage(from, from.Add(step))
			use[wi][mi] = cell{u, ok}
			if ok {
				covered[wi] += u
			}
		}
	}
	share := make([]float64, len(ids))
	for mi := range ids {
		var u, c float64
		for wi := range froms {
			if use[wi][mi].ok {
				u += use[wi][mi].u
				c += covered[wi]
			}
		}
		if c > 0 {
			share[mi] = u / c
		}
	}
	out := make([]Window, 0, len(froms))
	for wi, from := range froms {
		in, _ := d.Inlet.Usage(from, from.Add(step))
		w := Window{From: from, To: from.Add(step), Inlet: in, Metered: covered[wi]}
		for mi := range ids {
			if !use[wi][mi].ok {
				w.Metered += share[mi] * covered[wi]
				w.Estimated++
			}
		}
		w.Loss = w.Inlet - w.Metered
		out = append(out, w)
	}
	return out
}

// NightFlow is the smallest hourly inlet flow of a night against what the meters
// registered in that hour: at 3 a.m. nearly nobody draws water, so what still flows is
// mostly leakage.
type NightFlow struct {
	Night        time.Time `json:"night"` // midnight starting the night
	InletLPH     float64   `json:"inlet_l_per_h"`
	MeteredLPH   float64   `json:"metered_l_per_h"`
	UnaccountedH float64   `json:"unaccounted_l_per_h"` // litres per hour not registered by any meter
}

// NightFlows picks, for each night, the hour between 01:00 and 05:00 with the least inlet
// flow. windows must be hourly (Balance with step = 1 h).
func NightFlows(windows []Window) []NightFlow {
	best := map[time.Time]Window{}
	for _, w := range windows {
		if h := w.From.Hour(); h < 1 || h >= 5 || w.To.Sub(w.From) != time.Hour {
			continue
		}
		night := time.Date(w.From.Year(), w.From.Month(), w.From.Day(), 0, 0, 0, 0, w.From.Location())
		if b, ok := best[night]; !ok || w.Inlet < b.Inlet {
			best[night] = w
		}
	}
	var out []NightFlow
	for n, w := range best {
		out = append(out, NightFlow{Night: n, InletLPH: w.Inlet, MeteredLPH: w.Metered, UnaccountedH: w.Loss})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Night.Before(out[j].Night) })
	return out
}

// ChangePoint finds where the district's losses stepped up: the window index that best
// splits Loss into a lower "before" and a higher "after" (largest t-like statistic), with
// at least min windows on each side. ok is false when the losses did not rise.
func ChangePoint(windows []Window, min int) (idx int, step float64, ok bool) {
	n := len(windows)
	if min < 2 {
		min = 2
	}
	if n < 2*min {
		return 0, 0, false
	}
	prefix := make([]float64, n+1)
	for i, w := range windows {
		prefix[i+1] = prefix[i] + w.Loss
	}
	var sd float64
	mean := prefix[n] / float64(n)
	for _, w := range windows {
		sd += (w.Loss - mean) * (w.Loss - mean)
	}
	sd = math.Sqrt(sd / float64(n))
	if sd == 0 {
		return 0, 0, false
	}
	bestStat := 0.0
	for k := min; k <= n-min; k++ {
		before := prefix[k] / float64(k)
		after := (prefix[n] - prefix[k]) / float64(n-k)
		d := after - before
		stat := d / sd * math.Sqrt(float64(k*(n-k))/float64(n))
		if d > 0 && stat > bestStat {
			bestStat, idx, step = stat, k, d
		}
	}
	return idx, step, bestStat > 0
}
