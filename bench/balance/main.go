// Command balance is the water-balance benchmark (not a test): over many seeded simulated
// districts (sim.NewNetwork: two inlets, an outlet, a tank with a quantised level sensor,
// households with noise and drift, under-registering meters, unmetered connections,
// dropped reads) it runs the analytics online, window by window, as a control room would,
// and prints a table against the targets of docs/WATER_BALANCE.md:
//
//   - false alarms per district per 30 quiet days (after the 7-day calibration);
//
//   - time to detect an abrupt leak of 15 % of the input, and a leak growing to 20 % over
//     ten weeks;
//
//   - time until a standing 20 % loss is flagged;
//
//   - bypasses (3 meters, together 2 % of demand, registering 50 % less): the victims'
//     worst rank after 1, 3 and 7 days and the time until all are in the top 3, alone
//     and with a 15 % burst starting the same hour;
//
//   - the demo's case (100 households read every 15 min, a run of 1, 2 or 7 days whose
//     first 30 % is the baseline, one household bypassed to 15 % at 35 % of the run): honest
//     meters flagged, and the victim flagged and first, at the end of the run.
//
//     go run ./bench/balance              # 20 towns per scenario
//     go run ./bench/balance -towns 50
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/sim"
)

func main() {
	towns := flag.Int("towns", 20, "seeded districts per scenario")
	seed := flag.Uint64("seed", 1, "first seed")
	flag.IntVar(&base.Customers, "customers", 150, "metered customers per district")
	flag.DurationVar(&base.CustomerReadEvery, "read", time.Hour, "customer meters' read interval")
	flag.Float64Var(&base.TankAreaM2, "tank", 30, "tank area in m² (negative: no tank)")
	flag.Parse()
	if *towns < 1 || base.Customers < 10 || base.CustomerReadEvery <= 0 {
		fmt.Fprintln(os.Stderr, "balance: -towns must be at least 1, -customers at least 10, -read positive")
		os.Exit(2)
	}
	t0 := time.Now()
	var rows []row
	rows = append(rows, quiet(*towns, *seed)...)
	rows = append(rows, leak(*towns, *seed, "abrupt leak 15 % of input: time to detect", sim.EventBurst, 0, 24*time.Hour, 30))
	rows = append(rows, leak(*towns, *seed, "leak growing to 20 % over 10 weeks: time to detect", sim.EventGrowing, 70*24*time.Hour, 30*24*time.Hour, 45))
	rows = append(rows, standing(*towns, *seed))
	rows = append(rows, bypass(*towns, *seed, false)...)
	rows = append(rows, bypass(*towns, *seed, true)...)
	for _, days := range []int{1, 2, 7} {
		rows = append(rows, demoRun(*towns, *seed, days))
	}
	fmt.Printf("%-72s %-11s %-36s %s\n", "MEASURE", "TARGET", "RESULT", "")
	for _, r := range rows {
		mark := "ok"
		if !r.ok {
			mark = "MISS"
		}
		fmt.Printf("%-72s %-11s %-36s %s\n", r.name, r.target, r.result, mark)
	}
	fmt.Printf("\n%d districts per scenario (seeds %d..%d), %d customers each read every %s, tank %.0f m²; %.1fs\n",
		*towns, *seed, *seed+uint64(*towns)-1, base.Customers, base.CustomerReadEvery, base.TankAreaM2, time.Since(t0).Seconds())
}

// base is every district's configuration before its seed, days and events.
var base sim.NetworkConfig

// network builds a district from base.
func network(seed uint64, days int, start time.Time, ev ...sim.Event) *sim.Network {
	c := base
	c.Seed, c.Days, c.Start, c.Events = seed, days, start, ev
	return sim.NewNetwork(c)
}

type row struct {
	name, target, result string
	ok                   bool
}

// run feeds every window of the network to a detector and an inspector, calling each
// after every window.
func run(n *sim.Network, each func(w analytics.Window, alarms []analytics.Alarm, in *analytics.Inspector)) {
	ws := analytics.Windows(n.Config, n.Data, n.Start, n.End, analytics.StepFor(n.Config, n.Data))
	det := analytics.NewDetector(analytics.DetectorFor(n.Config, analytics.DetectorConfig{}))
	in := analytics.NewInspector(n.Config.Customers, analytics.InspectConfig{})
	for _, w := range ws {
		al := det.Add(w)
		in.Add(w)
		each(w, al, in)
	}
}

func quiet(towns int, seed uint64) []row {
	const days = 37
	var rise, standing, flagged, customers int
	for s := seed; s < seed+uint64(towns); s++ {
		n := network(s, days, time.Time{})
		var last *analytics.Inspector
		run(n, func(w analytics.Window, al []analytics.Alarm, in *analytics.Inspector) {
			last = in
			for _, a := range al {
				if a.Kind == analytics.AlarmLossRise {
					rise++
				} else {
					standing++
				}
			}
		})
		for _, c := range last.List(n.Config.Name, nil) {
			customers++
			if c.Flagged {
				flagged++
			}
		}
	}
	per := float64(towns) * float64(days-7) / 30
	return []row{
		{"false loss-rise alarms per district per 30 quiet days", "≤ 1", fmt.Sprintf("%.2f (%d in %d districts)", float64(rise)/per, rise, towns), float64(rise)/per <= 1},
		{"standing-loss flags in quiet districts (NRW target 15 %)", "0", fmt.Sprintf("%d", standing), standing == 0},
		{"honest meters flagged for a visit after 30 quiet days", "-", fmt.Sprintf("%.1f %% (%d of %d)", 100*float64(flagged)/float64(customers), flagged, customers), true},
	}
}

// leak measures the delay from the leak's start to the first loss-rise alarm after it.
func leak(towns int, seed uint64, name, kind string, ramp, target time.Duration, days int) row {
	var delays []time.Duration
	missed, early := 0, 0
	for s := seed; s < seed+uint64(towns); s++ {
		start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
		at := start.Add(10*24*time.Hour + time.Duration(s*7%24)*time.Hour + 20*time.Minute)
		pct := 15.0
		if kind == sim.EventGrowing {
			pct = 20
		}
		n := network(s+1000, days, start, sim.Event{Kind: kind, At: at, Pct: pct, Ramp: ramp})
		var got time.Time
		run(n, func(w analytics.Window, al []analytics.Alarm, _ *analytics.Inspector) {
			for _, a := range al {
				if a.Kind != analytics.AlarmLossRise {
					continue
				}
				if a.At.Before(at) {
					early++
				} else if got.IsZero() {
					got = a.At
				}
			}
		})
		if got.IsZero() {
			missed++
			continue
		}
		delays = append(delays, got.Sub(at))
	}
	med, worst := stats(delays)
	ok := missed == 0 && worst <= target
	res := fmt.Sprintf("median %s, worst %s", short(med), short(worst))
	if missed > 0 {
		res += fmt.Sprintf(", %d missed", missed)
	}
	if early > 0 {
		res += fmt.Sprintf(", %d before", early)
	}
	return row{name, "≤ " + short(target), res, ok}
}

func standing(towns int, seed uint64) row {
	var delays []time.Duration
	missed := 0
	for s := seed; s < seed+uint64(towns); s++ {
		n := network(s+2000, 10, time.Time{}, sim.Event{Kind: sim.EventStanding, Pct: 20})
		var got time.Time
		run(n, func(w analytics.Window, al []analytics.Alarm, _ *analytics.Inspector) {
			for _, a := range al {
				if a.Kind != analytics.AlarmLossRise && got.IsZero() {
					got = a.At
				}
			}
		})
		if got.IsZero() {
			missed++
			continue
		}
		delays = append(delays, got.Sub(n.Start))
	}
	med, worst := stats(delays)
	res := fmt.Sprintf("median %s, worst %s of data", short(med), short(worst))
	if missed > 0 {
		res += fmt.Sprintf(", %d missed", missed)
	}
	return row{"standing 20 % loss: flagged after", "≤ 7d", res, missed == 0 && worst <= 7*24*time.Hour}
}

func bypass(towns int, seed uint64, withBurst bool) []row {
	label := "bypass 3×50 %, 2 % of demand"
	if withBurst {
		label += " + 15 % burst same hour"
	}
	var toTop3 []time.Duration
	worstAt := map[int]int{1: 0, 3: 0, 7: 0}
	missed, victims, flagged7, honestFlagged7 := 0, 0, 0, 0
	for s := seed; s < seed+uint64(towns); s++ {
		start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
		at := start.Add(10*24*time.Hour + time.Duration(s*5%24)*time.Hour)
		ev := []sim.Event{{Kind: sim.EventBypass, At: at, Pct: 50, Victims: 3, DemandPct: 2}}
		if withBurst {
			ev = append(ev, sim.Event{Kind: sim.EventBurst, At: at, Pct: 15})
		}
		n := network(s+3000, 18, start, ev...)
		victim := map[string]bool{}
		for _, v := range n.Victims {
			victim[v] = true
		}
		victims += len(n.Victims)
		var top3 time.Time
		run(n, func(w analytics.Window, _ []analytics.Alarm, in *analytics.Inspector) {
			if w.To.Before(at) || !in.Ready() {
				return
			}
			list := in.List(n.Config.Name, nil)
			worst := 0
			for _, c := range list {
				if victim[c.Device] && c.Rank > worst {
					worst = c.Rank
				}
			}
			if worst <= 3 && top3.IsZero() {
				top3 = w.To
			}
			el := w.To.Sub(at)
			if el == 7*24*time.Hour {
				for _, c := range list {
					switch {
					case victim[c.Device] && c.Flagged:
						flagged7++
					case !victim[c.Device] && c.Flagged:
						honestFlagged7++
					}
				}
			}
			for d := range worstAt {
				if el == time.Duration(d)*24*time.Hour && worst > worstAt[d] {
					worstAt[d] = worst
				}
			}
		})
		if top3.IsZero() {
			missed++
			continue
		}
		toTop3 = append(toTop3, top3.Sub(at))
	}
	med, worst := stats(toTop3)
	res := fmt.Sprintf("median %s, worst %s", short(med), short(worst))
	if missed > 0 {
		res += fmt.Sprintf(", %d never", missed)
	}
	var days []int
	for d := range worstAt {
		days = append(days, d)
	}
	sort.Ints(days)
	var ranks []string
	for _, d := range days {
		ranks = append(ranks, fmt.Sprintf("%dd: %d", d, worstAt[d]))
	}
	return []row{
		{label + ": all in top 3 after", "≤ 7d", res, missed == 0 && worst <= 7*24*time.Hour},
		{label + ": worst victim rank", "≤ 3 at 7d", strings.Join(ranks, ", "), worstAt[7] <= 3},
		{label + ": flagged at 7d", "-", fmt.Sprintf("victims %d of %d, honest %d", flagged7, victims, honestFlagged7), true},
	}
}

// demoRun is `fieldseal demo`'s inspection over a run of days: districts of 100
// households read every 15 minutes, the shares learned over the first 30 % of the run (7
// hours of a one-day run: the night), one typical household registering 15 % from 35 %
// of the run. No target: these districts' meters go offline for 6–30 h (the demo's
// victims never do), and a victim offline over its baseline has no usual share to fall
// short of.
func demoRun(towns int, seed uint64, days int) row {
	honest, honestFlagged, firstAndFlagged := 0, 0, 0
	span := time.Duration(days) * 24 * time.Hour
	ic := analytics.InspectConfig{Baseline: (span * 3 / 10).Truncate(time.Hour)}
	for s := seed; s < seed+uint64(towns); s++ {
		start := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
		at := start.Add(span * 35 / 100)
		c := base
		c.Seed, c.Days, c.Start, c.Customers, c.CustomerReadEvery = s+4000, days, start, 100, 15*time.Minute
		c.Events = []sim.Event{{Kind: sim.EventBypass, At: at, Pct: 85, Victims: 1, DemandPct: 1}}
		n := sim.NewNetwork(c)
		in, err := analytics.Inspect(n.Config, n.Data, n.Start, n.End, ic, nil)
		if err != nil || len(n.Victims) != 1 {
			continue
		}
		for _, c := range in.List {
			switch {
			case c.Device == n.Victims[0]:
				if c.Rank == 1 && c.Flagged {
					firstAndFlagged++
				}
			case c.Flagged:
				honest++
				honestFlagged++
			default:
				honest++
			}
		}
	}
	name := fmt.Sprintf("demo-like %d-day run (%s baseline), 1 household bypassed to 15 %%", days, short(ic.Baseline))
	res := fmt.Sprintf("honest flagged %d of %d, victim first+flagged %d of %d", honestFlagged, honest, firstAndFlagged, towns)
	return row{name, "-", res, true}
}

func stats(ds []time.Duration) (med, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)-1]
}

func short(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return fmt.Sprintf("%.0fh", d.Hours())
}
