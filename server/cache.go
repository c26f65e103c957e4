package server

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// deviceCache keeps each device's row in memory behind a per-device lock, so the hot path
// reads nothing from the store and reports of one device are handled one at a time. The
// store stays the authority: every write is compare-and-set on the row version, and a
// lost compare-and-set (another replica) reloads the row.
//
// It holds at most max entries and evicts the least recently used one that is idle. An
// entry is in use from the moment lock finds it (pins, taken under mu) until its holder
// unlocks ds.mu; such an entry is never evicted, so two goroutines never hold different
// states of one device through this cache. The recency order is an intrusive doubly
// linked list through the entries (no allocation per access): lock moves the entry to
// the front under mu, which is a few pointer writes.
type deviceCache struct {
	st  store.Store
	mu  sync.Mutex
	m   map[string]*devState
	max int // entries kept; beyond it the least recently used idle ones are dropped (they reload on their next use)

	head, tail *devState // recency list under mu: head most, tail least recently used
}

// defaultCacheSize keeps a million-meter fleet's hot set without holding every row.
const defaultCacheSize = 200_000

type devState struct {
	mu     sync.Mutex
	d      *store.Device // nil: not loaded or does not exist
	tokens []store.Token // pending command tokens (nil slice + loaded: none)
	loaded bool

	// The stored receipt's n and server time, decoded once per receipt (receiptInfo).
	rcpt         []byte
	rcptN, rcptT uint64

	// The latched report flags the device's stored entries explain (explainedFlags), and
	// when it last raised a replay alert (S12; per server process).
	explained      uint32
	explainedKnown bool
	replayAlert    time.Time

	// Prepared HMAC states for the device's uplink and downlink keys (used under mu only);
	// remade when the row's key differs (re-keying, reload).
	up, down *wire.MACKey

	// Cache bookkeeping. id, prev, next and cached belong to deviceCache.mu; pins counts
	// the goroutines that took the entry from the cache and have not yet locked mu (it is
	// raised only under deviceCache.mu, so an evictor holding that lock sees every one).
	id         string
	prev, next *devState
	cached     bool
	pins       atomic.Int32
}

// uplink returns the prepared MAC state for key, the device's uplink key.
func (ds *devState) uplink(key []byte) *wire.MACKey {
	if !ds.up.Is(key) {
		ds.up = wire.NewMACKey(key)
	}
	return ds.up
}

// downlink returns the prepared MAC state for key, the device's downlink key.
func (ds *devState) downlink(key []byte) *wire.MACKey {
	if !ds.down.Is(key) {
		ds.down = wire.NewMACKey(key)
	}
	return ds.down
}

// receiptInfo returns n and the server time of receipt b (the device's stored receipt,
// signed by this server: the signature is not checked again).
func (ds *devState) receiptInfo(b []byte) (n, t uint64, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if !bytes.Equal(ds.rcpt, b) {
		m, err := wire.ParseSign1(b, wire.MaxMessageSize)
		if err != nil {
			return 0, 0, false
		}
		var r wire.Receipt
		if err := wire.Unmarshal(m.Payload, &r); err != nil {
			return 0, 0, false
		}
		ds.rcpt, ds.rcptN, ds.rcptT = b, r.N, r.Time
	}
	return ds.rcptN, ds.rcptT, true
}

// receiptFor returns d's stored receipt if it is about d's anchor, else nil.
func (ds *devState) receiptFor(d *store.Device) []byte {
	if n, _, ok := ds.receiptInfo(d.Receipt); ok && n == d.AnchorN {
		return d.Receipt
	}
	return nil
}

func newDeviceCache(st store.Store) *deviceCache {
	return &deviceCache{st: st, m: make(map[string]*devState), max: defaultCacheSize}
}

// lock returns the device's state locked; the caller unlocks ds.mu. ds.d is nil when the
// device does not exist.
func (c *deviceCache) lock(ctx context.Context, id string, s *Server) (*devState, error) {
	c.mu.Lock()
	ds := c.m[id]
	if ds == nil {
		ds = &devState{id: id, cached: true}
		c.m[id] = ds
		c.pushFrontLocked(ds)
	} else if c.head != ds {
		c.unlinkLocked(ds)
		c.pushFrontLocked(ds)
	}
	ds.pins.Add(1) // in use from here: not evictable until unlocked
	c.mu.Unlock()
	ds.mu.Lock()
	ds.pins.Add(-1) // ds.mu now marks it in use
	if !ds.loaded {
		if err := c.load(ctx, ds, id, s); err != nil {
			c.dropIdle(ds)
			ds.mu.Unlock()
			return nil, err
		}
		if ds.d == nil {
			// Never keep entries for unknown ids: garbage with random kids must not grow
			// memory. (A goroutine waiting for this entry drops it after its own load.)
			c.dropIdle(ds)
			ds.loaded = false
		} else {
			// Room is made only for devices that exist, so garbage with random kids does
			// not push real devices out either.
			c.mu.Lock()
			if len(c.m) > c.max {
				c.evictLocked()
			}
			c.mu.Unlock()
		}
	}
	return ds, nil
}

// dropIdle removes ds, which the caller holds locked and which holds no device, from the
// cache unless another goroutine is waiting for it.
func (c *deviceCache) dropIdle(ds *devState) {
	c.mu.Lock()
	if ds.pins.Load() == 0 {
		c.removeLocked(ds)
	}
	c.mu.Unlock()
}

// load fills ds from the store (device row and pending tokens).
func (c *deviceCache) load(ctx context.Context, ds *devState, id string, s *Server) error {
	ds.explainedKnown = false // another replica may have stored entries since
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

// evictLocked drops least recently used idle entries until the cache is back within max.
// An entry in use (pinned by a lock call on its way to ds.mu, or ds.mu held) is skipped
// and moved to the front: it is being used right now, and later evictions then do not
// walk over it again. If every entry is in use the cache stays over max for a while
// rather than drop one.
func (c *deviceCache) evictLocked() {
	ds := c.tail
	for n := len(c.m); ds != nil && n > 0 && len(c.m) > c.max; n-- {
		prev := ds.prev
		if ds.pins.Load() == 0 && ds.mu.TryLock() {
			// Idle, and no lock call can reach it any more: we hold c.mu.
			c.removeLocked(ds)
			ds.mu.Unlock()
		} else {
			c.unlinkLocked(ds)
			c.pushFrontLocked(ds)
		}
		ds = prev
	}
}

// removeLocked drops ds from the map and the recency list (if it is still cached).
func (c *deviceCache) removeLocked(ds *devState) {
	if !ds.cached {
		return
	}
	ds.cached = false
	delete(c.m, ds.id)
	c.unlinkLocked(ds)
}

func (c *deviceCache) pushFrontLocked(ds *devState) {
	ds.prev, ds.next = nil, c.head
	if c.head != nil {
		c.head.prev = ds
	} else {
		c.tail = ds
	}
	c.head = ds
}

func (c *deviceCache) unlinkLocked(ds *devState) {
	if ds.prev != nil {
		ds.prev.next = ds.next
	} else if c.head == ds {
		c.head = ds.next
	}
	if ds.next != nil {
		ds.next.prev = ds.prev
	} else if c.tail == ds {
		c.tail = ds.prev
	}
	ds.prev, ds.next = nil, nil
}

// manifestCache keeps registered manifests by product and version. Another replica may
// register a manifest at any time, so a miss (a version the cache does not know, or one
// above the current one) reloads the product from the store before the caller rejects;
// such reloads happen at most once per minReload per product.
type manifestCache struct {
	st        store.Store
	minReload time.Duration
	mu        sync.RWMutex
	m         map[string]map[uint64]*store.Manifest // product → version → manifest
	cur       map[string]uint64
	at        map[string]time.Time // product → when loaded

	reloadMu sync.Mutex           // serialises miss reloads: concurrent misses wait for one
	reloaded map[string]time.Time // product → last miss reload (monotonic wall clock)
}

// defaultManifestReload bounds the store reads misses can cause (per product).
const defaultManifestReload = time.Second

// manifestMaxAge bounds how long a replica may go on without seeing a newer current
// version registered elsewhere (its devices then get their manifest token late).
const manifestMaxAge = time.Minute

func newManifestCache(st store.Store) *manifestCache {
	return &manifestCache{st: st, minReload: defaultManifestReload, m: map[string]map[uint64]*store.Manifest{}, cur: map[string]uint64{},
		at: map[string]time.Time{}, reloaded: map[string]time.Time{}}
}

// product returns the product's manifests and current version, loading them once and
// again when older than manifestMaxAge.
func (c *manifestCache) product(ctx context.Context, product string) (map[uint64]*store.Manifest, uint64, error) {
	vs, cur, at, ok := c.cached(product)
	if !ok {
		return c.load(ctx, product)
	}
	if time.Since(at) >= manifestMaxAge {
		return c.miss(ctx, product)
	}
	return vs, cur, nil
}

func (c *manifestCache) cached(product string) (map[uint64]*store.Manifest, uint64, time.Time, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	vs, ok := c.m[product]
	return vs, c.cur[product], c.at[product], ok
}

func (c *manifestCache) load(ctx context.Context, product string) (map[uint64]*store.Manifest, uint64, error) {
	all, err := c.st.ListManifests(ctx)
	if err != nil {
		return nil, 0, err
	}
	vs := map[uint64]*store.Manifest{}
	cur := uint64(0)
	for _, m := range all {
		if m.Product == product {
			vs[m.Version] = m
			cur = max(cur, m.Version)
		}
	}
	c.mu.Lock()
	c.m[product], c.cur[product], c.at[product] = vs, cur, time.Now()
	c.mu.Unlock()
	return vs, cur, nil
}

// miss is called when the cached manifests of product do not know what a caller looks
// for. It reloads them from the store unless a miss reload of product ran less than
// minReload ago (then it returns the cached ones, which that reload refreshed). A product
// cached with no manifest at all always reloads: a device is provisioned only for a
// product with a manifest, so an empty list is a stale one (registered on another replica
// since), and taking it would let a report through with no manifest check.
func (c *manifestCache) miss(ctx context.Context, product string) (map[uint64]*store.Manifest, uint64, error) {
	c.reloadMu.Lock()
	defer c.reloadMu.Unlock()
	if last, ok := c.reloaded[product]; ok && time.Since(last) < c.minReload {
		if vs, cur, _, ok := c.cached(product); ok && len(vs) > 0 {
			return vs, cur, nil
		}
	}
	c.reloaded[product] = time.Now()
	return c.load(ctx, product)
}

// lookup returns the manifest of product at version, and the product's manifests and
// current version; a version the cache does not know, or one above the current one,
// reloads first (rate-limited, see miss).
func (c *manifestCache) lookup(ctx context.Context, product string, version uint64) (*store.Manifest, map[uint64]*store.Manifest, uint64, error) {
	vs, cur, err := c.product(ctx, product)
	if err != nil {
		return nil, nil, 0, err
	}
	if m, ok := vs[version]; ok && version <= cur {
		return m, vs, cur, nil
	}
	if vs, cur, err = c.miss(ctx, product); err != nil {
		return nil, nil, 0, err
	}
	return vs[version], vs, cur, nil
}

func (c *manifestCache) invalidate(product string) {
	c.mu.Lock()
	delete(c.m, product)
	delete(c.cur, product)
	delete(c.at, product)
	c.mu.Unlock()
}
