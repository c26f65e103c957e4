package analytics

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// InspectConfig sets the inspection list's rules. Zero values take the defaults.
type InspectConfig struct {
	// Baseline is how much data, from the first window, sets each meter's usual share of
	// its district and how much that share scatters [7 days].
	Baseline time.Duration
	// DesignShortfall is the under-registration the per-meter test is tuned to find, as a
	// fraction of the meter's expected use [0.3].
	DesignShortfall float64
	// ShareDrift is how much a household's share of its district wanders from week to
	// week without any fault (guests, holidays, a new appliance), as a fraction [0.15]:
	// it caps how sure a sustained shortfall can make the list.
	ShareDrift float64
	// FlagNats is the evidence (log-likelihood ratio) above which a meter is flagged for a
	// visit [ln 100 ≈ 4.6: the shortfall is 100 times likelier than an honest meter's scatter].
	FlagNats float64
	// Detector is passed on to the district's Detector by Inspect.
	Detector DetectorConfig
}

// Seal is what the evidence log says of a meter: its state on the server ("trusted",
// "suspect", "tampered", "silent", …) and the kinds of tamper evidence it has raised.
type Seal struct {
	State  string   `json:"state,omitempty"`
	Tamper []string `json:"tamper,omitempty"`
}

// SealOddsNats is what tamper evidence, or a meter the server no longer trusts, adds to a
// meter's score: prior odds of 10 to 1 that its shortfall is real, in nats.
var SealOddsNats = math.Log(10)

// Candidate is one meter on a district's inspection list.
type Candidate struct {
	Device       string    `json:"device"`
	District     string    `json:"district"`
	Rank         int       `json:"rank"`
	Score        float64   `json:"score"`    // nats for a bypass-sized shortfall, seal included: the list's order
	Evidence     float64   `json:"evidence"` // CUSUM log-likelihood ratio of under-registration, nats
	Flagged      bool      `json:"flagged"`  // worth a visit (see List)
	Since        time.Time `json:"since,omitzero"`
	ShortfallPct float64   `json:"shortfall_pct"` // % of its expected use not registered since Since
	ShortPM95Pct float64   `json:"shortfall_pm95_pct"`
	AtStakeM3Day float64   `json:"at_stake_m3_per_day"` // volume not registered, m³/day
	Seal         Seal      `json:"seal,omitzero"`
	Reason       string    `json:"reason"`
}

// Inspector keeps, for every customer of a district, a CUSUM on its registration against
// its usual share of the other customers' total. A leak raises the inlet, not the
// customers' registers, so it moves no meter's share of the others: only a meter that
// registers less than it used to — a bypass, a stuck or tampered meter, or a household
// that really uses less — collects evidence. Window by window, with e the expected use
// (share × the others' total) and u the registered, the evidence grows by the
// log-likelihood ratio of a shortfall f₀ against none under a Gaussian model whose
// variance φ·e was measured in the baseline (at hourly and daily scale, the larger):
// f₀(e−u)/φ − f₀²e/(2φ), floored at zero.
type Inspector struct {
	ids  []string
	cfg  InspectConfig
	base []Window

	ready               bool
	share, phi, inShare []float64
	baseE               []float64 // expected use over the baseline: how well the share is known
	s, short, exp       []float64
	since               []time.Time
	recent              []Window // last 7 days, for the share of the system input
}

// NewInspector watches the customers (DistrictConfig.Customers order, as Window.Use).
func NewInspector(customers []string, cfg InspectConfig) *Inspector {
	if cfg.Baseline <= 0 {
		cfg.Baseline = 7 * 24 * time.Hour
	}
	if cfg.DesignShortfall <= 0 {
		cfg.DesignShortfall = 0.3
	}
	if cfg.ShareDrift <= 0 {
		cfg.ShareDrift = 0.15
	}
	if cfg.FlagNats <= 0 {
		cfg.FlagNats = math.Log(100)
	}
	n := len(customers)
	return &Inspector{ids: customers, cfg: cfg, s: make([]float64, n), short: make([]float64, n),
		exp: make([]float64, n), since: make([]time.Time, n)}
}

func readSum(w Window) float64 {
	var m float64
	for _, u := range w.Use {
		if !math.IsNaN(u) {
			m += u
		}
	}
	return m
}

// Add reads the next window.
func (in *Inspector) Add(w Window) {
	in.recent = append(in.recent, w)
	for len(in.recent) > 0 && w.To.Sub(in.recent[0].From) > 7*24*time.Hour {
		in.recent = in.recent[1:]
	}
	if !in.ready {
		in.base = append(in.base, w)
		if w.To.Sub(in.base[0].From) >= in.cfg.Baseline {
			in.learn()
		}
		return
	}
	m := readSum(w)
	f0 := in.cfg.DesignShortfall
	for i, u := range w.Use {
		if math.IsNaN(u) || in.share[i] <= 0 {
			continue
		}
		e := in.share[i] * (m - u)
		if e <= 0 {
			continue
		}
		if in.s[i] == 0 {
			in.since[i], in.short[i], in.exp[i] = w.From, 0, 0
		}
		in.s[i] = math.Max(0, in.s[i]+f0*(e-u)/in.phi[i]-f0*f0*e/(2*in.phi[i]))
		in.short[i] += e - u
		in.exp[i] += e
	}
}

// learn sets each meter's share and dispersion from the baseline windows.
func (in *Inspector) learn() {
	n := len(in.ids)
	in.share, in.phi, in.inShare = make([]float64, n), make([]float64, n), make([]float64, n)
	sumU, sumO := make([]float64, n), make([]float64, n)
	var sumIn float64
	for _, w := range in.base {
		m := readSum(w)
		sumIn += w.InputM3
		for i, u := range w.Use {
			if !math.IsNaN(u) {
				sumU[i] += u
				sumO[i] += m - u
			}
		}
	}
	for i := range in.ids {
		if sumO[i] > 0 {
			in.share[i] = sumU[i] / sumO[i]
		}
		if sumIn > 0 {
			in.inShare[i] = sumU[i] / sumIn
		}
	}
	// Dispersion φ = Σ(u−e)²/Σe at the window's scale and at a day's scale.
	hourly, daily := make([]float64, n), make([]float64, n)
	dayE, dayU := make([]float64, n), make([]float64, n)
	var ndays int
	flushDay := func() {
		for i := range dayE {
			if dayE[i] > 0 {
				daily[i] += sq(dayU[i] - dayE[i])
			}
			dayE[i], dayU[i] = 0, 0
		}
		ndays++
	}
	sumE, sumE2, sumE3 := make([]float64, n), make([]float64, n), make([]float64, n)
	var cur time.Time
	for _, w := range in.base {
		if d := w.From.UTC().Truncate(24 * time.Hour); d != cur {
			if !cur.IsZero() {
				flushDay()
			}
			cur = d
		}
		m := readSum(w)
		for i, u := range w.Use {
			if math.IsNaN(u) {
				continue
			}
			e := in.share[i] * (m - u)
			hourly[i] += sq(u - e)
			sumE[i] += e
			sumE2[i] += e * e
			sumE3[i] += e * e * e
			dayE[i] += e
			dayU[i] += u
		}
	}
	flushDay()
	in.baseE = sumE
	// Hour-to-hour scatter is a fraction of the hour's use, so φ grows with the size of a
	// meter's windows: meters are compared by their relative scatter ρ = φ/ē, with
	// ē = Σe²/Σe the meter's typical window.
	var rhos []float64
	for i := range in.ids {
		if sumE[i] <= 0 {
			continue
		}
		p := hourly[i] / sumE[i]
		// The residuals are measured against a share fitted to these same windows, and
		// the fit absorbs the scatter of the windows that carry most of the use: with
		// wₕ = eₕ/Σe, the expected Σ(u−e)² is only 1 − 2Σw³/Σw² + Σw² of the scatter's.
		// Over a week of hours that is ≈ 1; over a 7-hour night baseline, whose use is
		// mostly its last hour or two, it is about 0.45, and uncorrected the share looked
		// twice as well known as it is.
		e := sumE[i]
		if keep := 1 - 2*sumE3[i]/(e*sumE2[i]) + sumE2[i]/(e*e); keep > 0.05 {
			p /= keep
		} else {
			p = math.NaN() // one window carries all the use: its scatter is not measured
		}
		if ndays >= 4 { // a day-scale estimate from three whole days or more
			p = math.Max(p, daily[i]/sumE[i])
		}
		in.phi[i] = p
		if !math.IsNaN(p) {
			rhos = append(rhos, p/(sumE2[i]/e))
		}
	}
	// No meter is taken for calmer than the district's median household at its own size:
	// a few hours, or even a week, is little to learn one household's scatter from, and a
	// lucky calm baseline must not make it look guilty.
	med := quantile(rhos, 0.5)
	if math.IsNaN(med) || med <= 0 {
		med = 0.05 // hourly use scattering ±22 %
	}
	for i := range in.phi {
		if sumE[i] > 0 {
			if pooled := med * sumE2[i] / sumE[i]; math.IsNaN(in.phi[i]) || in.phi[i] < pooled {
				in.phi[i] = pooled
			}
		}
		in.phi[i] = math.Max(in.phi[i], 1e-4)
	}
	in.base = nil
	in.ready = true
}

// Ready reports whether the baseline is learned.
func (in *Inspector) Ready() bool { return in.ready }

// List is the district's inspection list, highest score first.
func (in *Inspector) List(district string, seals map[string]Seal) []Candidate {
	out := make([]Candidate, 0, len(in.ids))
	if !in.ready {
		return out
	}
	for i, id := range in.ids {
		c := Candidate{Device: id, District: district, Evidence: in.s[i], Seal: seals[id]}
		c.Score = in.logOdds(i)
		sealBad := len(c.Seal.Tamper) > 0 || (c.Seal.State != "" && c.Seal.State != "trusted" && c.Seal.State != "service")
		if sealBad {
			c.Score += SealOddsNats
		}
		var why []string
		if in.s[i] > 0 && in.exp[i] > 0 {
			c.Since = in.since[i]
			c.ShortfallPct = 100 * in.short[i] / in.exp[i]
			c.ShortPM95Pct = 100 * 1.96 * math.Sqrt(in.phi[i]*in.exp[i]) / in.exp[i]
			if days := in.recentEnd().Sub(c.Since).Hours() / 24; days > 0 {
				c.AtStakeM3Day = in.short[i] / days
			}
			why = append(why, fmt.Sprintf("registers %.0f %% (±%.0f) less than its usual share of the district since %s while its neighbours hold theirs: %.3f m³/day at stake",
				c.ShortfallPct, c.ShortPM95Pct, c.Since.Format("01-02 15:04"), c.AtStakeM3Day))
		} else {
			why = append(why, "registers its usual share of the district")
		}
		// Flagged: the CUSUM's evidence is past FlagNats and the score favours a
		// bypass-sized shortfall by 10:1 or more (seal included); or the seal is broken and the meter
		// registers less than its share.
		c.Flagged = (c.Evidence >= in.cfg.FlagNats && c.Score >= math.Log(10)) || (sealBad && c.Evidence > 0)
		if sealBad {
			s := "seal: " + c.Seal.State
			if len(c.Seal.Tamper) > 0 {
				s = "seal: tamper evidence (" + strings.Join(c.Seal.Tamper, ", ") + ")"
			}
			why = append(why, s)
		}
		c.Reason = strings.Join(why, "; ")
		out = append(out, c)
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Score != out[b].Score {
			return out[a].Score > out[b].Score
		}
		return out[a].Device < out[b].Device
	})
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}

// logOdds is the evidence, in nats, that meter i's shortfall since its CUSUM's start is
// of a bypass's size (at least DesignShortfall f₀) rather than none: the generalised
// likelihood ratio of its estimated shortfall x̄ under a variance widened by the share's
// drift and by the baseline's own sampling error, V = drift² + φ/E + φ/E₀ (E the expected
// use since the start, E₀ over the baseline):
// x̄²/(2V) when x̄ ≥ f₀, f₀(2x̄ − f₀)/(2V) below. A long, steady, bypass-sized shortfall
// tops the list; a household using a fifth less this week, however steadily, stays
// below it (the drift caps its evidence); one odd hour carries little weight (E small).
func (in *Inspector) logOdds(i int) float64 {
	f0, tau := in.cfg.DesignShortfall, in.cfg.ShareDrift
	if in.s[i] <= 0 || in.exp[i] <= 0 {
		return -f0 * f0 / (2 * tau * tau)
	}
	x := in.short[i] / in.exp[i]
	v := tau*tau + in.phi[i]/in.exp[i]
	if in.baseE[i] > 0 {
		v += in.phi[i] / in.baseE[i] // the share itself is an estimate
	}
	if x >= f0 {
		return x * x / (2 * v)
	}
	return f0 * (2*x - f0) / (2 * v)
}

func (in *Inspector) recentEnd() time.Time {
	if len(in.recent) == 0 {
		return time.Time{}
	}
	return in.recent[len(in.recent)-1].To
}

// ShortTogetherPct is the % of customers whose share of the system input over the last
// seven days fell more than 5 % below their baseline share: near 100 when a leak raised
// the input and every register is "short" of it together.
func (in *Inspector) ShortTogetherPct() float64 {
	if !in.ready || len(in.recent) == 0 {
		return 0
	}
	u := make([]float64, len(in.ids))
	var input float64
	for _, w := range in.recent {
		input += w.InputM3
		for i, x := range w.Use {
			if !math.IsNaN(x) {
				u[i] += x
			}
		}
	}
	var short, n float64
	for i := range in.ids {
		if in.inShare[i] <= 0 || input <= 0 {
			continue
		}
		n++
		if u[i]/input < 0.95*in.inShare[i] {
			short++
		}
	}
	if n == 0 {
		return 0
	}
	return 100 * short / n
}
