// Package sim is the simulated town: thousands of in-process water meters, each a real
// agent.Device with its own evidence log and keys, on a virtual clock, grouped in districts
// with a bulk inlet meter, consuming water on a daily pattern, sometimes offline, and a
// set of attacks injected on schedule. The meters talk to the server over real transports
// (whatever Config.Dial returns); the town knows nothing of the server's insides.
package sim

import (
	"container/heap"
	"context"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// Config describes a town.
type Config struct {
	Meters         int           // household meters (inlet meters come on top)
	PerDistrict    int           // meters per district; default 100
	Seed           uint64        // selects consumption noise, victims and offline periods
	Clock          *Clock        // virtual clock shared with the server
	Span           time.Duration // virtual time the run covers: scenarios are placed in it
	ReportInterval time.Duration // virtual; default 15 min
	Manifest       wire.ManifestRef
	Files          uint32   // files in the manifest: what an honest check reports
	Scenarios      []string // names to inject (Names()); nil: all; empty non-nil: none
	OfflineShare   float64  // share of honest meters with one battery-style offline period; default 0.05, negative: none
	Workers        int      // concurrent meter steps; default 64

	// Provision returns the bundle of a new device.
	Provision func(ctx context.Context, id string) (*wire.Bundle, error)
	// Dial returns the transport a meter reports over; http says the meter was chosen to
	// use HTTP instead of MQTT (every HTTPEvery-th meter).
	Dial      func(ctx context.Context, b *wire.Bundle, http bool) (agent.Transport, error)
	HTTPEvery int
	// LPWANDistrict is the district (1-based) whose household meters report over the LPWAN
	// profile through LPWANDial instead; 0: none. With a single district there is none:
	// the replayed and truncated reports need meters on the full protocol.
	LPWANDistrict int
	LPWANDial     func(ctx context.Context, b *wire.Bundle) (LPLink, error)
	// Service asks the server for an authorised service visit with a token (window, virtual).
	Service func(ctx context.Context, dev string, window time.Duration) error
	// Replay sends captured report bytes to the server as an eavesdropper would.
	Replay func(ctx context.Context, report []byte) error
	Logf   func(format string, args ...any)
}

// LPLink is a LoRaWAN meter's radio and network server: Round carries one round's uplink
// frames (the last is the status, decoded in st) and returns the downlinks the network
// server holds for the meter when the round is over (class A: a device hears only after
// it sends). It returns an error when the server never took the status.
type LPLink interface {
	Round(ctx context.Context, frames [][]byte, st *wire.LPStatusFrame) ([][]byte, error)
	Close() error
}

// Meter is one simulated device: a household meter or a district's bulk inlet meter.
type Meter struct {
	ID       string
	District int
	Inlet    bool
	HTTP     bool
	LPWAN    bool // reports over the LPWAN profile (LoRaWAN), not MQTT or HTTP

	town   *Town
	b      *wire.Bundle
	chain  *fschain.MemStorage
	dev    *agent.Device
	tr     agent.Transport
	lp     *agent.LPMeter // LPWAN meters: the profile's session, and its link
	lk     LPLink
	cons   Consumption
	phase  time.Duration
	next   time.Time // next report
	due    time.Time // next time the meter needs a step
	hidx   int
	queued bool

	actions    []action
	bad        []wire.Finding
	silent     bool
	offFrom    time.Time
	offTo      time.Time
	reboot     bool
	bypassAt   time.Time
	bypassFrac float64
	underReg   float64 // share of the true use the meter fails to register (low flows)
	trunc      *truncation
	history    [][]byte
	awaitSvc   *Scenario
	scenario   *Scenario
}

type action struct {
	at time.Time
	do func(ctx context.Context, m *Meter, now time.Time) error
}

type truncation struct {
	n    uint64
	head []byte
}

// District is a group of meters fed through one bulk inlet meter.
type District struct {
	Index  int
	Inlet  *Meter
	Meters []*Meter
	Leak   float64 // litres per hour of real losses (background leakage)
}

// Stats are the town's counters.
type Stats struct {
	Reports, Acked, Rejected, SendErrors, AckErrors int64
	Steps                                           int64
	MaxLag                                          time.Duration // worst lateness of a report against its schedule (virtual)
	LagSum                                          time.Duration
}

// Town is the simulated town.
type Town struct {
	cfg       Config
	Meters    []*Meter // household and inlet meters
	Districts []*District
	scen      []*Scenario
	byID      map[string]*Meter

	mu       sync.Mutex
	q        meterHeap
	wake     chan struct{}
	stepping bool // StepTo drives the town (a stepped run), not Run

	reports, acked, rejected, sendErrs, ackErrs, steps atomic.Int64
	maxLag, lagSum                                     atomic.Int64
}

// New builds the town: provisions every meter, creates its device and connects it.
func New(ctx context.Context, cfg Config) (*Town, error) {
	if cfg.PerDistrict <= 0 {
		cfg.PerDistrict = 100
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = 15 * time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.OfflineShare == 0 {
		cfg.OfflineShare = 0.05
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Span <= 0 {
		cfg.Span = 24 * time.Hour
	}
	t := &Town{cfg: cfg, byID: map[string]*Meter{}, wake: make(chan struct{}, 1)}
	nd := (cfg.Meters + cfg.PerDistrict - 1) / cfg.PerDistrict
	if nd == 0 {
		nd = 1
	}
	origin := cfg.Clock.Origin()
	for d := 0; d < nd; d++ {
		t.Districts = append(t.Districts, &District{Index: d + 1})
	}
	for i := 0; i < cfg.Meters; i++ {
		d := t.Districts[i%nd]
		m := &Meter{ID: meterID(d.Index, i), District: d.Index}
		// Most households use 150–600 L a day; one in twenty is a business using more.
		per := 150 + 450*unit(cfg.Seed, uint64(i), 1<<40)
		if unit(cfg.Seed, uint64(i), 1<<41) < 0.05 {
			per *= 5
		}
		m.cons = Consumption{Seed: cfg.Seed, Index: uint64(i), PerDay: per, Origin: origin}
		// Household meters under-register 1–4 % (drips and trickles below their starting flow).
		m.underReg = 0.01 + 0.03*unit(cfg.Seed, uint64(i), 1<<48)
		d.Meters = append(d.Meters, m)
	}
	for _, d := range t.Districts {
		var sum float64
		for _, m := range d.Meters {
			sum += m.cons.PerDay
		}
		d.Leak = sum / 24 * (0.03 + 0.04*unit(cfg.Seed, uint64(d.Index), 1<<42))
		d.Inlet = &Meter{ID: fmt.Sprintf("d%02d-inlet", d.Index), District: d.Index, Inlet: true}
	}
	for _, d := range t.Districts {
		t.Meters = append(t.Meters, d.Inlet)
		t.Meters = append(t.Meters, d.Meters...)
	}
	lpDistrict := cfg.lpwanDistrict()
	for i, m := range t.Meters {
		m.town = t
		m.LPWAN = !m.Inlet && m.District == lpDistrict
		m.HTTP = !m.LPWAN && cfg.HTTPEvery > 0 && i%cfg.HTTPEvery == cfg.HTTPEvery-1
		m.phase = time.Duration(unit(cfg.Seed, uint64(i), 1<<43) * float64(cfg.ReportInterval))
		m.next = origin.Add(m.phase)
		t.byID[m.ID] = m
	}
	t.placeScenarios()
	t.placeOffline()
	if err := t.provision(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

func meterID(district, i int) string { return fmt.Sprintf("d%02d-m%05d", district, i+1) }

func (c Config) districts() int {
	per := c.PerDistrict
	if per <= 0 {
		per = 100
	}
	return max(1, (c.Meters+per-1)/per)
}

// lpwanDistrict is the district reporting over the LPWAN profile, 0 for none.
func (c Config) lpwanDistrict() int {
	if c.LPWANDistrict <= 0 || c.LPWANDistrict > c.districts() || c.districts() < 2 {
		return 0
	}
	return c.LPWANDistrict
}

// LPWANMeters lists the ids of the meters that will report over the LPWAN profile, before
// the town exists: a network server needs their DevEUIs configured before they report.
func (c Config) LPWANMeters() []string {
	d := c.lpwanDistrict()
	if d == 0 {
		return nil
	}
	var ids []string
	for i := d - 1; i < c.Meters; i += c.districts() {
		ids = append(ids, meterID(d, i))
	}
	return ids
}

func (t *Town) provision(ctx context.Context) error {
	now := uint64(t.cfg.Clock.Now().Unix())
	sem := make(chan struct{}, max(16, t.cfg.Workers))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, m := range t.Meters {
		wg.Add(1)
		sem <- struct{}{}
		go func(m *Meter) {
			defer wg.Done()
			defer func() { <-sem }()
			err := m.start(ctx, now)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("meter %s: %w", m.ID, err)
				}
				mu.Unlock()
			}
		}(m)
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func (m *Meter) start(ctx context.Context, now uint64) error {
	b, err := m.town.cfg.Provision(ctx, m.ID)
	if err != nil {
		return err
	}
	m.b = b
	m.chain = fschain.NewMemStorage()
	if m.dev, err = m.boot(now, "power-on"); err != nil {
		return err
	}
	if m.LPWAN {
		m.lp = agent.NewLPMeter(m.dev)
		m.lk, err = m.town.cfg.LPWANDial(ctx, b)
		return err
	}
	m.tr, err = m.town.cfg.Dial(ctx, b, m.HTTP)
	return err
}

func (m *Meter) boot(now uint64, cause string) (*agent.Device, error) {
	d, err := agent.New(agent.Config{Bundle: m.b, Manifest: m.town.cfg.Manifest, Chain: m.chain, Now: now, ResetCause: cause})
	if err != nil {
		return nil, err
	}
	// First check at boot: the app tree is intact.
	return d, d.Check(now, m.town.cfg.Files, nil, nil, nil)
}

// placeOffline gives some honest meters one offline period (a flat battery, a van parked
// over the antenna): they miss a few reports, keep logging, and send it all on return;
// half of them reboot when power returns.
func (t *Town) placeOffline() {
	for i, m := range t.Meters {
		if m.scenario != nil || m.Inlet || unit(t.cfg.Seed, uint64(i), 1<<44) >= t.cfg.OfflineShare {
			continue
		}
		start := t.cfg.Clock.Origin().Add(time.Duration((0.1 + 0.75*unit(t.cfg.Seed, uint64(i), 1<<45)) * float64(t.cfg.Span)))
		dur := time.Duration((1.5 + 2*unit(t.cfg.Seed, uint64(i), 1<<46)) * float64(t.cfg.ReportInterval))
		m.offFrom, m.offTo = start, start.Add(dur)
		m.reboot = i%2 == 0
	}
}

// Scenarios returns the injected scenarios.
func (t *Town) Scenarios() []*Scenario { return t.scen }

// Meter returns a meter by id.
func (t *Town) Meter(id string) *Meter { return t.byID[id] }

// Honest reports whether a meter has no scenario (it must never alarm).
func (m *Meter) Honest() bool { return m.scenario == nil }

// Device is the meter's agent engine.
func (m *Meter) Device() *agent.Device { return m.dev }

// Registered is what the meter's register shows at t: its true use less what it fails to
// register and what a bypass diverts. An inlet meter registers the district's true use
// plus its leaks.
func (m *Meter) Registered(t time.Time) float64 {
	if m.Inlet {
		d := m.town.Districts[m.District-1]
		var s float64
		for _, x := range d.Meters {
			s += x.cons.At(t)
		}
		return s + d.Leak*t.Sub(m.town.origin()).Hours()
	}
	c := m.cons.At(t)
	if !m.bypassAt.IsZero() && t.After(m.bypassAt) {
		cb := m.cons.At(m.bypassAt)
		c = cb + m.bypassFrac*(c-cb)
	}
	return c * (1 - m.underReg)
}

// Behind is how far the simulation runs behind the virtual clock: the age of the oldest
// step that is due and not yet done. A loaded machine stalls the simulation, and a server
// on the same virtual clock would take the stalled meters for silent ones.
func (t *Town) Behind(now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest time.Time
	for _, m := range t.Meters {
		if !m.due.IsZero() && (oldest.IsZero() || m.due.Before(oldest)) {
			oldest = m.due
		}
	}
	if oldest.IsZero() || !oldest.Before(now) {
		return 0
	}
	return now.Sub(oldest)
}

// ResetMaxLag starts a new window for Stats().MaxLag.
func (t *Town) ResetMaxLag() { t.maxLag.Store(0) }

// Stats returns the counters so far.
func (t *Town) Stats() Stats {
	n := t.steps.Load()
	return Stats{Reports: t.reports.Load(), Acked: t.acked.Load(), Rejected: t.rejected.Load(),
		SendErrors: t.sendErrs.Load(), AckErrors: t.ackErrs.Load(), Steps: n,
		MaxLag: time.Duration(t.maxLag.Load()), LagSum: time.Duration(t.lagSum.Load())}
}

// Run drives the town until the virtual clock passes until or ctx ends, then closes every
// meter's transport.
func (t *Town) Run(ctx context.Context, until time.Time) error {
	defer t.Close()
	t.mu.Lock()
	for _, m := range t.Meters {
		m.due = m.nextDue()
		heap.Push(&t.q, m)
		m.queued = true
	}
	t.mu.Unlock()
	work := make(chan *Meter)
	var wg sync.WaitGroup
	for i := 0; i < t.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				m.step(ctx, t.cfg.Clock.Now())
				t.steps.Add(1)
				t.mu.Lock()
				m.due = m.nextDue()
				heap.Push(&t.q, m)
				m.queued = true
				t.mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var ready []*Meter
loop:
	for {
		now := t.cfg.Clock.Now()
		if !now.Before(until) {
			break
		}
		t.mu.Lock()
		for t.q.Len() > 0 && !t.q[0].due.After(now) {
			m := heap.Pop(&t.q).(*Meter)
			m.queued = false
			ready = append(ready, m)
		}
		t.mu.Unlock()
		for len(ready) > 0 {
			select {
			case work <- ready[0]:
				ready = ready[1:]
			case <-ctx.Done():
				break loop
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			break loop
		}
	}
	close(work)
	wg.Wait()
	return ctx.Err()
}

// StepTo runs, in a stepped run, every meter step due up to and including to: each meter
// at its own scheduled times (a report at 09:43:17 is made at 09:43:17), meters in
// parallel on the workers, and returns when all are done. The server reads the same clock,
// set to to by the caller, so what it concludes carries the tick's time whatever the
// machine's speed or the goroutines' order: the same seed tells the same story.
func (t *Town) StepTo(ctx context.Context, to time.Time) {
	t.mu.Lock()
	if !t.stepping {
		t.stepping = true
		for _, m := range t.Meters {
			m.due = m.nextDue()
			heap.Push(&t.q, m)
			m.queued = true
		}
	}
	var ready []*Meter
	for t.q.Len() > 0 && !t.q[0].due.After(to) {
		m := heap.Pop(&t.q).(*Meter)
		m.queued = false
		ready = append(ready, m)
	}
	t.mu.Unlock()
	sem := make(chan struct{}, t.cfg.Workers)
	var wg sync.WaitGroup
	for _, m := range ready {
		sem <- struct{}{}
		wg.Add(1)
		go func(m *Meter) {
			defer wg.Done()
			defer func() { <-sem }()
			for due := m.nextDue(); !due.After(to) && ctx.Err() == nil; due = m.nextDue() {
				m.step(ctx, due)
				t.steps.Add(1)
			}
		}(m)
	}
	wg.Wait()
	t.mu.Lock()
	for _, m := range ready {
		m.due = m.nextDue()
		heap.Push(&t.q, m)
		m.queued = true
	}
	t.mu.Unlock()
}

// Close disconnects every meter.
func (t *Town) Close() {
	for _, m := range t.Meters {
		if m.tr != nil {
			m.tr.Close()
		}
		if m.lk != nil {
			m.lk.Close()
		}
	}
}

func (m *Meter) nextDue() time.Time {
	d := m.next
	if len(m.actions) > 0 && m.actions[0].at.Before(d) {
		d = m.actions[0].at
	}
	return d
}

// At schedules f on the meter's own goroutine at virtual time at.
func (m *Meter) At(at time.Time, f func(ctx context.Context, m *Meter, now time.Time) error) {
	m.actions = append(m.actions, action{at: at, do: f})
	sort.SliceStable(m.actions, func(i, j int) bool { return m.actions[i].at.Before(m.actions[j].at) })
}

func (m *Meter) logf(format string, args ...any) { m.town.cfg.Logf(format, args...) }

// step runs whatever is due at now, in virtual-time order: scheduled actions and the
// report, so a meter that is processed late still does things in the order they happened.
func (m *Meter) step(ctx context.Context, now time.Time) {
	for {
		actDue := len(m.actions) > 0 && !m.actions[0].at.After(now)
		repDue := !now.Before(m.next)
		switch {
		case actDue && (!repDue || !m.actions[0].at.After(m.next)):
			a := m.actions[0]
			m.actions = m.actions[1:]
			if err := a.do(ctx, m, now); err != nil {
				m.logf("%s: action: %v", m.ID, err)
			}
		case repDue:
			m.report(ctx, now)
		default:
			return
		}
	}
}

func (m *Meter) report(ctx context.Context, now time.Time) {
	sched := m.next
	// Skip to the next slot in the future: a meter that fell behind reports once, late.
	for !m.next.After(now) {
		m.next = m.next.Add(m.town.cfg.ReportInterval)
	}
	lag := int64(now.Sub(sched))
	m.town.lagSum.Add(lag)
	for {
		cur := m.town.maxLag.Load()
		if lag <= cur || m.town.maxLag.CompareAndSwap(cur, lag) {
			break
		}
	}
	if time.Duration(lag) > m.town.cfg.ReportInterval {
		m.logf("%s: report %s late (virtual)", m.ID, time.Duration(lag))
	}
	if m.silent {
		return
	}
	m.reportCycle(ctx, now)
}

func (m *Meter) reportCycle(ctx context.Context, now time.Time) {
	unix := uint64(now.Unix())
	if !m.offTo.IsZero() && !now.Before(m.offTo) && m.reboot {
		// Power is back after a flat battery: the device boots from its stored log.
		m.reboot = false
		d, err := m.boot(unix, "power-on")
		if err != nil {
			m.logf("%s: reboot: %v", m.ID, err)
			return
		}
		m.dev = d
		if m.LPWAN {
			m.lp = agent.NewLPMeter(d) // a new session: entries not acknowledged go again
		}
	}
	d := m.dev
	d.Tick(unix)
	d.SetReading(uint64(math.Round(m.Registered(now))), 0)
	if err := d.Check(unix, m.town.cfg.Files, append([]wire.Finding(nil), m.bad...), nil, nil); err != nil {
		m.logf("%s: check: %v", m.ID, err)
	}
	if err := d.Register(unix); err != nil {
		m.logf("%s: register: %v", m.ID, err)
	}
	if !m.offFrom.IsZero() && !now.Before(m.offFrom) && now.Before(m.offTo) {
		return // radio off: the entries wait in the log
	}
	if m.LPWAN {
		m.lpRound(ctx, now)
		return
	}
	var rep []byte
	var err error
	if m.trunc != nil {
		rep, err = m.truncatedReport(unix)
	} else {
		rep, err = d.Report(unix)
	}
	if err != nil {
		m.logf("%s: report: %v", m.ID, err)
		return
	}
	m.history = append(m.history, rep)
	if len(m.history) > 4 {
		m.history = m.history[1:]
	}
	m.town.reports.Add(1)
	ack, err := m.tr.Send(ctx, rep)
	if err != nil {
		m.town.sendErrs.Add(1)
		if ctx.Err() == nil {
			m.logf("%s: send: %v", m.ID, err)
		}
		return
	}
	switch err := d.HandleAck(ack, unix); {
	case err == nil:
		m.town.acked.Add(1)
	case isRejected(err):
		m.town.rejected.Add(1)
	default:
		m.town.ackErrs.Add(1)
		m.logf("%s: ack: %v", m.ID, err)
	}
	m.serviceStarted(now)
}

// serviceStarted schedules the technician's visit once the service token has reached the
// meter (scenario service-visit).
func (m *Meter) serviceStarted(now time.Time) {
	if s := m.awaitSvc; s != nil && m.dev.Status().InService {
		m.awaitSvc = nil
		m.serviceVisit(s, now)
	}
}

// Virtual clock helper for scenarios.
func (t *Town) origin() time.Time { return t.cfg.Clock.Origin() }

type meterHeap []*Meter

func (h meterHeap) Len() int           { return len(h) }
func (h meterHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h meterHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].hidx = i; h[j].hidx = j }
func (h *meterHeap) Push(x any)        { m := x.(*Meter); m.hidx = len(*h); *h = append(*h, m) }
func (h *meterHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	*h = old[:len(old)-1]
	return m
}

// Origin is the start of the town's virtual time: consumption counts from it.
func (t *Town) Origin() time.Time { return t.cfg.Clock.Origin() }

// Span is the virtual time the run covers.
func (t *Town) Span() time.Duration { return t.cfg.Span }
