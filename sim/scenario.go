package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/wire"
)

// Scenario is one attack (or one honest event that must not alarm) injected into a meter.
type Scenario struct {
	Name     string // stable key, e.g. "code-edit-restore"
	Title    string // what happens, for people
	Threat   string // row of the threat model it exercises
	Device   string
	District int
	At       time.Time // planned injection (virtual)
	// ExpectAlarm is false for the one scenario that must stay quiet: a cover opened
	// during an authorised service visit.
	ExpectAlarm bool
	// Analytics says detection comes from the water balance, not from the device's evidence.
	Analytics bool

	mu       sync.Mutex
	injected time.Time
	note     string
}

// Injected is when the scenario actually happened (zero before).
func (s *Scenario) Injected() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.injected
}

// Note is what the injection did, in a few words.
func (s *Scenario) Note() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.note
}

// Mark records the injection (the first call sets the time): for scenarios driven outside
// the town, such as those on MicroPython meters.
func (s *Scenario) Mark(t time.Time, note string) { s.mark(t, note) }

func (s *Scenario) mark(t time.Time, note string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.injected.IsZero() {
		s.injected = t
	}
	if note != "" {
		s.note = note
	}
}

type scenarioDef struct {
	name, title, threat string
	at                  float64 // fraction of the span
	alarm, analytics    bool
	inject              func(t *Town, s *Scenario, m *Meter)
}

var scenarioDefs = []scenarioDef{
	{"meter-bypass", "pipe bypass: the meter under-registers, the district inlet does not", "balance", 0.35, true, true, injectBypass},
	{"code-edit-restore", "renter edits a code file, then restores it before the next report", "D1, D2", 0.40, true, false, injectEditRestore},
	{"cover-open", "cover opened outside any service visit", "D8", 0.45, true, false, injectCover},
	{"service-visit", "cover opened during an authorised service visit (must not alarm)", "service", 0.50, false, false, injectService},
	{"replayed-report", "an eavesdropper replays an old report", "S1", 0.55, true, false, injectReplay},
	{"magnet", "a magnet held against the meter", "magnet", 0.60, true, false, injectMagnet},
	{"log-truncation", "cover opened, then the log's tail cut off with the device's own keys", "D11, D12", 0.65, true, false, injectTruncation},
	{"silent-meter", "antenna cut: the meter stops reporting", "S4", 0.70, true, false, injectSilent},
}

// fullProtocol are the scenarios that need a meter on the full protocol: the eavesdropper
// replays a captured COSE report, the truncation attacker re-seals one. They skip the
// LPWAN district (its frames have their own replay and truncation rules, THREAT_MODEL S14,
// tested in the server's LPWAN tests).
var fullProtocol = map[string]bool{"replayed-report": true, "log-truncation": true}

// Names lists every scenario the town can inject, in injection order.
func Names() []string {
	var n []string
	for _, d := range scenarioDefs {
		n = append(n, d.name)
	}
	return n
}

// placeScenarios picks a victim per scenario (each in a different district where the town
// allows) and schedules the injection.
func (t *Town) placeScenarios() {
	want := map[string]bool{}
	all := t.cfg.Scenarios == nil
	for _, n := range t.cfg.Scenarios {
		want[n] = true
	}
	used := map[*Meter]bool{}
	k := 0
	for _, def := range scenarioDefs {
		if !all && !want[def.name] {
			continue
		}
		d := t.Districts[k%len(t.Districts)]
		k++
		if fullProtocol[def.name] && d.Index == t.cfg.lpwanDistrict() {
			d = t.Districts[k%len(t.Districts)]
			k++
		}
		if len(d.Meters) == 0 {
			continue
		}
		// A victim in the district chosen by the seed, avoiding earlier victims; the bypass
		// victim must be a typical household (a business's swings would blur the balance).
		start := int(unit(t.cfg.Seed, uint64(k), 1<<47) * float64(len(d.Meters)))
		var m *Meter
		for j := 0; j < len(d.Meters); j++ {
			c := d.Meters[(start+j)%len(d.Meters)]
			if used[c] || (def.analytics && c.cons.PerDay > 600) {
				continue
			}
			m = c
			break
		}
		if m == nil {
			continue
		}
		used[m] = true
		s := &Scenario{Name: def.name, Title: def.title, Threat: def.threat, Device: m.ID, District: d.Index,
			At: t.origin().Add(time.Duration(def.at * float64(t.cfg.Span))), ExpectAlarm: def.alarm, Analytics: def.analytics}
		m.scenario = s
		t.scen = append(t.scen, s)
		def.inject(t, s, m)
	}
}

func injectBypass(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(_ context.Context, m *Meter, now time.Time) error {
		m.bypassAt, m.bypassFrac = now, 0.15
		s.mark(now, "85% of the flow now bypasses the meter")
		return nil
	})
}

func injectEditRestore(t *Town, s *Scenario, m *Meter) {
	// Right after a report, so that the edit and the restore both fall between two reports:
	// the server never sees a mismatching measurement, only the log entry (D2).
	at := m.slotAfter(s.At).Add(time.Minute)
	s.At = at
	m.At(at, func(_ context.Context, m *Meter, now time.Time) error {
		m.bad = []wire.Finding{{Path: "app/meter.mpy", Kind: wire.KindModified}}
		s.mark(now, "app/meter.mpy modified")
		return m.dev.Check(uint64(now.Unix()), t.cfg.Files, m.bad, nil, nil)
	})
	m.At(at.Add(t.cfg.ReportInterval/2), func(_ context.Context, m *Meter, now time.Time) error {
		m.bad = nil
		s.mark(now, "app/meter.mpy modified, restored before the next report")
		return m.dev.Check(uint64(now.Unix()), t.cfg.Files, nil, nil, nil)
	})
}

func injectCover(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(_ context.Context, m *Meter, now time.Time) error {
		s.mark(now, "cover opened")
		return m.dev.Cover(uint64(now.Unix()), true, wire.CoverSourceIRQ)
	})
	m.At(s.At.Add(10*time.Minute), func(_ context.Context, m *Meter, now time.Time) error {
		s.mark(now, "cover opened, closed after 10 min")
		return m.dev.Cover(uint64(now.Unix()), false, wire.CoverSourceIRQ)
	})
}

func injectService(t *Town, s *Scenario, m *Meter) {
	// The operator books a visit; the token reaches the meter with its next ack; the
	// technician opens the cover once the meter is in service mode.
	book := s.At.Add(-2 * t.cfg.ReportInterval)
	m.At(book, func(ctx context.Context, m *Meter, now time.Time) error {
		m.awaitSvc = s
		return t.cfg.Service(ctx, m.ID, 2*time.Hour)
	})
}

func (m *Meter) serviceVisit(s *Scenario, now time.Time) {
	open := now.Add(5 * time.Minute)
	if open.Before(s.At) {
		open = s.At
	}
	m.At(open, func(_ context.Context, m *Meter, now time.Time) error {
		s.mark(now, "technician opened the cover with a service token")
		return m.dev.Cover(uint64(now.Unix()), true, wire.CoverSourceIRQ)
	})
	m.At(open.Add(20*time.Minute), func(_ context.Context, m *Meter, now time.Time) error {
		return m.dev.Cover(uint64(now.Unix()), false, wire.CoverSourceIRQ)
	})
}

func injectReplay(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(ctx context.Context, m *Meter, now time.Time) error {
		if len(m.history) < 3 {
			return errors.New("replay: fewer than 3 reports captured")
		}
		old := m.history[len(m.history)-3]
		s.mark(now, "report from two intervals ago sent again")
		return t.cfg.Replay(ctx, old)
	})
}

func injectMagnet(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(_ context.Context, m *Meter, now time.Time) error {
		s.mark(now, "magnetic field detected")
		return m.dev.Magnet(uint64(now.Unix()), 850)
	})
}

func injectTruncation(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(_ context.Context, m *Meter, now time.Time) error {
		seg := m.dev.Segment()
		m.trunc = &truncation{n: seg.N, head: seg.Head}
		s.mark(now, "cover opened; attacker reads the keys and cuts the log back to entry "+fmt.Sprint(seg.N))
		return m.dev.Cover(uint64(now.Unix()), true, wire.CoverSourceIRQ)
	})
}

// truncatedReport is what the attacker sends once they hold the device's current keys: a
// correctly MAC'd report (they have R) whose log stops before the cover-open entry. They
// cannot produce the seal of the shorter log: its key was erased when the entry was written.
func (m *Meter) truncatedReport(now uint64) ([]byte, error) {
	honest, err := m.dev.Report(now)
	if err != nil {
		return nil, err
	}
	mc, err := wire.ParseReport(honest)
	if err != nil {
		return nil, err
	}
	r, err := wire.OpenReport(mc, m.b.UplinkKey)
	if err != nil {
		return nil, err
	}
	var keep []wire.Entry
	for _, e := range r.Log.Entries {
		if e.N <= m.trunc.n {
			keep = append(keep, e)
		}
	}
	if keep == nil {
		keep = []wire.Entry{}
	}
	r.Log.Entries, r.Log.N, r.Log.Head = keep, m.trunc.n, m.trunc.head
	if len(keep) == 0 {
		r.Log.First = m.trunc.n + 1
	}
	r.State = 0 // and hide the flags
	return wire.SealReport(r, m.b.UplinkKey)
}

func injectSilent(t *Town, s *Scenario, m *Meter) {
	m.At(s.At, func(_ context.Context, m *Meter, now time.Time) error {
		m.silent = true
		s.mark(now, "no more reports")
		return nil
	})
}

// slotAfter is the meter's first report time after t.
func (m *Meter) slotAfter(t time.Time) time.Time {
	iv := m.town.cfg.ReportInterval
	o := m.town.origin().Add(m.phase)
	if t.Before(o) {
		return o
	}
	k := t.Sub(o) / iv
	return o.Add((k + 1) * iv)
}

func isRejected(err error) bool { return errors.Is(err, agent.ErrRejected) }
