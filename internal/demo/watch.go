package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/sim"
	"github.com/fieldseal/fieldseal/store"
)

// watcher reads what the server concluded — through its store, as the API and dashboard
// do — and the water balance, while the town runs.
type watcher struct {
	srv  *server.Server
	town *sim.Town
	coll *analytics.Collector

	mu        sync.Mutex
	lastAlert int64
	alerts    []store.Alert
	byDev     map[string][]store.Alert
	insp      map[int]*analytics.Inspection
	topSince  map[string]time.Time // bypass scenario device → since when it tops its list
	logf      func(format string, args ...any)
	extra     []*sim.Scenario // scenarios on meters outside the town (MicroPython)
}

func (w *watcher) scenarios() []*sim.Scenario {
	return append(append([]*sim.Scenario(nil), w.town.Scenarios()...), w.extra...)
}

func newWatcher(srv *server.Server, town *sim.Town) *watcher {
	return &watcher{srv: srv, town: town, coll: analytics.NewCollector(srv.Store()),
		byDev: map[string][]store.Alert{}, insp: map[int]*analytics.Inspection{}, topSince: map[string]time.Time{}}
}

func (w *watcher) loop(ctx context.Context, clock *sim.Clock, out io.Writer, term bool, until time.Time) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	var lastLine time.Time
	startWall := time.Now()
	var lastReports int64
	lastRate := time.Now()
	rate := 0.0
	for {
		select {
		case <-ctx.Done():
			if out != nil && term {
				fmt.Fprintln(out)
			}
			return
		case <-t.C:
		}
		// Alerts are only read here (for the progress line); what they say and when is
		// the server's, stamped with the virtual clock's tick.
		now := clock.Now()
		w.poll(ctx, now)
		if out == nil {
			continue
		}
		st := w.town.Stats()
		if el := time.Since(lastRate); el >= time.Second {
			rate = float64(st.Reports-lastReports) / el.Seconds()
			lastReports, lastRate = st.Reports, time.Now()
		}
		if !term && time.Since(lastLine) < 5*time.Second {
			continue
		}
		lastLine = time.Now()
		done, due := w.progress(now)
		frac := float64(now.Sub(clock.Origin())) / float64(until.Sub(clock.Origin()))
		line := fmt.Sprintf("%s  %3.0f%%  virtual %s  reports %d (%.0f/s)  alerts %d  caught %d/%d  wall %s",
			spinner(time.Since(startWall)), 100*frac, offset(clock.Origin(), now), st.Reports, rate, len(w.alertsCopy()), done, due, time.Since(startWall).Round(time.Second))
		if term {
			fmt.Fprintf(out, "\r%-110s", line)
		} else {
			fmt.Fprintln(out, line)
		}
	}
}

func spinner(d time.Duration) string { return string(`|/-\`[int(d/(250*time.Millisecond))%4]) }

// offset prints a virtual time as day and clock time since the start: "d1 14:05".
func offset(origin, t time.Time) string {
	d := t.Sub(origin)
	if d < 0 {
		d = 0
	}
	day := int(d / (24 * time.Hour))
	return fmt.Sprintf("d%d %s", day+1, origin.Add(d).Format("15:04"))
}

// link names how a device reports: mqtt, http or lorawan (the MicroPython meters: http).
func (w *watcher) link(dev string) string {
	m := w.town.Meter(dev)
	switch {
	case m == nil || m.HTTP:
		return "http"
	case m.LPWAN:
		return "lorawan"
	}
	return "mqtt"
}

func (w *watcher) alertsCopy() []store.Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]store.Alert(nil), w.alerts...)
}

// poll reads alerts newer than the last one seen.
func (w *watcher) poll(ctx context.Context, now time.Time) {
	var fresh []store.Alert
	before := int64(0)
	for {
		list, err := w.srv.Store().ListAlerts(ctx, store.Page{BeforeID: before, Limit: 500}, false)
		if err != nil || len(list) == 0 {
			break
		}
		stop := false
		for _, a := range list {
			if a.ID <= w.lastAlert {
				stop = true
				break
			}
			fresh = append(fresh, a)
		}
		if stop || len(list) < 500 {
			break
		}
		before = list[len(list)-1].ID
	}
	if len(fresh) == 0 {
		return
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].ID < fresh[j].ID })
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range fresh {
		w.alerts = append(w.alerts, a)
		w.byDev[a.Dev] = append(w.byDev[a.Dev], a)
		if a.ID > w.lastAlert {
			w.lastAlert = a.ID
		}
	}
}

// districtIDs lists a district's inlet and meters.
func districtIDs(d *sim.District) (inlet string, meters []string) {
	for _, m := range d.Meters {
		meters = append(meters, m.ID)
	}
	return d.Inlet.ID, meters
}

// demoInspect fits a demo of one virtual day: the meters' shares are learned over the
// first 30 % of it (the bypass comes at 35 %), and the loss detector keeps its 7-day
// calibration, so it raises nothing in a demo that short (docs/WATER_BALANCE.md).
func demoInspect(span time.Duration) analytics.InspectConfig {
	return analytics.InspectConfig{Baseline: min(7*24*time.Hour, (span * 3 / 10).Truncate(time.Hour))}
}

func (w *watcher) inspect(ctx context.Context, d *sim.District, now time.Time) *analytics.Inspection {
	inlet, meters := districtIDs(d)
	if err := w.coll.Update(ctx, append([]string{inlet}, meters...)); err != nil {
		return nil
	}
	cfg := analytics.DistrictConfig{Name: fmt.Sprintf("d%02d", d.Index), Inlets: []string{inlet}, Customers: meters,
		Connections: len(meters), NRWTargetPct: 15}
	w.mu.Lock()
	seals := map[string]analytics.Seal{}
	for _, id := range meters {
		for _, a := range w.byDev[id] {
			if a.Kind == "replay" {
				continue // an eavesdropper's doing, not evidence against the meter
			}
			s := seals[id]
			s.Tamper = append(s.Tamper, a.Kind)
			seals[id] = s
		}
	}
	w.mu.Unlock()
	in, err := analytics.Inspect(cfg, w.coll.Data(append([]string{inlet}, meters...)), w.town.Origin(), now, demoInspect(w.town.Span()), seals)
	if err != nil || in == nil {
		return nil
	}
	w.mu.Lock()
	w.insp[d.Index] = in
	w.mu.Unlock()
	return in
}

// analyseScenarios runs the balance of the districts where a bypass was injected.
func (w *watcher) analyseScenarios(ctx context.Context, now time.Time) {
	for _, s := range w.town.Scenarios() {
		if !s.Analytics || s.Injected().IsZero() {
			continue
		}
		in := w.inspect(ctx, w.town.Districts[s.District-1], now)
		w.trackTop(s, in, now)
	}
}

func (w *watcher) trackTop(s *sim.Scenario, in *analytics.Inspection, now time.Time) {
	if in == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.logf != nil && len(in.List) > 0 {
		rank := 0
		for _, c := range in.List {
			if c.Device == s.Device {
				rank = c.Rank
			}
		}
		w.logf("balance %s: %d windows, %s ranked %d, top %s %.1f", in.District, in.Windows, s.Device, rank, in.List[0].Device, in.List[0].Score)
	}
	if len(in.List) > 0 && in.List[0].Device == s.Device && in.List[0].Flagged {
		if _, ok := w.topSince[s.Device]; !ok {
			w.topSince[s.Device] = now
		}
	} else {
		delete(w.topSince, s.Device)
	}
}

// analyse runs the balance of every district, and settles the bypass scenarios.
func (w *watcher) analyse(ctx context.Context, now time.Time) {
	for _, d := range w.town.Districts {
		in := w.inspect(ctx, d, now)
		for _, s := range w.town.Scenarios() {
			if s.Analytics && s.District == d.Index && !s.Injected().IsZero() {
				w.trackTop(s, in, now)
			}
		}
	}
}

// detection says whether and when scenario s was caught, by the server's alerts or by the
// balance.
func (w *watcher) detection(s *sim.Scenario) (ok bool, at time.Time, reason string) {
	inj := s.Injected()
	if inj.IsZero() {
		return false, time.Time{}, "not injected"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.Analytics {
		in := w.insp[s.District]
		if in == nil || len(in.List) == 0 {
			return false, time.Time{}, "no balance yet"
		}
		since, top := w.topSince[s.Device]
		c := in.List[0]
		if !top {
			for _, x := range in.List {
				if x.Device == s.Device {
					c = x
				}
			}
			return false, time.Time{}, fmt.Sprintf("ranked %d of %d in %s", c.Rank, len(in.List), in.District)
		}
		return true, since, fmt.Sprintf("balance: 1st of %d in %s, %.0f%% unregistered (score %.1f)", len(in.List), in.District, c.ShortfallPct, c.Score)
	}
	for _, a := range w.byDev[s.Device] {
		if !a.At.Before(inj.Add(-time.Second)) {
			return true, a.At, alertText(a)
		}
	}
	return false, time.Time{}, ""
}

// alertText names an alert once: "replay", not "replay: replay"; "tampered: check-fail".
func alertText(a store.Alert) string {
	if a.Reason == "" || a.Reason == a.Kind {
		return a.Kind
	}
	return a.Kind + ": " + a.Reason
}

// progress counts the scenarios caught so far among those due.
func (w *watcher) progress(now time.Time) (done, due int) {
	for _, s := range w.scenarios() {
		if !s.ExpectAlarm || s.Injected().IsZero() {
			continue
		}
		due++
		if ok, _, _ := w.detection(s); ok {
			done++
		}
	}
	return done, due
}

func (w *watcher) verdict(ctx context.Context, res *Result) error {
	st := w.srv.Store()
	scen := map[string]bool{}
	res.OK = true
	for _, s := range w.scenarios() {
		scen[s.Device] = true
		r := ScenarioResult{Name: s.Name, Title: s.Title, Threat: s.Threat, Device: s.Device, Link: w.link(s.Device), Expect: "alarm"}
		if inj := s.Injected(); !inj.IsZero() {
			r.InjectedAt = &inj
		}
		if d, err := st.GetDevice(ctx, s.Device); err == nil {
			r.State = d.State
		}
		ok, at, reason := w.detection(s)
		r.Reason = reason
		if ok {
			r.Detected, r.DetectedAt = true, &at
		}
		if s.ExpectAlarm {
			r.OK = r.InjectedAt != nil && r.Detected
		} else {
			r.Expect = "no-alarm"
			w.mu.Lock()
			n := len(w.byDev[s.Device])
			w.mu.Unlock()
			r.OK = r.InjectedAt != nil && n == 0 && (r.State == store.StateTrusted || r.State == store.StateService)
			if n == 0 {
				r.Reason = "no alarm: cover opened inside the service window"
			} else {
				r.Reason = "alarm raised during an authorised visit"
			}
		}
		res.OK = res.OK && r.OK
		res.Scenarios = append(res.Scenarios, r)
	}
	// False alarms: honest meters with any alert, or not trusted at the end.
	bad := map[string]bool{}
	for _, a := range w.alertsCopy() {
		if !scen[a.Dev] {
			bad[a.Dev] = true
		}
	}
	devs, err := st.ListDevices(ctx, store.DeviceFilter{})
	if err != nil {
		return err
	}
	for _, d := range devs {
		res.States[d.State]++
		if !scen[d.ID] && d.State != store.StateTrusted && d.State != store.StateService {
			bad[d.ID] = true
		}
	}
	for d := range bad {
		res.FalseAlarm = append(res.FalseAlarm, d)
	}
	sort.Strings(res.FalseAlarm)
	res.FalseAlarms = len(bad)
	res.OK = res.OK && res.FalseAlarms == 0
	res.Alerts = len(w.alertsCopy())
	w.mu.Lock()
	for _, d := range w.town.Districts {
		if in := w.insp[d.Index]; in != nil {
			c := *in
			if len(c.List) > 3 {
				c.List = c.List[:3]
			}
			res.Inspections = append(res.Inspections, &c)
		}
	}
	w.mu.Unlock()
	return nil
}

// PrintTable writes the verdict for people.
func PrintTable(out io.Writer, r *Result) {
	fmt.Fprintf(out, "\n%s\n", r.Manifest)
	fmt.Fprintf(out, "%d meters + %d district inlet meters (%d over MQTT, %d over HTTP, %d over LoRaWAN); virtual %s → %s at %.0fx in %.0fs wall\n",
		r.Meters, r.Inlets, r.OverMQTT, r.OverHTTP, r.OverLoRaWAN, r.Start.Format("2006-01-02 15:04"), r.End.Format("01-02 15:04"), r.Speed, r.WallSeconds)
	if r.LoRaWAN != "" {
		fmt.Fprintln(out, r.LoRaWAN)
	}
	if r.MicroPython != "" {
		fmt.Fprintln(out, r.MicroPython)
	}
	fmt.Fprintf(out, "%d reports sent, %d acknowledged, %d refused by the server; worst report lateness %s (virtual)\n\n", r.Reports, r.Acked, r.Rejected, r.MaxLag)
	fmt.Fprintf(out, "%-20s %-9s %-12s %-8s %-9s %-9s %-7s %-11s %s\n", "SCENARIO", "THREAT", "DEVICE", "LINK", "INJECTED", "DETECTED", "AFTER", "STATE", "EVIDENCE")
	for _, s := range r.Scenarios {
		inj, det, after := "-", "-", "-"
		if s.InjectedAt != nil {
			inj = offset(r.Start, *s.InjectedAt)[3:]
		}
		if s.DetectedAt != nil {
			det = offset(r.Start, *s.DetectedAt)[3:]
			if s.InjectedAt != nil {
				// From the minutes shown, so that the row adds up: 09:46 → 10:01 is 15m.
				after = shortDur(s.DetectedAt.Truncate(time.Minute).Sub(s.InjectedAt.Truncate(time.Minute)))
			}
		}
		if s.Expect == "no-alarm" {
			det, after = "quiet", "-"
			if !s.OK {
				det = "ALARM"
			}
		} else if !s.Detected {
			det = "MISSED"
		}
		mark := "ok"
		if !s.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(out, "%-20s %-9s %-12s %-8s %-9s %-9s %-7s %-11s %s [%s]\n", s.Name, s.Threat, s.Device, s.Link, inj, det, after, s.State, s.Reason, mark)
	}
	fmt.Fprintf(out, "\nfalse alarms among honest meters: %d", r.FalseAlarms)
	if r.FalseAlarms > 0 {
		fmt.Fprintf(out, " (%s)", strings.Join(head(r.FalseAlarm, 8), ", "))
	}
	fmt.Fprintln(out)
	states := make([]string, 0, len(r.States))
	for k, v := range r.States {
		states = append(states, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(states)
	fmt.Fprintf(out, "device states: %s\n", strings.Join(states, ", "))
	for _, in := range r.Inspections {
		b := in.Balance
		if b == nil {
			continue
		}
		night := ""
		if n := len(in.Night); n > 0 {
			night = fmt.Sprintf(", net night flow %.2f m³/h", in.Night[n-1].NetM3PerH)
		}
		fmt.Fprintf(out, "water balance %s: input %.1f m³/day, non-revenue water %.1f %%, real losses %.0f L/connection/day%s;",
			in.District, b.SystemInputM3/b.Days, b.NonRevenuePct, b.RealLossesLConDay, night)
		flagged := 0
		for _, c := range in.List {
			if c.Flagged {
				if flagged == 0 {
					fmt.Fprint(out, " inspect:")
				}
				flagged++
				fmt.Fprintf(out, " %s (%.0f%% unregistered, %.2f m³/day)", c.Device, c.ShortfallPct, c.AtStakeM3Day)
			}
		}
		if flagged == 0 {
			fmt.Fprint(out, " no meter flagged")
		}
		fmt.Fprintln(out)
	}
	if r.Dashboard != "" {
		fmt.Fprintf(out, "dashboard: %s\n", r.Dashboard)
	}
	if r.OK {
		fmt.Fprintln(out, "verdict: every attack detected, no false alarms")
	} else {
		fmt.Fprintln(out, "verdict: FAILED (see above)")
	}
}

func head(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "...")
	}
	return s
}

func shortDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Minute)
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// configureDistricts stores the town's districts and their meters as an operator would
// through the API (PUT /api/v1/districts/{id}, POST /api/v1/district-members), so the
// server refreshes their balance on its schedule and the console shows it.
func configureDistricts(ctx context.Context, st store.Store, town *sim.Town) error {
	for _, d := range town.Districts {
		id := fmt.Sprintf("d%02d", d.Index)
		inlet, meters := districtIDs(d)
		cfg := fmt.Sprintf(`{"connections":%d,"nrw_target_pct":15}`, len(meters))
		name := fmt.Sprintf("District %d", d.Index)
		if len(d.Meters) > 0 && d.Meters[0].LPWAN {
			name += " (LoRaWAN)" // the console shows which district reports over LoRaWAN
		}
		if err := st.PutDistrict(ctx, store.District{ID: id, Name: name, Config: []byte(cfg), Updated: town.Origin()}); err != nil {
			return err
		}
		ms := []store.DistrictMember{{District: id, Dev: inlet, Role: store.RoleInlet}}
		for _, m := range meters {
			ms = append(ms, store.DistrictMember{District: id, Dev: m, Role: store.RoleCustomer})
		}
		if err := st.SetDistrictMembers(ctx, ms); err != nil {
			return err
		}
	}
	return nil
}
