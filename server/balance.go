package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/store"
)

// BalanceConfig sets the server's scheduled water balance (docs/OPERATIONS.md).
type BalanceConfig struct {
	// Every is how often each district's balance and inspection list are recomputed
	// (default 1 h; negative: only at Start, and a district created later when first asked
	// for). The first run is at Start.
	Every time.Duration
	// History is how far back (server time) a refresh reads (default 60 days).
	History time.Duration
	// Inspect tunes the inspection list (baseline, …); zero values are analytics' defaults.
	Inspect analytics.InspectConfig
}

// DistrictResult is the cached outcome of one district's refresh.
type DistrictResult struct {
	District   string                `json:"district"`
	Refreshed  time.Time             `json:"refreshed"` // server time of the computation
	Error      string                `json:"error,omitempty"`
	Inspection *analytics.Inspection `json:"inspection,omitempty"`
	Series     []BalancePoint        `json:"series"`
}

// BalancePoint is the balance of one step (an hour or a day) for the console's plot.
type BalancePoint struct {
	From           time.Time `json:"from"`
	InputM3Day     float64   `json:"system_input_m3_per_day"`
	MeteredM3Day   float64   `json:"billed_metered_m3_per_day"`
	NonRevenueM3PD float64   `json:"non_revenue_m3_per_day"`
	NonRevenuePct  float64   `json:"non_revenue_pct"`
}

// balances holds the collected registers and the latest result of each district.
type balances struct {
	coll    *analytics.Collector
	run     sync.Mutex // one refresh at a time
	mu      sync.Mutex
	results map[string]*DistrictResult
	onList  map[string]analytics.Candidate // device → its entry on its district's list (flagged ones)
}

func newBalances(st store.Store) *balances {
	return &balances{coll: analytics.NewCollector(st), results: map[string]*DistrictResult{}, onList: map[string]analytics.Candidate{}}
}

// ParseDistrictConfig reads what an administrator configures for a district: everything of
// analytics.DistrictConfig except its meters (members, set by CSV import) and tanks.
func ParseDistrictConfig(id string, raw []byte) (analytics.DistrictConfig, error) {
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
	cfg, err := ParseDistrictConfig(d.ID, d.Config)
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

// RefreshBalances recomputes every district's balance and inspection list now from the
// registers of sealed reports and the devices' seal state. A district that cannot be
// computed keeps its error in its result; the others are still refreshed.
func (s *Server) RefreshBalances(ctx context.Context) error {
	s.bal.run.Lock()
	defer s.bal.run.Unlock()
	ds, err := s.st.ListDistricts(ctx)
	if err != nil {
		return err
	}
	results := map[string]*DistrictResult{}
	onList := map[string]analytics.Candidate{}
	for i := range ds {
		r := s.refreshDistrict(ctx, &ds[i])
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
	s.bal.mu.Lock()
	s.bal.results, s.bal.onList = results, onList
	s.bal.mu.Unlock()
	// Keep in memory only what the next refresh reads (a day's margin for its first window).
	s.bal.coll.Forget(s.now().Add(-s.cfg.Balance.History - 24*time.Hour))
	return nil
}

func (s *Server) refreshDistrict(ctx context.Context, d *store.District) *DistrictResult {
	now := s.now()
	res := &DistrictResult{District: d.ID, Refreshed: now, Series: []BalancePoint{}}
	cfg, data, err := s.districtData(ctx, d)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	seals := map[string]analytics.Seal{}
	for _, id := range cfg.Customers {
		dev, err := s.st.GetDevice(ctx, id)
		if err != nil {
			continue // a meter not provisioned (yet): no seal to speak of
		}
		seal := analytics.Seal{State: dev.State}
		if dev.State == store.StateTampered || dev.State == store.StateSuspect {
			seal.Tamper = []string{dev.StateReason}
		}
		seals[id] = seal
	}
	in, err := analytics.Inspect(cfg, data, now.Add(-s.cfg.Balance.History), now, s.cfg.Balance.Inspect, seals)
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
func (s *Server) districtData(ctx context.Context, d *store.District) (analytics.DistrictConfig, analytics.Data, error) {
	ms, err := s.st.ListDistrictMembers(ctx, d.ID)
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
	if err := s.bal.coll.Update(ctx, devs); err != nil {
		return cfg, analytics.Data{}, err
	}
	return cfg, s.bal.coll.Data(devs), nil
}

// balanceSeries is the balance step by step for the plot: daily over periods of three
// days or more (the last 60), hourly otherwise.
func balanceSeries(cfg analytics.DistrictConfig, data analytics.Data, from, to time.Time) []BalancePoint {
	step := time.Hour
	if to.Sub(from) >= 72*time.Hour {
		step = 24 * time.Hour
	}
	if n := to.Sub(from) / step; n > 60 {
		from = to.Add(-60 * step)
	}
	out := []BalancePoint{}
	for t := from; !t.Add(step).After(to); t = t.Add(step) {
		b, err := analytics.Balance(cfg, data, t, t.Add(step))
		if err != nil {
			continue // a gap in a bulk meter's reads: no point rather than a guess
		}
		out = append(out, BalancePoint{From: t, InputM3Day: b.SystemInputM3 / b.Days, MeteredM3Day: b.BilledMeteredM3 / b.Days,
			NonRevenueM3PD: b.NonRevenueM3Day, NonRevenuePct: b.NonRevenuePct})
	}
	return out
}

// DistrictResult returns a district's latest result, computing it if no refresh has yet.
func (s *Server) DistrictResult(ctx context.Context, id string) (*DistrictResult, error) {
	s.bal.mu.Lock()
	r := s.bal.results[id]
	s.bal.mu.Unlock()
	if r != nil {
		return r, nil
	}
	d, err := s.st.GetDistrict(ctx, id)
	if err != nil {
		return nil, err
	}
	s.bal.run.Lock()
	r = s.refreshDistrict(ctx, d)
	s.bal.run.Unlock()
	s.bal.mu.Lock()
	s.bal.results[id] = r
	s.bal.mu.Unlock()
	return r, nil
}

// OnInspectionList returns the entry of a device flagged on its district's inspection list.
func (s *Server) OnInspectionList(dev string) (analytics.Candidate, bool) {
	s.bal.mu.Lock()
	defer s.bal.mu.Unlock()
	c, ok := s.bal.onList[dev]
	return c, ok
}

// DistrictBalance computes a district's IWA balance over [from, to) from the registers
// held now (zero from/to: the period of the latest refresh).
func (s *Server) DistrictBalance(ctx context.Context, id string, from, to time.Time) (*analytics.WaterBalance, error) {
	d, err := s.st.GetDistrict(ctx, id)
	if err != nil {
		return nil, err
	}
	if from.IsZero() || to.IsZero() {
		r, err := s.DistrictResult(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Inspection == nil || r.Inspection.Balance == nil {
			return nil, fmt.Errorf("%w: district %s has no balance yet (%s); give from and to", ErrInput, id, r.Error)
		}
		from, to = r.Inspection.From, r.Inspection.To
	}
	s.bal.run.Lock()
	cfg, data, err := s.districtData(ctx, d)
	s.bal.run.Unlock()
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

// balanceLoop refreshes every district at start and then every BalanceConfig.Every.
func (s *Server) balanceLoop(bg context.Context) {
	defer s.bgDone.Done()
	refresh := func() {
		if err := s.RefreshBalances(bg); err != nil && bg.Err() == nil {
			s.log.Warn("water balance refresh", "err", err)
		}
	}
	refresh()
	if s.cfg.Balance.Every < 0 {
		return
	}
	t := time.NewTicker(s.cfg.Balance.Every)
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
