package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
)

// NetworkConfig describes one district metered area whose reads are generated directly
// (no devices): the water-balance benchmark and tests run many of these. The district has
// two inlets with a shifting split, an outlet to a neighbouring district, a tank whose
// level sensor reads in centimetres, bulk meters that count 100 L pulses and are off by
// up to 1 %, households with hour-to-hour noise and day-to-day drift, customer meters that
// under-register 1–4 %, unmetered connections, pressure-dependent background leakage,
// dropped reads and offline meters, and the events injected.
type NetworkConfig struct {
	Seed      uint64
	Start     time.Time // midnight; default 2026-01-05
	Days      int       // default 60
	Customers int       // metered households; default 150
	Events    []Event

	CustomerReadEvery time.Duration // default 1 h, each meter at its own phase
	BulkReadEvery     time.Duration // default 15 min
	InletStepL        float64       // bulk meters' pulse, litres; default 100
	TankAreaM2        float64       // default 30; negative: no tank
	LevelStepM        float64       // default 0.01
}

// Event kinds.
const (
	EventBurst    = "burst"    // abrupt leak of Pct % of the mean system input from At
	EventGrowing  = "growing"  // leak growing linearly from 0 at At to Pct % at At+Ramp, then steady
	EventStanding = "standing" // leak of Pct % present from the start (At is ignored)
	EventBypass   = "bypass"   // Victims meters, together DemandPct % of demand, register Pct % less from At
)

// Event is something that happens to the district.
type Event struct {
	Kind      string
	At        time.Time
	Ramp      time.Duration
	Pct       float64
	Victims   int
	DemandPct float64
}

// Network is a generated district: its configuration as the utility would write it, and
// the reads.
type Network struct {
	Config  analytics.DistrictConfig
	Data    analytics.Data
	Start   time.Time
	End     time.Time
	InputM3 float64  // mean system input per day without events, m³/day
	Victims []string // bypassed meters
}

// NewNetwork generates the district's reads.
func NewNetwork(c NetworkConfig) *Network {
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if c.Days <= 0 {
		c.Days = 60
	}
	if c.Customers <= 0 {
		c.Customers = 150
	}
	if c.CustomerReadEvery <= 0 {
		c.CustomerReadEvery = time.Hour
	}
	if c.BulkReadEvery <= 0 {
		c.BulkReadEvery = 15 * time.Minute
	}
	if c.InletStepL <= 0 {
		c.InletStepL = 100
	}
	if c.TankAreaM2 == 0 {
		c.TankAreaM2 = 30
	}
	if c.LevelStepM <= 0 {
		c.LevelStepM = 0.01
	}
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	hours := c.Days * 24
	nu := max(1, c.Customers/50) // unmetered connections: 2 %
	cons := make([]Consumption, c.Customers+nu)
	under := make([]float64, c.Customers)
	var demand float64 // litres/day, metered + unmetered
	for i := range cons {
		per := 150 + 450*unit(c.Seed, uint64(i), 1<<40)
		if unit(c.Seed, uint64(i), 1<<41) < 0.05 {
			per *= 5
		}
		cons[i] = Consumption{Seed: c.Seed, Index: uint64(i), PerDay: per, Origin: c.Start}
		demand += per
		if i < c.Customers {
			under[i] = 0.01 + 0.03*unit(c.Seed, uint64(i), 1<<48)
		}
	}
	var unmetered float64
	for _, x := range cons[c.Customers:] {
		unmetered += x.PerDay
	}
	bgPct := 0.03 + 0.04*unit(c.Seed, 0, 1<<42)
	bg := demand * bgPct / 24 // litres/hour
	n := &Network{Start: c.Start, End: c.Start.Add(time.Duration(hours) * time.Hour)}
	n.InputM3 = (demand + bg*24) / 1000
	meanIn := n.InputM3 * 1000 / 24 // litres/hour

	// Victims of bypasses: households whose demand together is DemandPct of the total.
	byp := map[int]Event{}
	for _, e := range c.Events {
		if e.Kind != EventBypass {
			continue
		}
		want := e.DemandPct / 100 * demand / float64(max(1, e.Victims))
		idx := make([]int, 0, c.Customers)
		for i := 0; i < c.Customers; i++ {
			if _, taken := byp[i]; !taken {
				idx = append(idx, i)
			}
		}
		sort.Slice(idx, func(a, b int) bool {
			da, db := math.Abs(cons[idx[a]].PerDay-want), math.Abs(cons[idx[b]].PerDay-want)
			if da != db {
				return da < db
			}
			return idx[a] < idx[b]
		})
		for _, i := range idx[:min(e.Victims, len(idx))] {
			byp[i] = e
		}
	}

	// Hour by hour: cumulative registers at hour boundaries.
	cum := make([][]float64, c.Customers) // registered litres
	for i := range cum {
		cum[i] = make([]float64, hours+1)
	}
	in1, in2, out := make([]float64, hours+1), make([]float64, hours+1), make([]float64, hours+1)
	level := make([]float64, hours+1)
	area := c.TankAreaM2
	vol0 := 3.0 * math.Max(area, 1) * 1000 // litres at 3 m
	vol := vol0
	level[0] = 3
	bias := [3]float64{1 + 0.02*(unit(c.Seed, 1, 1<<49)-0.5), 1 + 0.02*(unit(c.Seed, 2, 1<<49)-0.5), 1 + 0.02*(unit(c.Seed, 3, 1<<49)-0.5)}
	outCons := Consumption{Seed: c.Seed ^ 0xabcdef, Index: 1 << 20, PerDay: 0.2 * demand, Origin: c.Start}
	for h := 0; h < hours; h++ {
		t0 := c.Start.Add(time.Duration(h) * time.Hour)
		var d float64
		for i := range cons {
			u := cons[i].Hour(int64(h))
			d += u
			if i < c.Customers {
				r := u * (1 - under[i])
				if e, ok := byp[i]; ok {
					r *= 1 - e.Pct/100*overlap(t0, e.At)
				}
				cum[i][h+1] = cum[i][h] + r
			}
		}
		leak := bg * 0.95
		if hod := t0.Hour(); hod < 6 {
			leak = bg * 1.15 // higher pressure at night
		}
		for _, e := range c.Events {
			switch e.Kind {
			case EventBurst:
				leak += e.Pct / 100 * meanIn * overlap(t0, e.At)
			case EventStanding:
				leak += e.Pct / 100 * meanIn
			case EventGrowing:
				mid := t0.Add(30 * time.Minute)
				if mid.After(e.At) && e.Ramp > 0 {
					leak += e.Pct / 100 * meanIn * math.Min(1, float64(mid.Sub(e.At))/float64(e.Ramp))
				}
			}
		}
		o := outCons.Hour(int64(h))
		total := d + leak + o
		// The tank buffers the peaks and drifts back to its set level.
		fill := 0.0
		if area > 0 {
			fill = 0.5*(meanIn+outCons.PerDay/24-total) - 0.1*(vol-vol0)
			vol += fill
			level[h+1] = vol / (area * 1000)
		}
		inflow := total + fill
		split := 0.6 + 0.1*math.Sin(2*math.Pi*float64(h%24)/24)
		in1[h+1] = in1[h] + inflow*split*bias[0]
		in2[h+1] = in2[h] + inflow*(1-split)*bias[1]
		out[h+1] = out[h] + o*bias[2]
	}
	at := func(cum []float64, t time.Time) float64 {
		x := t.Sub(c.Start).Hours()
		h := int(math.Floor(x))
		if h >= hours {
			return cum[hours]
		}
		return cum[h] + (x-float64(h))*(cum[h+1]-cum[h])
	}
	data := analytics.Data{Registers: map[string]analytics.Series{}, Levels: map[string]analytics.Series{}}
	bulk := func(id string, cum []float64, k uint64) {
		var s analytics.Series
		phase := time.Duration(unit(c.Seed, k, 1<<43) * float64(c.BulkReadEvery))
		for t := c.Start.Add(phase); !t.After(n.End); t = t.Add(c.BulkReadEvery) {
			s = append(s, analytics.Read{T: t, Litres: math.Floor(at(cum, t)/c.InletStepL) * c.InletStepL})
		}
		data.Registers[id] = s
	}
	bulk("in1", in1, 1)
	bulk("in2", in2, 2)
	bulk("out1", out, 3)
	cfg := analytics.DistrictConfig{Name: fmt.Sprintf("dma-%d", c.Seed), Inlets: []string{"in1", "in2"}, Outlets: []string{"out1"}}
	if area > 0 {
		var s analytics.Series
		phase := time.Duration(unit(c.Seed, 4, 1<<43) * float64(c.BulkReadEvery))
		for t := c.Start.Add(phase); !t.After(n.End); t = t.Add(c.BulkReadEvery) {
			lv := at(level, t) + 0.003*rng.NormFloat64()
			s = append(s, analytics.Read{T: t, Litres: math.Round(lv/c.LevelStepM) * c.LevelStepM})
		}
		data.Levels["tank"] = s
		cfg.Tanks = []analytics.Tank{{Level: "tank", AreaM2: area, LevelStepM: c.LevelStepM}}
	}
	for i := 0; i < c.Customers; i++ {
		id := fmt.Sprintf("c%04d", i+1)
		cfg.Customers = append(cfg.Customers, id)
		if _, ok := byp[i]; ok {
			n.Victims = append(n.Victims, id)
		}
		// One meter in thirty has an offline period of 6–30 h; one read in a hundred is lost.
		var offFrom, offTo time.Time
		if unit(c.Seed, uint64(i), 1<<44) < 1.0/30 {
			offFrom = c.Start.Add(time.Duration(unit(c.Seed, uint64(i), 1<<45) * float64(n.End.Sub(c.Start))))
			offTo = offFrom.Add(time.Duration((6 + 24*unit(c.Seed, uint64(i), 1<<46)) * float64(time.Hour)))
		}
		var s analytics.Series
		phase := time.Duration(unit(c.Seed, uint64(i), 1<<47) * float64(c.CustomerReadEvery))
		for t := c.Start.Add(phase); !t.After(n.End); t = t.Add(c.CustomerReadEvery) {
			if (!t.Before(offFrom) && t.Before(offTo)) || (len(s) > 0 && rng.Float64() < 0.01) {
				continue
			}
			s = append(s, analytics.Read{T: t, Litres: math.Floor(at(cum[i], t))})
		}
		data.Registers[id] = s
	}
	// What the utility configures: its estimates, not the simulation's truth.
	allowance := unmetered * (0.8 + 0.4*unit(c.Seed, 5, 1<<49)) / 1000
	cfg.UnbilledUnmeteredM3PerDay = allowance
	cfg.NightAllowanceM3PerH = allowance / 24 * 0.2
	cfg.MeterUnderRegPct = 2
	cfg.UnauthorisedPct = 0.25
	cfg.Connections = c.Customers + nu
	cfg.MainsKm = 0.015 * float64(cfg.Connections)
	cfg.ServiceLengthM = 10
	cfg.AvgPressureM = 45
	cfg.NRWTargetPct = 15
	cfg.NightFlowTargetM3PerH = 0.1 * n.InputM3 / 24
	n.Config, n.Data = cfg, data
	return n
}

// overlap is the share of the hour starting at t0 that lies after at.
func overlap(t0, at time.Time) float64 {
	if at.IsZero() {
		return 0
	}
	return math.Max(0, math.Min(1, t0.Add(time.Hour).Sub(at).Hours()))
}
