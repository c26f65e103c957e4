package analytics

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// DetectorConfig sets the decision rules. Zero values take the defaults in brackets.
type DetectorConfig struct {
	// Calibration is how much data, from the first window, sets the baseline (per
	// hour-of-day mean of the losses) and the noise (long-run standard deviation) [7 days].
	Calibration time.Duration
	// MinRisePct is the smallest rise in losses worth an alarm, in % of the mean system
	// input during calibration: the CUSUM's reference value is half of it [5].
	MinRisePct float64
	// FalseAlarmEvery is the designed mean time between false alarms on quiet data (the
	// CUSUM's in-control average run length); the threshold follows from it [365 days].
	FalseAlarmEvery time.Duration
	// Relearn is how long after an alarm the detector re-estimates the new level of the
	// losses before watching again [24 h].
	Relearn time.Duration

	// Standing-loss rules (zero or negative: off), from DistrictConfig by DetectorFor.
	NRWTargetPct          float64
	NightFlowTargetM3PerH float64
	NightFrom, NightTo    int
	NightAllowanceM3PerH  float64
	Location              *time.Location // of the night window; nil: the windows' own
}

// DefaultNRWTargetPct is the NRW target of a district that configures none.
const DefaultNRWTargetPct = 15

// DetectorFor takes the district's targets and night window into dc.
func DetectorFor(cfg DistrictConfig, dc DetectorConfig) DetectorConfig {
	dc.NRWTargetPct, dc.NightFlowTargetM3PerH = cfg.NRWTargetPct, cfg.NightFlowTargetM3PerH
	if dc.NRWTargetPct == 0 {
		dc.NRWTargetPct = DefaultNRWTargetPct
	}
	dc.NightFrom, dc.NightTo, dc.NightAllowanceM3PerH = cfg.NightFrom, cfg.NightTo, cfg.NightAllowanceM3PerH
	if loc, err := cfg.Location(); err == nil && loc != nil {
		dc.Location = loc
	}
	return dc
}

// Alarm kinds.
const (
	AlarmLossRise      = "loss-rise"      // the CUSUM crossed its threshold: losses rose
	AlarmStandingNRW   = "standing-nrw"   // non-revenue water above the district's target
	AlarmStandingNight = "standing-night" // net night flow above the district's target
)

// Alarm is one decision of the detector, with its size and when it started.
type Alarm struct {
	Kind          string    `json:"kind"`
	At            time.Time `json:"at"`             // when the rule fired (end of the last window it read)
	Start         time.Time `json:"start"`          // estimated start of the change
	StartEarliest time.Time `json:"start_earliest"` // likelihood interval of the start (≈95 %)
	StartLatest   time.Time `json:"start_latest"`
	SizeM3PerDay  float64   `json:"size_m3_per_day"`      // rise (or excess over target)
	SizePM95      float64   `json:"size_pm95_m3_per_day"` // its 95 % limit
	SizePct       float64   `json:"size_pct"`             // of the mean system input
	Reason        string    `json:"reason"`
}

type detWin struct {
	from, to      time.Time
	loss, in, bil float64 // rates, m³/h
	net           float64 // input − metered, m³/h
	raw           float64 // loss rate less its hour-of-day baseline
}

// Detector watches one district's windows as they come (Add, in time order) and applies
// three rules:
//
//   - loss-rise: a one-sided CUSUM on the hourly water losses less their hour-of-day
//     baseline, standardised by the long-run standard deviation measured in calibration;
//     reference value k = half the smallest rise of interest, threshold h set so that
//     the in-control average run length (Siegmund's approximation) equals
//     FalseAlarmEvery. After an alarm the detector learns the new level for Relearn and
//     restarts from zero, so a second event is caught on its own.
//   - standing-nrw: the mean daily NRW % of the last (up to) 7 days, less its one-sided
//     95 % t-bound, is above the target (needs 2 days).
//   - standing-night: the median net night flow of the last (up to) 7 nights is above
//     the target (needs 3 nights).
type Detector struct {
	cfg  DetectorConfig
	hist []detWin

	calibrated  bool
	slots       int
	step        time.Duration
	mu          []float64
	sigma       float64 // long-run σ of the hourly loss rate, m³/h
	meanInput   float64 // m³/h
	k, h        float64 // in σ units
	level       float64 // current level of raw residuals (after alarms)
	s           float64
	start       int // first window of the current CUSUM excursion
	floor       int // windows before this belong to an earlier, settled event
	relearnFrom int
	relearnTo   time.Time

	days    map[time.Time]*dayAgg
	dayNRW  []dayVal
	nights  []dayVal
	nrwOn   bool
	nightOn bool
}

type dayAgg struct{ in, bil, h, nightNet, nightH float64 }
type dayVal struct {
	day time.Time
	v   float64
}

// NewDetector returns a detector with cfg's rules.
func NewDetector(cfg DetectorConfig) *Detector {
	if cfg.Calibration <= 0 {
		cfg.Calibration = 7 * 24 * time.Hour
	}
	if cfg.MinRisePct <= 0 {
		cfg.MinRisePct = 5
	}
	if cfg.FalseAlarmEvery <= 0 {
		cfg.FalseAlarmEvery = 365 * 24 * time.Hour
	}
	if cfg.Relearn <= 0 {
		cfg.Relearn = 24 * time.Hour
	}
	if cfg.NightTo <= cfg.NightFrom {
		cfg.NightFrom, cfg.NightTo = 2, 4
	}
	return &Detector{cfg: cfg, days: map[time.Time]*dayAgg{}}
}

// Calibrated reports whether the baseline is set, and the CUSUM's reference value and
// threshold (in long-run standard deviations) and that deviation (m³/h).
func (d *Detector) Calibrated() (ok bool, k, h, sigmaM3PerH float64) {
	return d.calibrated, d.k, d.h, d.sigma
}

// Add reads the next window and returns the alarms it raises.
func (d *Detector) Add(w Window) []Alarm {
	hrs := w.Hours()
	if hrs <= 0 {
		return nil
	}
	x := detWin{from: w.From, to: w.To, loss: w.LossM3 / hrs, in: w.InputM3 / hrs, bil: w.BilledM3 / hrs,
		net: (w.InputM3 - w.MeteredM3) / hrs}
	d.hist = append(d.hist, x)
	out := d.standing(x)
	if !d.calibrated {
		if w.To.Sub(d.hist[0].from) >= d.cfg.Calibration {
			d.calibrate()
		}
		return out
	}
	i := len(d.hist) - 1
	d.hist[i].raw = x.loss - d.mu[d.slot(x.from)]
	if !d.relearnTo.IsZero() {
		if w.To.Before(d.relearnTo) {
			return out
		}
		d.level = meanRaw(d.hist[d.relearnFrom : i+1])
		d.relearnTo, d.s, d.start, d.floor = time.Time{}, 0, i+1, i+1
		return out
	}
	// Each hourly window's contribution is clipped at k + h/2: no single hour, however
	// odd, raises an alarm on its own (a robust CUSUM); a real rise shows in two. A
	// window of 6 h or more averages its oddities away and may alarm alone.
	z := (d.hist[i].raw - d.level) / d.sigma
	if d.step < 6*time.Hour {
		z = math.Min(z, d.k+d.h/2)
	}
	d.s = math.Max(0, d.s+z-d.k)
	if d.s == 0 {
		d.start = i + 1
		return out
	}
	if d.s <= d.h {
		return out
	}
	out = append(out, d.riseAlarm(i))
	d.relearnFrom, d.relearnTo, d.s = d.start, w.To.Add(d.cfg.Relearn), 0
	return out
}

func (d *Detector) slot(t time.Time) int {
	if d.slots <= 1 {
		return 0
	}
	sec := t.Unix() % 86400
	if sec < 0 {
		sec += 86400
	}
	return int(time.Duration(sec)*time.Second/d.step) % d.slots
}

func meanRaw(ws []detWin) float64 {
	var s float64
	for _, w := range ws {
		s += w.raw
	}
	return s / float64(max(1, len(ws)))
}

func (d *Detector) calibrate() {
	d.step = d.hist[0].to.Sub(d.hist[0].from)
	d.slots = 1
	if d.step <= 24*time.Hour && (24*time.Hour)%d.step == 0 {
		d.slots = int(24 * time.Hour / d.step)
	}
	sum := make([]float64, d.slots)
	cnt := make([]float64, d.slots)
	var all float64
	for _, w := range d.hist {
		s := d.slot(w.from)
		sum[s] += w.loss
		cnt[s]++
		all += w.loss
		d.meanInput += w.in
	}
	n := float64(len(d.hist))
	d.meanInput /= n
	d.mu = make([]float64, d.slots)
	for s := range d.mu {
		if cnt[s] > 0 {
			d.mu[s] = sum[s] / cnt[s]
		} else {
			d.mu[s] = all / n
		}
	}
	raw := make([]float64, len(d.hist))
	for i := range d.hist {
		d.hist[i].raw = d.hist[i].loss - d.mu[d.slot(d.hist[i].from)]
		raw[i] = d.hist[i].raw
	}
	// σ: the largest of three estimates. The spread of single windows (standard deviation
	// winsorised at 5 robust σ, so one event in the calibration does not blind the
	// detector, while the heavy tails of real hourly data still count); the robust σ
	// inflated for positive lag-1 autocorrelation; and the spread of daily means, which
	// carries the day-to-day drift an hourly estimate misses.
	abs := make([]float64, len(raw))
	for i, r := range raw {
		abs[i] = math.Abs(r)
	}
	mad := 1.4826 * quantile(abs, 0.5)
	var ss, s1, sw float64
	for i, r := range raw {
		ss += r * r
		if i > 0 {
			s1 += r * raw[i-1]
		}
		c := math.Max(-5*mad, math.Min(5*mad, r))
		sw += c * c
	}
	sigma := math.Sqrt(sw / math.Max(1, float64(len(raw)-1)))
	if ss > 0 {
		rho := math.Max(0, math.Min(0.9, s1/ss))
		sigma = math.Max(sigma, mad*math.Sqrt((1+rho)/(1-rho)))
	}
	if d.slots > 1 {
		var dm []float64
		for i := 0; i+d.slots <= len(raw); i += d.slots {
			var m float64
			for _, r := range raw[i : i+d.slots] {
				m += r
			}
			dm = append(dm, m/float64(d.slots))
		}
		if len(dm) >= 3 {
			var mean, v float64
			for _, x := range dm {
				mean += x
			}
			mean /= float64(len(dm))
			for _, x := range dm {
				v += (x - mean) * (x - mean)
			}
			sigma = math.Max(sigma, math.Sqrt(v/float64(len(dm)-1)*float64(d.slots)))
		}
	}
	// A floor at 0.2 % of the input: perfect data must not make every rounding an event.
	d.sigma = math.Max(sigma, 0.002*math.Abs(d.meanInput))
	if d.sigma == 0 {
		d.sigma = 1e-6
	}
	d.k = d.cfg.MinRisePct / 100 * d.meanInput / (2 * d.sigma)
	d.h = CUSUMThreshold(d.k, float64(d.cfg.FalseAlarmEvery)/float64(d.step))
	d.start, d.floor = len(d.hist), len(d.hist)
	d.calibrated = true
}

// CUSUMThreshold is the threshold h (in σ) of a one-sided CUSUM with reference value k
// (in σ) on independent standard normal data whose in-control average run length is arl
// samples, by Siegmund's approximation ARL ≈ (e^{2kb} − 2kb − 1)/(2k²), b = h + 1.166.
func CUSUMThreshold(k, arl float64) float64 {
	f := func(h float64) float64 {
		b := h + 1.166
		if k < 1e-9 {
			return b * b
		}
		return (math.Exp(2*k*b) - 2*k*b - 1) / (2 * k * k)
	}
	lo, hi := 0.0, 200.0
	for range 100 {
		mid := (lo + hi) / 2
		if f(mid) < arl {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// riseAlarm describes the excursion that ended at window i.
func (d *Detector) riseAlarm(i int) Alarm {
	n := i - d.start + 1
	size := meanRaw(d.hist[d.start:i+1]) - d.level
	// Likelihood interval of the start: every split τ whose profile log-likelihood of a
	// step is within 1.92 (χ²₁ 95 % / 2) of the best.
	lo := max(d.floor, i-4*n-48)
	ll := make([]float64, i-lo+1)
	best, bestAt := math.Inf(-1), d.start
	var tail float64
	for t := i; t >= lo; t-- {
		tail += (d.hist[t].raw - d.level) / d.sigma
		m := float64(i - t + 1)
		v := 0.0
		if tail > 0 {
			v = tail * tail / (2 * m)
		}
		ll[t-lo] = v
		if v > best {
			best, bestAt = v, t
		}
	}
	early, late := bestAt, bestAt
	for t := lo; t <= i; t++ {
		if ll[t-lo] >= best-1.92 {
			early = min(early, t)
			late = max(late, t)
		}
	}
	pm := 1.96 * d.sigma / math.Sqrt(float64(n)) * 24
	a := Alarm{Kind: AlarmLossRise, At: d.hist[i].to, Start: d.hist[d.start].from,
		// The start may lie anywhere in the latest window, and a tank's smoothed level
		// (Series.Smoothed, ±1 h) lets a change show up to an hour early.
		StartEarliest: d.hist[early].from, StartLatest: d.hist[late].to.Add(time.Hour),
		SizeM3PerDay: size * 24, SizePM95: pm, SizePct: 100 * size / d.meanInput}
	a.Reason = fmt.Sprintf("losses rose by %.1f ± %.1f m³/day (%.1f %% of input) since about %s (between %s and %s)",
		a.SizeM3PerDay, a.SizePM95, a.SizePct, a.Start.Format("01-02 15:04"), a.StartEarliest.Format("01-02 15:04"), a.StartLatest.Format("01-02 15:04"))
	return a
}

// t95 is the one-sided 95 % Student t quantile for 1..6 degrees of freedom (then ~normal).
var t95 = []float64{0, 6.314, 2.920, 2.353, 2.132, 2.015, 1.943}

// standing feeds the day aggregates and applies the standing-loss rules at the end of
// each day (UTC).
func (d *Detector) standing(x detWin) []Alarm {
	day := x.from.UTC().Truncate(24 * time.Hour)
	a := d.days[day]
	if a == nil {
		a = &dayAgg{}
		d.days[day] = a
	}
	h := x.to.Sub(x.from).Hours()
	a.in += x.in * h
	a.bil += x.bil * h
	a.h += h
	local := x.from
	if d.cfg.Location != nil {
		local = local.In(d.cfg.Location)
	}
	if hr := local.Hour(); hr >= d.cfg.NightFrom && hr < d.cfg.NightTo && h <= 1 {
		a.nightNet += (x.net - d.cfg.NightAllowanceM3PerH) * h
		a.nightH += h
	}
	if x.to.UTC().Truncate(24*time.Hour) == day {
		return nil // the day is not over
	}
	delete(d.days, day)
	var out []Alarm
	if a.h >= 23.99 && a.in > 0 {
		d.dayNRW = append(d.dayNRW, dayVal{day, 100 * (a.in - a.bil) / a.in})
		if al, ok := d.nrwRule(day, a.in/a.h); ok {
			out = append(out, al)
		}
	}
	if a.nightH > 0 {
		d.nights = append(d.nights, dayVal{day, a.nightNet / a.nightH})
		if al, ok := d.nightRule(day); ok {
			out = append(out, al)
		}
	}
	return out
}

func (d *Detector) nrwRule(day time.Time, inRate float64) (Alarm, bool) {
	t := d.cfg.NRWTargetPct
	last := d.dayNRW[max(0, len(d.dayNRW)-7):]
	if t <= 0 || len(last) < 2 {
		return Alarm{}, false
	}
	var m, v float64
	for _, x := range last {
		m += x.v
	}
	n := float64(len(last))
	m /= n
	for _, x := range last {
		v += (x.v - m) * (x.v - m)
	}
	se := math.Sqrt(v / (n - 1) / n)
	lower := m - t95[min(len(last)-1, 6)]*se
	if !d.nrwOn && lower > t {
		d.nrwOn = true
		excess := (m - t) / 100 * inRate * 24
		return Alarm{Kind: AlarmStandingNRW, At: day.Add(24 * time.Hour), Start: last[0].day, StartEarliest: d.dayNRW[0].day, StartLatest: last[0].day,
			SizeM3PerDay: excess, SizePM95: 1.96 * se / 100 * inRate * 24, SizePct: m - t,
			Reason: fmt.Sprintf("non-revenue water %.1f %% (±%.1f) over the last %d days, above the district's target of %.1f %%: about %.1f m³/day over target", m, 1.96*se, len(last), t, excess)}, true
	}
	if d.nrwOn && m < t {
		d.nrwOn = false
	}
	return Alarm{}, false
}

func (d *Detector) nightRule(day time.Time) (Alarm, bool) {
	t := d.cfg.NightFlowTargetM3PerH
	last := d.nights[max(0, len(d.nights)-7):]
	if t <= 0 || len(last) < 3 {
		return Alarm{}, false
	}
	vs := make([]float64, len(last))
	for i, x := range last {
		vs[i] = x.v
	}
	med := quantile(vs, 0.5)
	q1, q3 := quantile(vs, 0.25), quantile(vs, 0.75)
	if !d.nightOn && med > t {
		d.nightOn = true
		return Alarm{Kind: AlarmStandingNight, At: day.Add(24 * time.Hour), Start: last[0].day, StartEarliest: d.nights[0].day, StartLatest: last[0].day,
			SizeM3PerDay: (med - t) * 24, SizePM95: (q3 - q1) * 24,
			Reason: fmt.Sprintf("net night flow %.2f m³/h (median of %d nights, quartiles %.2f–%.2f), above the district's target of %.2f m³/h", med, len(last), q1, q3, t)}, true
	}
	if d.nightOn && med < t {
		d.nightOn = false
	}
	return Alarm{}, false
}

// Detect runs a fresh detector over windows and returns every alarm in time order.
func Detect(cfg DetectorConfig, ws []Window) []Alarm {
	d := NewDetector(cfg)
	var out []Alarm
	for _, w := range ws {
		out = append(out, d.Add(w)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
