package analytics

import (
	"math"
	"sort"
	"time"
)

// Candidate is one meter on a district's inspection list.
type Candidate struct {
	Device   string  `json:"device"`
	District string  `json:"district"`
	Rank     int     `json:"rank"`
	Score    float64 `json:"score"`             // how sure: mean shortfall over its standard error
	Missing  float64 `json:"missing_l_per_day"` // litres a day it registers below its usual share
	Fraction float64 `json:"fraction"`          // share of its expected use it no longer registers
}

// Inspection is a district's balance verdict and its ranked list.
type Inspection struct {
	District   string      `json:"district"`
	Windows    int         `json:"windows"`
	LossBefore float64     `json:"loss_before_lph"` // mean losses before the step, litres per hour
	LossAfter  float64     `json:"loss_after_lph"`
	StepAt     time.Time   `json:"step_at,omitzero"` // where losses stepped up (zero: they did not)
	Night      []NightFlow `json:"night_flow,omitempty"`
	List       []Candidate `json:"list"`
}

// Inspect ranks a district's meters by under-registration. It finds where the district's
// losses stepped up; before the step each meter's share of the district's real use (inlet
// less the background loss) is learned, after it each meter's registration is compared
// with that share window by window. A meter being bypassed falls short in every window, an
// honest one scatters around zero, so the ranking is by the shortfall's mean over its
// standard error, not by volume: a small household that stopped registering outranks a
// large business having a quiet day.
func Inspect(d *District, step time.Duration) *Inspection {
	ws := Balance(d, step)
	in := &Inspection{District: d.Name, Windows: len(ws), Night: NightFlows(ws)}
	minSide := 3
	k, _, ok := ChangePoint(ws, minSide)
	if !ok {
		// No step: compare the first and second halves, which still ranks a meter whose
		// registration fell, with lower confidence.
		k = len(ws) / 2
		if k < 1 {
			return in
		}
	} else {
		in.StepAt = ws[k].From
	}
	before, after := ws[:k], ws[k:]
	var lb, la float64
	for _, w := range before {
		lb += w.Loss
	}
	for _, w := range after {
		la += w.Loss
	}
	lb /= float64(len(before))
	la /= float64(len(after))
	in.LossBefore, in.LossAfter = lb/step.Hours(), la/step.Hours()
	for id, s := range d.Meters {
		var ub, real float64
		var ratios, weights []float64
		for _, w := range before {
			if u, ok := s.Usage(w.From, w.To); ok && w.Inlet-lb > 0 {
				ub += u
				real += w.Inlet - lb
				ratios = append(ratios, u/(w.Inlet-lb))
				weights = append(weights, w.Inlet-lb)
			}
		}
		if real <= 0 || ub <= 0 {
			continue
		}
		share := ub / real
		// How well the share is known: the spread of the per-window shares over the
		// effective number of windows (heavy-use hours count more than the night).
		var v, sw, sw2 float64
		for i, x := range ratios {
			v += weights[i] * (x - share) * (x - share)
			sw += weights[i]
			sw2 += weights[i] * weights[i]
		}
		shareRel := 1.0
		if neff := sw * sw / sw2; neff > 1 {
			shareRel = math.Sqrt(v/sw) / share / math.Sqrt(neff-1)
		}
		var r []float64
		var exp float64
		for _, w := range after {
			u, ok := s.Usage(w.From, w.To)
			if !ok {
				continue
			}
			e := share * (w.Inlet - lb)
			exp += e
			r = append(r, e-u)
		}
		if len(r) < 2 || exp <= 0 {
			continue
		}
		var mean, sd float64
		for _, x := range r {
			mean += x
		}
		mean /= float64(len(r))
		for _, x := range r {
			sd += (x - mean) * (x - mean)
		}
		sd = math.Sqrt(sd / float64(len(r)-1))
		se := sd / math.Sqrt(float64(len(r)))
		// Floor the error at 1% of the expected use per window, so a meter with almost
		// identical windows cannot produce an enormous score from a rounding residue.
		if f := 0.01 * exp / float64(len(r)); se < f {
			se = f
		}
		// A share learned from few windows biases every after-window alike: add that
		// uncertainty, or an honest meter with an unlucky "before" would look short.
		se = math.Hypot(se, shareRel*exp/float64(len(r)))
		c := Candidate{Device: id, District: d.Name, Score: mean / se,
			Missing: mean / step.Hours() * 24, Fraction: mean * float64(len(r)) / exp}
		in.List = append(in.List, c)
	}
	sort.Slice(in.List, func(i, j int) bool {
		if in.List[i].Score != in.List[j].Score {
			return in.List[i].Score > in.List[j].Score
		}
		return in.List[i].Device < in.List[j].Device
	})
	for i := range in.List {
		in.List[i].Rank = i + 1
	}
	return in
}
