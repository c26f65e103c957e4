// Package districts keeps the fleet server's districts' water balance and inspection
// lists fresh: it reads each district's members and their sealed registers from the store
// (analytics.Collector, incrementally), recomputes on a schedule, and answers the API and
// the console from the latest result.
package districts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/store"
)

// ErrInput is an operator error (bad request): the API answers 400 with its text. The
// server's ErrInput is this one (declared here, below the server, so both wrap it).
var ErrInput = errors.New("invalid request")

// Config sets the server's scheduled water balance (docs/OPERATIONS.md).
type Config struct {
	// Every is how often each district's balance and inspection list are recomputed
	// (default 1 h; negative: only at Start, and a district created later when first asked
	// for). The first run is at Start.
	Every time.Duration
	// History is how far back (server time) a refresh reads (default 60 days).
	History time.Duration
	// Inspect tunes the inspection list (baseline, …); zero values are analytics' defaults.
	Inspect analytics.InspectConfig
}

// Result is the cached outcome of one district's refresh.
type Result struct {
	District   string                `json:"district"`
	Refreshed  time.Time             `json:"refreshed"` // server time of the computation
	Error      string                `json:"error,omitempty"`
	Inspection *analytics.Inspection `json:"inspection,omitempty"`
	Series     []Point               `json:"series"`
}

// Point is the balance of one step (an hour or a day) for the console's plot.
type Point struct {
	From           time.Time `json:"from"`
	InputM3Day     float64   `json:"system_input_m3_per_day"`
	MeteredM3Day   float64   `json:"billed_metered_m3_per_day"`
	NonRevenueM3PD float64   `json:"non_revenue_m3_per_day"`
	NonRevenuePct  float64   `json:"non_revenue_pct"`
}

// Refresher holds the collected registers and the latest result of each district.
type Refresher struct {
	st      store.Store
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	coll    *analytics.Collector
	run     sync.Mutex // one refresh at a time
	mu      sync.Mutex
	results map[string]*Result
	onList  map[string]analytics.Candidate // device → its entry on its district's list (flagged ones)
}

// New is the refresher of the districts in st, on the fleet's clock now.
func New(st store.Store, cfg Config, now func() time.Time, log *slog.Logger) *Refresher {
	return &Refresher{st: st, cfg: cfg, now: now, log: log, coll: analytics.NewCollector(st),
		results: map[string]*Result{}, onList: map[string]analytics.Candidate{}}
}

// ParseConfig reads what an administrator configures for a district: everything of
// analytics.DistrictConfig except its meters (members, set by CSV import) and tanks.
func ParseConfig(id string, raw []byte) (analytics.DistrictConfig, error) {
	var cfg analytics.DistrictConfig
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, fmt.Errorf("%w: district %s config: %v", ErrInput, id, err)
		}
	}
	switch {
	case len(cfg.Inlets)+len(cfg.Outlets)+len(cfg.Customers) > 0:
		return cfg, fmt.Errorf("%w: district %s config: inlets, outlets and customers are set by the members import (POST /api/v1/district-members), not in the config", ErrInput, id)
	case len(cfg.Tanks) > 0:
		return cfg, fmt.Errorf("%w: district %s config: tanks need level readings, which devices do not report to the server; use `fieldseal balance` with a reads CSV for a district with a tank", ErrInput, id)
	}
	if _, err := cfg.Location(); err != nil {
		return cfg, fmt.Errorf("%w: district %s config: time_zone: %v", ErrInput, id, err)
	}
	cfg.Name = id
	return cfg, nil
}

// districtConfig assembles a stored district and its members into analytics' config.
func districtConfig(d *store.District, ms []store.DistrictMember) (analytics.DistrictConfig, error) {
	cfg, err := ParseConfig(d.ID, d.Config)
	if err != nil {
		return cfg, err
	}
	for _, m := range ms {
		switch m.Role {
		case store.RoleInlet:
			cfg.Inlets = append(cfg.Inlets, m.Dev)
		case store.RoleOutlet:
			cfg.Outlets = append(cfg.Outlets, m.Dev)
		case store.RoleCustomer:
			cfg.Customers = append(cfg.Customers, m.Dev)
		}
	}
	if len(cfg.Inlets) == 0 {
		return cfg, fmt.Errorf("district %s has no inlet meter: import one with role inlet", d.ID)
	}
	if len(cfg.Customers) == 0 {
		return cfg, fmt.Errorf("district %s has no customer meter: import them with role customer", d.ID)
	}
	return cfg, nil
}

// Refresh recomputes every district's balance and inspection list now from the
// registers of sealed reports and the devices' seal state. A district that cannot be
// computed keeps its error in its result; the others are still refreshed.
func (rf *Refresher) Refresh(ctx context.Context) error {
	rf.run.Lock()
	defer rf.run.Unlock()
	ds, err := rf.st.ListDistricts(ctx)
	if err != nil {
		return err
	}
	results := map[string]*Result{}
	onList := map[string]analytics.Candidate{}
	for i := range ds {
		r := rf.refreshDistrict(ctx, &ds[i])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		results[ds[i].ID] = r
		if r.Inspection != nil {
			for _, c := range r.Inspection.List {
				if c.Flagged {
					onList[c.Device] = c
				}
			}
		}
	}
	rf.mu.Lock()
	rf.results, rf.onList = results, onList
	rf.mu.Unlock()
	// Keep in memory only what the next refresh reads (a day's margin for its first window).
	rf.coll.Forget(rf.now().Add(-rf.cfg.History - 24*time.Hour))
	return nil
}

func (rf *Refresher) refreshDistrict(ctx context.Context, d *store.District) *Result {
	now := rf.now()
	res := &Result{District: d.ID, Refreshed: now, Series: []Point{}}
	cfg, data, err := rf.districtData(ctx, d)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	seals := map[string]analytics.Seal{}
	for _, id := range cfg.Customers {
		dev, err := rf.st.GetDevice(ctx, id)
		if err != nil {
			continue // a meter not provisioned (yet): no seal to speak of
		}
		seal := analytics.Seal{State: dev.State}
		if dev.State == store.StateTampered || dev.State == store.StateSuspect {
			seal.Tamper = []string{dev.StateReason}
		}
		seals[id] = seal
	}
	in, err := analytics.Inspect(cfg, data, now.Add(-rf.cfg.History), now, rf.cfg.Inspect, seals)
	res.Inspection = in
	if err != nil {
		res.Error = err.Error()
		if in == nil || in.Windows == 0 {
			res.Inspection = nil
			return res
		}
	}
	res.Series = balanceSeries(cfg, data, in.From, in.To)
	return res
}

// districtData reads a district's members and their registers (incrementally).
func (rf *Refresher) districtData(ctx context.Context, d *store.District) (analytics.DistrictConfig, analytics.Data, error) {
	ms, err := rf.st.ListDistrictMembers(ctx, d.ID)
	if err != nil {
		return analytics.DistrictConfig{}, analytics.Data{}, err
	}
	cfg, err := districtConfig(d, ms)
	if err != nil {
		return cfg, analytics.Data{}, err
	}
	devs := make([]string, 0, len(ms))
	for _, m := range ms {
		devs = append(devs, m.Dev)
	}
	if err := rf.coll.Update(ctx, devs); err != nil {
		return cfg, analytics.Data{}, err
	}
	return cfg, rf.coll.Data(devs), nil
}

// balanceSeries is the balance step by step for the plot: daily over periods of three
// days or more (the last 60), hourly otherwise.
func balanceSeries(cfg analytics.DistrictConfig, data analytics.Data, from, to time.Time) []Point {
	step := time.Hour
	if to.Sub(from) >= 72*time.Hour {
		step = 24 * time.Hour
	}
	if n := to.Sub(from) / step; n > 60 {
		from = to.Add(-60 * step)
	}
	out := []Point{}
	for t := from; !t.Add(step).After(to); t = t.Add(step) {
		b, err := analytics.Balance(cfg, data, t, t.Add(step))
		if err != nil {
			continue // a gap in a bulk meter's reads: no point rather than a guess
		}
		out = append(out, Point{From: t, InputM3Day: b.SystemInputM3 / b.Days, MeteredM3Day: b.BilledMeteredM3 / b.Days,
			NonRevenueM3PD: b.NonRevenueM3Day, NonRevenuePct: b.NonRevenuePct})
	}
	return out
}

// Result returns a district's latest result, computing it if no refresh has yet.
func (rf *Refresher) Result(ctx context.Context, id string) (*Result, error) {
	rf.mu.Lock()
	r := rf.results[id]
	rf.mu.Unlock()
	if r != nil {
		return r, nil
	}
	d, err := rf.st.GetDistrict(ctx, id)
	if err != nil {
		return nil, err
	}
	rf.run.Lock()
	r = rf.refreshDistrict(ctx, d)
	rf.run.Unlock()
	rf.mu.Lock()
	rf.results[id] = r
	rf.mu.Unlock()
	return r, nil
}

// OnInspectionList returns the entry of a device flagged on its district's inspection list.
func (rf *Refresher) OnInspectionList(dev string) (analytics.Candidate, bool) {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	c, ok := rf.onList[dev]
	return c, ok
}

// Balance computes a district's IWA balance over [from, to) from the registers
// held now (zero from/to: the period of the latest refresh).
func (rf *Refresher) Balance(ctx context.Context, id string, from, to time.Time) (*analytics.WaterBalance, error) {
	d, err := rf.st.GetDistrict(ctx, id)
	if err != nil {
		return nil, err
	}
	if from.IsZero() || to.IsZero() {
		r, err := rf.Result(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Inspection == nil || r.Inspection.Balance == nil {
			return nil, fmt.Errorf("%w: district %s has no balance yet (%s); give from and to", ErrInput, id, r.Error)
		}
		from, to = r.Inspection.From, r.Inspection.To
	}
	rf.run.Lock()
	cfg, data, err := rf.districtData(ctx, d)
	rf.run.Unlock()
	if err != nil {
		if errors.Is(err, ErrInput) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	b, err := analytics.Balance(cfg, data, from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInput, err)
	}
	return b, nil
}

// Run refreshes every district now and then every Config.Every, until bg is done.
func (rf *Refresher) Run(bg context.Context) {
	refresh := func() {
		if err := rf.Refresh(bg); err != nil && bg.Err() == nil {
			rf.log.Warn("water balance refresh", "err", err)
		}
	}
	refresh()
	if rf.cfg.Every < 0 {
		return
	}
	t := time.NewTicker(rf.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-bg.Done():
			return
		case <-t.C:
			refresh()
		}
	}
}
