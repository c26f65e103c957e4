package server

import (
	"context"
	"errors"
	"sync"

	"github.com/fieldseal/fieldseal/store"
)

// deviceCache keeps each device's row in memory behind a per-device lock, so the hot path
// reads nothing from the store and reports of one device are handled one at a time. The
// store stays the authority: every write is compare-and-set on the row version, and a
// lost compare-and-set (another replica) reloads the row.
type deviceCache struct {
	st  store.Store
	mu  sync.Mutex
	m   map[string]*devState
	max int // entries kept; beyond it idle ones are dropped (they reload on their next report)
}

// defaultCacheSize keeps a million-meter fleet's hot set without holding every row.
const defaultCacheSize = 200_000

type devState struct {
	mu     sync.Mutex
	d      *store.Device // nil: not loaded or does not exist
	tokens []store.Token // pending command tokens (nil slice + loaded: none)
	loaded bool
}

func newDeviceCache(st store.Store) *deviceCache {
	return &deviceCache{st: st, m: make(map[string]*devState), max: defaultCacheSize}
}

// lock returns the device's state locked; the caller unlocks ds.mu. ds.d is nil when the
// device does not exist.
func (c *deviceCache) lock(ctx context.Context, id string, s *Server) (*devState, error) {
	c.mu.Lock()
	ds, ok := c.m[id]
	if !ok {
		if len(c.m) >= c.max {
			c.evictLocked()
		}
		ds = &devState{}
		c.m[id] = ds
	}
	c.mu.Unlock()
	ds.mu.Lock()
	if !ds.loaded {
		if err := c.load(ctx, ds, id, s); err != nil {
			ds.mu.Unlock()
			return nil, err
		}
		if ds.d == nil {
			// Never keep entries for unknown ids: garbage with random kids must not grow memory.
			c.mu.Lock()
			if c.m[id] == ds {
				delete(c.m, id)
			}
			c.mu.Unlock()
			ds.loaded = false
		}
	}
	return ds, nil
}

// load fills ds from the store (device row and pending tokens).
func (c *deviceCache) load(ctx context.Context, ds *devState, id string, s *Server) error {
	d, err := c.st.GetDevice(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		ds.d, ds.tokens, ds.loaded = nil, nil, true
		return nil
	}
	if err != nil {
		return err
	}
	toks, err := c.st.PendingTokens(ctx, id, d.Epoch, s.now())
	if err != nil {
		return err
	}
	ds.d, ds.tokens, ds.loaded = d, toks, true
	return nil
}

// evictLocked drops about a tenth of the idle entries (map order is random enough). An
// entry in use is skipped; should a dropped entry and its reloaded twin ever race, the
// store's compare-and-set lets only one of them win.
func (c *deviceCache) evictLocked() {
	n := c.max / 10
	for id, ds := range c.m {
		if n <= 0 {
			return
		}
		if ds.mu.TryLock() {
			delete(c.m, id)
			ds.mu.Unlock()
			n--
		}
	}
}

// forget drops a device from the cache (after a lost compare-and-set).
func (c *deviceCache) forget(ds *devState) { ds.loaded = false }

// manifestCache keeps registered manifests by product and version.
type manifestCache struct {
	st  store.Store
	mu  sync.RWMutex
	m   map[string]map[uint64]*store.Manifest // product → version → manifest
	cur map[string]uint64
}

func newManifestCache(st store.Store) *manifestCache {
	return &manifestCache{st: st, m: map[string]map[uint64]*store.Manifest{}, cur: map[string]uint64{}}
}

// product returns the product's manifests and current version, loading them once.
func (c *manifestCache) product(ctx context.Context, product string) (map[uint64]*store.Manifest, uint64, error) {
	c.mu.RLock()
	vs, ok := c.m[product]
	cur := c.cur[product]
	c.mu.RUnlock()
	if ok {
		return vs, cur, nil
	}
	all, err := c.st.ListManifests(ctx)
	if err != nil {
		return nil, 0, err
	}
	vs = map[uint64]*store.Manifest{}
	cur = 0
	for _, m := range all {
		if m.Product == product {
			vs[m.Version] = m
			cur = max(cur, m.Version)
		}
	}
	c.mu.Lock()
	c.m[product], c.cur[product] = vs, cur
	c.mu.Unlock()
	return vs, cur, nil
}

func (c *manifestCache) invalidate(product string) {
	c.mu.Lock()
	delete(c.m, product)
	delete(c.cur, product)
	c.mu.Unlock()
}
