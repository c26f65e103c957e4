// Package memstore is an in-memory store.Store: nothing survives the process. It exists
// for fuzzing and for tests that need the server's behaviour without a database (fuzzing
// an instrumented SQLite is orders of magnitude slower), and it passes the same
// conformance suite as the durable backends.
package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// Store is the in-memory store.
type Store struct {
	mu        sync.Mutex
	devices   map[string]*store.Device
	manifests map[string]map[uint64]*store.Manifest
	events    map[string][]store.Event // dev → sorted by epoch, n
	audit     []store.Audit
	alerts    []store.Alert
	tokens    map[string]*store.Token
	visits    map[string]*store.Visit
	api       map[string]store.APIToken // hash → token
	districts map[string]store.District
	members   map[string]map[string]string // district → dev → role
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{devices: map[string]*store.Device{}, manifests: map[string]map[uint64]*store.Manifest{}, events: map[string][]store.Event{},
		tokens: map[string]*store.Token{}, visits: map[string]*store.Visit{}, api: map[string]store.APIToken{},
		districts: map[string]store.District{}, members: map[string]map[string]string{}}
}

func (s *Store) Close() error { return nil }

func (s *Store) Commit(ctx context.Context, changes []*store.Change) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(changes))
	for i, c := range changes {
		errs[i] = s.apply(c)
	}
	return errs
}

func (s *Store) hasEvent(e store.Event) bool {
	for _, x := range s.events[e.Dev] {
		if x.Epoch == e.Epoch && x.N == e.N {
			return true
		}
	}
	return false
}

// apply checks everything first, then writes: a change is all or nothing.
func (s *Store) apply(c *store.Change) error {
	if d := c.Device; d != nil {
		cur, ok := s.devices[d.ID]
		if c.Create {
			if ok && cur.Epoch >= d.Epoch {
				return fmt.Errorf("%w: device %s exists with epoch %d", store.ErrConflict, d.ID, cur.Epoch)
			}
		} else if !ok || cur.Version != d.Version || cur.Epoch != d.Epoch {
			return fmt.Errorf("%w: device %s changed since version %d (epoch %d)", store.ErrConflict, d.ID, d.Version, d.Epoch)
		}
		if o := s.byEUI(d.DevEUI); o != nil && o.ID != d.ID {
			// the durable backends' unique index
			return fmt.Errorf("%w: DevEUI %s is device %s's", store.ErrConflict, d.DevEUI, o.ID)
		}
		if !c.Create && c.Was != nil {
			// The durable backends may write only the fields that differ from Was, so a
			// Was that is not the stored row would lose writes there: report it here.
			if f := cur.Diff(c.Was); f != 0 {
				return fmt.Errorf("memstore: device %s: Change.Was is not the stored row at version %d (fields %#x differ): a caller's bug", d.ID, d.Version, uint32(f))
			}
		}
	}
	seen := map[string]bool{}
	for _, e := range c.Events {
		k := fmt.Sprint(e.Dev, "/", e.Epoch, "/", e.N)
		if s.hasEvent(e) || seen[k] {
			return fmt.Errorf("%w: event %s", store.ErrConflict, k)
		}
		seen[k] = true
	}
	for _, t := range c.Tokens {
		if _, ok := s.tokens[string(t.ID)]; ok {
			return fmt.Errorf("%w: token exists", store.ErrConflict)
		}
	}
	for _, id := range c.UsedTokens {
		if t, ok := s.tokens[string(id)]; !ok || t.Used {
			return fmt.Errorf("%w: token %x already used or unknown", store.ErrConflict, id)
		}
	}
	for _, v := range c.Visits {
		if _, ok := s.visits[v.ID]; ok {
			return fmt.Errorf("%w: visit exists", store.ErrConflict)
		}
	}
	for _, v := range c.CloseVisits {
		if x, ok := s.visits[v.ID]; !ok || !x.Closed.IsZero() {
			return fmt.Errorf("%w: visit %s already closed or unknown", store.ErrConflict, v.ID)
		}
	}
	if d := c.Device; d != nil {
		n := d.Clone()
		if c.Create {
			n.Version = 1
		} else {
			n.Version = d.Version + 1
		}
		s.devices[d.ID] = n
	}
	for _, e := range c.Events {
		e.TypeName = wire.EntryName(e.Type)
		list := append(s.events[e.Dev], e)
		sort.Slice(list, func(i, j int) bool {
			if list[i].Epoch != list[j].Epoch {
				return list[i].Epoch < list[j].Epoch
			}
			return list[i].N < list[j].N
		})
		s.events[e.Dev] = list
	}
	for _, a := range c.Audits {
		s.addAudit(a)
	}
	for _, a := range c.Alerts {
		a.ID = int64(len(s.alerts) + 1)
		s.alerts = append(s.alerts, a)
	}
	for _, t := range c.Tokens {
		t := t
		s.tokens[string(t.ID)] = &t
	}
	for _, id := range c.UsedTokens {
		t := s.tokens[string(id)]
		t.Used, t.UsedAt = true, time.Now().UTC()
	}
	for _, v := range c.Visits {
		v := v
		s.visits[v.ID] = &v
	}
	for _, v := range c.CloseVisits {
		x := s.visits[v.ID]
		x.Closed, x.SealNumber, x.Result = v.Closed, v.SealNumber, v.Result
	}
	return nil
}

func (s *Store) addAudit(a store.Audit) {
	a.ID = int64(len(s.audit) + 1)
	s.audit = append(s.audit, a)
}

func (s *Store) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return nil, fmt.Errorf("%w: device %q", store.ErrNotFound, id)
	}
	return d.Clone(), nil
}

func (s *Store) DeviceByEUI(ctx context.Context, eui string) (*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.byEUI(eui); d != nil {
		return d.Clone(), nil
	}
	return nil, fmt.Errorf("%w: DevEUI %q", store.ErrNotFound, eui)
}

// byEUI is the device with DevEUI eui, or nil (a scan: memstore holds test-sized fleets).
func (s *Store) byEUI(eui string) *store.Device {
	if eui == "" {
		return nil
	}
	for _, d := range s.devices {
		if d.DevEUI == eui {
			return d
		}
	}
	return nil
}

func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Device
	for _, d := range s.devices {
		if (f.State == "" || d.State == f.State) && (f.Product == "" || d.Product == f.Product) && f.Overdue(d) {
			out = append(out, d.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *Store) CountDevices(ctx context.Context) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, d := range s.devices {
		out[d.State]++
	}
	return out, nil
}

func (s *Store) PutManifest(ctx context.Context, m *store.Manifest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.manifests[m.Product]
	if vs == nil {
		vs = map[uint64]*store.Manifest{}
		s.manifests[m.Product] = vs
	}
	if _, ok := vs[m.Version]; ok {
		return fmt.Errorf("%w: manifest %s version %d exists", store.ErrConflict, m.Product, m.Version)
	}
	c := *m
	vs[m.Version] = &c
	return nil
}

func (s *Store) GetManifest(ctx context.Context, product string, version uint64) (*store.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.manifests[product][version]
	if !ok {
		return nil, fmt.Errorf("%w: manifest %s version %d", store.ErrNotFound, product, version)
	}
	c := *m
	return &c, nil
}

func (s *Store) CurrentManifest(ctx context.Context, product string) (*store.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *store.Manifest
	for _, m := range s.manifests[product] {
		if best == nil || m.Version > best.Version {
			best = m
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: no manifest for product %s", store.ErrNotFound, product)
	}
	c := *best
	return &c, nil
}

func (s *Store) ListManifests(ctx context.Context) ([]*store.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*store.Manifest
	for _, vs := range s.manifests {
		for _, m := range vs {
			c := *m
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Product != out[j].Product {
			return out[i].Product < out[j].Product
		}
		return out[i].Version < out[j].Version
	})
	return out, nil
}

func limit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}

func (s *Store) ListEvents(ctx context.Context, p store.Page) ([]store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Event
	for _, e := range s.events[p.Dev] {
		if e.N > p.AfterN && len(out) < limit(p.Limit) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *Store) EventHead(ctx context.Context, dev string, epoch uint32, n uint64) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events[dev] {
		if e.Epoch == epoch && e.N == n {
			return bytes.Clone(e.Head), nil
		}
	}
	return nil, fmt.Errorf("%w: event %s/%d/%d", store.ErrNotFound, dev, epoch, n)
}

func (s *Store) AddAudit(ctx context.Context, a store.Audit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addAudit(a)
	return nil
}

func (s *Store) ListAudit(ctx context.Context, p store.Page) ([]store.Audit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Audit
	for i := len(s.audit) - 1; i >= 0 && len(out) < limit(p.Limit); i-- {
		a := s.audit[i]
		if (p.Dev == "" || a.Dev == p.Dev) && (p.BeforeID <= 0 || a.ID < p.BeforeID) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Store) ListAlerts(ctx context.Context, p store.Page, unackedOnly bool) ([]store.Alert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Alert
	for i := len(s.alerts) - 1; i >= 0 && len(out) < limit(p.Limit); i-- {
		a := s.alerts[i]
		if (p.Dev == "" || a.Dev == p.Dev) && (p.BeforeID <= 0 || a.ID < p.BeforeID) && (!unackedOnly || a.AckedAt.IsZero()) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *Store) AckAlert(ctx context.Context, id int64, by string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > int64(len(s.alerts)) {
		return fmt.Errorf("%w: alert %d", store.ErrNotFound, id)
	}
	a := &s.alerts[id-1]
	if !a.AckedAt.IsZero() {
		return fmt.Errorf("%w: alert %d already acknowledged", store.ErrConflict, id)
	}
	a.AckedAt, a.AckedBy = at, by
	return nil
}

func (s *Store) GetToken(ctx context.Context, id []byte) (*store.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[string(id)]
	if !ok {
		return nil, fmt.Errorf("%w: token %x", store.ErrNotFound, id)
	}
	c := *t
	return &c, nil
}

func (s *Store) PendingTokens(ctx context.Context, dev string, epoch uint32, now time.Time) ([]store.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Token
	for _, t := range s.tokens {
		if t.Dev == dev && t.Epoch == epoch && !t.Used && t.Expires.After(now) {
			out = append(out, *t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Issued.Before(out[j].Issued) })
	return out, nil
}

func (s *Store) GetVisit(ctx context.Context, id string) (*store.Visit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.visits[id]
	if !ok {
		return nil, fmt.Errorf("%w: visit %s", store.ErrNotFound, id)
	}
	c := *v
	return &c, nil
}

func (s *Store) ListVisits(ctx context.Context, dev string) ([]store.Visit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Visit
	for _, v := range s.visits {
		if dev == "" || v.Dev == dev {
			out = append(out, *v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Opened.After(out[j].Opened) })
	return out, nil
}

func (s *Store) PutAPIToken(ctx context.Context, t store.APIToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.api {
		if x.Name == t.Name {
			return fmt.Errorf("%w: API token %q exists", store.ErrConflict, t.Name)
		}
	}
	if _, ok := s.api[string(t.Hash)]; ok {
		return fmt.Errorf("%w: API token exists", store.ErrConflict)
	}
	s.api[string(t.Hash)] = t
	return nil
}

func (s *Store) GetAPIToken(ctx context.Context, hash []byte) (*store.APIToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.api[string(hash)]
	if !ok {
		return nil, fmt.Errorf("%w: API token", store.ErrNotFound)
	}
	return &t, nil
}

func (s *Store) ListAPITokens(ctx context.Context) ([]store.APIToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.APIToken
	for _, t := range s.api {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Store) DeleteAPIToken(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, t := range s.api {
		if t.Name == name {
			delete(s.api, h)
			return nil
		}
	}
	return fmt.Errorf("%w: API token %q", store.ErrNotFound, name)
}

func (s *Store) QueryDevices(ctx context.Context, q store.DeviceQuery) ([]*store.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var visits []store.Visit
	if q.Search != "" {
		for _, v := range s.visits {
			visits = append(visits, *v)
		}
	}
	var out []*store.Device
	for _, d := range s.devices {
		if _, member := s.members[q.District][d.ID]; q.District != "" && !member {
			continue
		}
		if q.Filters(d) && q.SearchMatches(d, visits) && q.IsAfter(store.CursorOf(d)) {
			out = append(out, d.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := store.CursorOf(out[i]), store.CursorOf(out[j])
		if q.Desc {
			return q.Less(b, a)
		}
		return q.Less(a, b)
	})
	if n := q.QueryLimit(); len(out) > n {
		out = out[:n]
	}
	return out, nil
}
