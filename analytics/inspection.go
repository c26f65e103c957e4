package analytics

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Inspection is a district's answer over a period: its IWA balance, the last day's, night
// flows, the detector's alarms, a verdict on real losses, and the inspection list.
type Inspection struct {
	District         string        `json:"district"`
	From             time.Time     `json:"from"`
	To               time.Time     `json:"to"`
	Windows          int           `json:"windows"`
	Balance          *WaterBalance `json:"balance,omitempty"`  // the whole period
	LastDay          *WaterBalance `json:"last_day,omitempty"` // the last 24 hours
	Night            []Night       `json:"night_flow,omitempty"`
	Alarms           []Alarm       `json:"alarms,omitempty"`
	ShortTogetherPct float64       `json:"short_together_pct"` // customers short of the inlet together
	Network          string        `json:"network,omitempty"`  // what the losses mean for the network team
	List             []Candidate   `json:"list"`
}

// Inspect runs the district's analysis over [from, to) on windows of StepFor (hourly for
// customers read hourly or more often; cut where the data stops being complete, see
// ReadyUntil): Detector, Inspector, balances and night
// flows. seals (may be nil) raise the rank of meters with tamper evidence.
func Inspect(cfg DistrictConfig, data Data, from, to time.Time, ic InspectConfig, seals map[string]Seal) (*Inspection, error) {
	if _, err := cfg.Location(); err != nil {
		return &Inspection{District: cfg.Name, List: []Candidate{}}, err
	}
	if r := ReadyUntil(cfg, data); r.Before(to) {
		to = r
	}
	ws := Windows(cfg, data, from, to, StepFor(cfg, data))
	out := &Inspection{District: cfg.Name, Windows: len(ws), List: []Candidate{}}
	if len(ws) == 0 {
		return out, fmt.Errorf("inspect %s: no complete hour of data between %s and %s", cfg.Name, from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	out.From, out.To = ws[0].From, ws[len(ws)-1].To
	det := NewDetector(DetectorFor(cfg, ic.Detector))
	insp := NewInspector(cfg.Customers, ic)
	for _, w := range ws {
		out.Alarms = append(out.Alarms, det.Add(w)...)
		insp.Add(w)
	}
	var err error
	if out.Balance, err = Balance(cfg, data, out.From, out.To); err != nil {
		return out, err
	}
	if out.To.Sub(out.From) >= 48*time.Hour {
		if out.LastDay, err = Balance(cfg, data, out.To.Add(-24*time.Hour), out.To); err != nil {
			return out, err
		}
	}
	out.Night = NightFlows(cfg, data, out.From, out.To)
	out.List = insp.List(cfg.Name, seals)
	out.ShortTogetherPct = insp.ShortTogetherPct()
	out.Network = networkVerdict(out)
	return out, nil
}

// networkVerdict says which losses are the network's: a rise the flagged meters' volume
// does not explain, and standing losses above target.
func networkVerdict(in *Inspection) string {
	var said []string
	var explained float64
	for _, c := range in.List {
		if c.Flagged {
			explained += c.AtStakeM3Day
		}
	}
	for _, a := range in.Alarms {
		switch a.Kind {
		case AlarmLossRise:
			if explained < 0.5*a.SizeM3PerDay {
				said = append(said, fmt.Sprintf("real loss: %s; %sflagged meters explain %.1f m³/day of it and %.0f %% of meters are short of the inlet together — a leak for the network team, not a reason to visit customers",
					a.Reason, nightChange(in.Night, a.Start), explained, in.ShortTogetherPct))
			} else {
				said = append(said, fmt.Sprintf("apparent loss: %s; flagged meters explain %.1f m³/day of it — visit them", a.Reason, explained))
			}
		case AlarmStandingNRW, AlarmStandingNight:
			said = append(said, "standing loss: "+a.Reason)
		}
	}
	if len(said) == 0 && in.Balance != nil {
		return fmt.Sprintf("no alarm; non-revenue water %.1f %%, real losses %.1f m³/day", in.Balance.NonRevenuePct, math.Max(0, in.Balance.RealLossesM3Day))
	}
	return strings.Join(said, "\n")
}

// nightChange says how the net night flow moved across t: the median of up to 7 nights
// before against the median of the nights after ("" when either side has none).
func nightChange(ns []Night, t time.Time) string {
	var before, after []float64
	for _, n := range ns {
		if n.Date.Add(24 * time.Hour).Before(t) {
			before = append(before, n.NetM3PerH)
		} else if n.Date.After(t) {
			after = append(after, n.NetM3PerH)
		}
	}
	if len(before) == 0 || len(after) == 0 {
		return ""
	}
	before = before[max(0, len(before)-7):]
	return fmt.Sprintf("net night flow %.2f → %.2f m³/h; ", quantile(before, 0.5), quantile(after, 0.5))
}
