package analytics

import (
	"math"
	"sort"
	"time"
)

// Window is a district's balance over one short window (an hour, usually): the series the
// detector and the inspector read. Volumes in m³.
type Window struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	InputM3     float64   `json:"input_m3"`     // system input: inflows − outflows − storage increase
	BilledM3    float64   `json:"billed_m3"`    // billed metered (estimated where a meter is not read) + billed unmetered allowance
	AllowanceM3 float64   `json:"allowance_m3"` // unbilled and billed-unmetered allowances
	MeteredM3   float64   `json:"metered_m3"`   // customers' registers, with estimates for those not covering the window
	LossM3      float64   `json:"loss_m3"`      // water losses: input − metered − allowances
	Use         []float64 `json:"-"`            // per customer (DistrictConfig.Customers order); NaN where not read
	Estimated   int       `json:"estimated"`    // customers not covering the window
}

// Hours is the window's length in hours.
func (w Window) Hours() float64 { return w.To.Sub(w.From).Hours() }

// ReadyUntil is how far the district's data is complete enough for windows: every bulk
// meter and level sensor has read, and nine in ten customer meters (the rest report later
// in their interval, or are offline, and must not hold the balance back).
func ReadyUntil(cfg DistrictConfig, data Data) time.Time {
	var end time.Time
	take := func(t time.Time) {
		if end.IsZero() || t.Before(end) {
			end = t
		}
	}
	for _, id := range append(append([]string(nil), cfg.Inlets...), cfg.Outlets...) {
		take(data.Registers[id].Last())
	}
	for _, tk := range cfg.Tanks {
		// The smoothed level at t wants reads up to an hour after it.
		take(data.Levels[tk.Level].Last().Add(-time.Hour))
	}
	var lasts []time.Time
	for _, id := range cfg.Customers {
		if s := data.Registers[id]; len(s) > 0 {
			lasts = append(lasts, s.Last())
		}
	}
	if len(lasts) > 0 {
		sort.Slice(lasts, func(i, j int) bool { return lasts[i].Before(lasts[j]) })
		take(lasts[len(lasts)/10])
	}
	return end
}

// Windows splits [from, to) into windows of length step (aligned to step from the Unix
// epoch) and balances each. Windows start where the bulk meters and tanks first cover
// them and stop where one stops; windows in a gap of a bulk meter's reads longer than
// DistrictConfig.MaxBulkGapHours are left out (the detector and inspector read the windows that remain).
// A customer not covering a window is estimated from its usual share of the read
// customers' use, so the estimate follows the hour's pattern; Use keeps NaN for it.
func Windows(cfg DistrictConfig, data Data, from, to time.Time, step time.Duration) []Window {
	if step <= 0 || !to.After(from) {
		return nil
	}
	start := from.Truncate(step)
	if start.Before(from) {
		start = start.Add(step)
	}
	allow := cfg.BilledUnmeteredM3PerDay + cfg.UnbilledMeteredM3PerDay + cfg.UnbilledUnmeteredM3PerDay
	// A bulk meter's window is trusted only where its reads are no further apart than
	// MaxBulkGapHours: across a longer gap interpolation would invent the hours' pattern.
	maxGap := 3 * time.Hour
	if cfg.MaxBulkGapHours > 0 {
		maxGap = time.Duration(cfg.MaxBulkGapHours * float64(time.Hour))
	}
	var bulkEnd time.Time
	bulkOK := func(s Series, a, b time.Time) bool {
		ga, ok1 := s.Gap(a)
		gb, ok2 := s.Gap(b)
		return ok1 && ok2 && ga <= maxGap && gb <= maxGap
	}
	for i, id := range append(append([]string(nil), cfg.Inlets...), cfg.Outlets...) {
		if l := data.Registers[id].Last(); i == 0 || l.Before(bulkEnd) {
			bulkEnd = l
		}
	}
	var out []Window
	for a := start; !a.Add(step).After(to); a = a.Add(step) {
		b := a.Add(step)
		w := Window{From: a, To: b, Use: make([]float64, len(cfg.Customers))}
		ok := true
		for _, id := range cfg.Inlets {
			l, c := data.Registers[id].Usage(a, b)
			ok = ok && c && bulkOK(data.Registers[id], a, b)
			w.InputM3 += l / 1000
		}
		for _, id := range cfg.Outlets {
			l, c := data.Registers[id].Usage(a, b)
			ok = ok && c && bulkOK(data.Registers[id], a, b)
			w.InputM3 -= l / 1000
		}
		for _, tk := range cfg.Tanks {
			lv := data.Levels[tk.Level]
			x, c1 := lv.Smoothed(a, time.Hour)
			y, c2 := lv.Smoothed(b, time.Hour)
			ok = ok && c1 && c2 && bulkOK(lv, a, b)
			w.InputM3 -= (y - x) * tk.AreaM2
		}
		if !ok {
			if b.After(bulkEnd) && len(out) > 0 {
				break // past the bulk meters' last reads
			}
			continue // before their first reads, or in a gap
		}
		for i, id := range cfg.Customers {
			l, c := data.Registers[id].Usage(a, b)
			if !c || l < 0 { // not read, or a register that went back (meter replaced)
				w.Use[i] = math.NaN()
				w.Estimated++
				continue
			}
			w.Use[i] = l / 1000
			w.MeteredM3 += l / 1000
		}
		w.AllowanceM3 = allow * step.Hours() / 24
		out = append(out, w)
	}
	// Estimate the customers not read in a window from their share over the windows where
	// they were.
	share := make([]float64, len(cfg.Customers))
	for i := range cfg.Customers {
		var u, tot float64
		for _, w := range out {
			if !math.IsNaN(w.Use[i]) {
				u += w.Use[i]
				tot += w.MeteredM3
			}
		}
		if tot > 0 {
			share[i] = u / tot
		}
	}
	billedAllow := cfg.BilledUnmeteredM3PerDay * step.Hours() / 24
	for k := range out {
		w := &out[k]
		read := w.MeteredM3
		for i := range cfg.Customers {
			if math.IsNaN(w.Use[i]) {
				w.MeteredM3 += share[i] * read
			}
		}
		w.BilledM3 = w.MeteredM3 + billedAllow
		w.LossM3 = w.InputM3 - w.MeteredM3 - w.AllowanceM3
	}
	return out
}

// StepFor is the window length the district's data supports: the shortest of 1, 2, 3, 4,
// 6, 8, 12 and 24 hours that is at least the customers' median read interval. Hourly
// losses from customers read once a day would be the inlet's daily pattern against a flat
// line — noise that hides every leak — so the detector and the inspector work on windows
// their reads resolve, and cannot detect faster than that.
func StepFor(cfg DistrictConfig, data Data) time.Duration {
	var gaps []float64
	for _, id := range cfg.Customers {
		s := data.Registers[id]
		if len(s) >= 2 {
			gaps = append(gaps, s.Last().Sub(s[0].T).Hours()/float64(len(s)-1))
		}
	}
	med := quantile(gaps, 0.5)
	for _, h := range []float64{1, 2, 3, 4, 6, 8, 12} {
		if med <= h*1.05 {
			return time.Duration(h) * time.Hour
		}
	}
	return 24 * time.Hour
}

// Night is one night's flow, averaged over the district's night window.
type Night struct {
	Date          time.Time `json:"date"`             // midnight starting the night
	InputM3PerH   float64   `json:"input_m3_per_h"`   // system input rate (inflows − outflows − storage)
	MeteredM3PerH float64   `json:"metered_m3_per_h"` // customers' own measured night use
	NetM3PerH     float64   `json:"net_m3_per_h"`     // input − metered − night allowance: mostly leakage
	NetLConnH     float64   `json:"net_l_per_connection_per_h,omitempty"`
}

// NightFlows gives, for each night in [from, to), the district's minimum-night-flow
// figure: the mean rate over the whole night window (default 02:00–04:00), not the single
// lowest hour, which a quantised or noisy inlet biases low. Bulk meters' and tank levels'
// rates are least-squares slopes through their reads in the window (Series.Rate); the
// customers' night use is their own registers over the same hours.
func NightFlows(cfg DistrictConfig, data Data, from, to time.Time) []Night {
	nf, nt := cfg.NightFrom, cfg.NightTo
	if nt <= nf {
		nf, nt = 2, 4
	}
	var out []Night
	if loc, err := cfg.Location(); err == nil && loc != nil {
		from = from.In(loc)
	}
	day := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, from.Location())
	for ; day.Before(to); day = day.AddDate(0, 0, 1) {
		a, b := day.Add(time.Duration(nf)*time.Hour), day.Add(time.Duration(nt)*time.Hour)
		if a.Before(from) || b.After(to) {
			continue
		}
		n := Night{Date: day}
		ok := true
		for _, id := range cfg.Inlets {
			r, c := data.Registers[id].Rate(a, b)
			ok = ok && c
			n.InputM3PerH += r / 1000
		}
		for _, id := range cfg.Outlets {
			r, c := data.Registers[id].Rate(a, b)
			ok = ok && c
			n.InputM3PerH -= r / 1000
		}
		for _, tk := range cfg.Tanks {
			r, c := data.Levels[tk.Level].Rate(a, b)
			ok = ok && c
			n.InputM3PerH -= r * tk.AreaM2
		}
		if !ok {
			continue
		}
		var read, share float64
		for _, id := range cfg.Customers {
			if u, c := data.Registers[id].Usage(a, b); c {
				read += u / 1000
				share++
			}
		}
		if share == 0 {
			continue
		}
		// Scale up for customers not read that night (few, usually).
		n.MeteredM3PerH = read * float64(len(cfg.Customers)) / share / b.Sub(a).Hours()
		n.NetM3PerH = n.InputM3PerH - n.MeteredM3PerH - cfg.NightAllowanceM3PerH
		if cfg.Connections > 0 {
			n.NetLConnH = n.NetM3PerH * 1000 / float64(cfg.Connections)
		}
		out = append(out, n)
	}
	return out
}
