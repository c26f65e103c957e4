package server

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/memstore"
)

// loadCounter counts the device rows the cache reads from the store.
type loadCounter struct {
	store.Store
	loads atomic.Int64
}

func (l *loadCounter) GetDevice(ctx context.Context, id string) (*store.Device, error) {
	l.loads.Add(1)
	return l.Store.GetDevice(ctx, id)
}

// testCache returns a device cache of max entries over a memory store holding n devices
// d0…d(n-1).
func testCache(t *testing.T, max, n int) (*deviceCache, *loadCounter, *Server) {
	t.Helper()
	st := &loadCounter{Store: memstore.New()}
	for i := range n {
		d := &store.Device{ID: fmt.Sprintf("d%d", i), Product: "p", Epoch: 1, State: store.StateProvisioned}
		if errs := st.Commit(context.Background(), []*store.Change{{Device: d, Create: true}}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	c := newDeviceCache(st)
	c.max = max
	return c, st, &Server{now: time.Now}
}

// use locks and unlocks a device (one report's worth of cache traffic).
func use(t *testing.T, c *deviceCache, s *Server, id string) {
	t.Helper()
	ds, err := c.lock(context.Background(), id, s)
	if err != nil {
		t.Fatal(err)
	}
	if ds.d == nil || ds.d.ID != id {
		t.Fatalf("lock(%s): %+v", id, ds.d)
	}
	ds.mu.Unlock()
}

// order returns the cached ids from most to least recently used, checking the list's
// links against the map.
func order(t *testing.T, c *deviceCache) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	var prev *devState
	for ds := c.head; ds != nil; ds = ds.next {
		if ds.prev != prev {
			t.Fatalf("%s: prev link broken", ds.id)
		}
		if c.m[ds.id] != ds || !ds.cached {
			t.Fatalf("%s is in the list, not the map", ds.id)
		}
		ids = append(ids, ds.id)
		prev = ds
		if len(ids) > len(c.m) {
			t.Fatal("list longer than the map (cycle?)")
		}
	}
	if c.tail != prev {
		t.Fatal("tail is not the last entry")
	}
	if len(ids) != len(c.m) {
		t.Fatalf("list holds %d entries, map %d", len(ids), len(c.m))
	}
	return ids
}

// Filling past the bound drops the least recently used entries; recently used ones stay
// (and are not read from the store again).
func TestDeviceCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c, st, s := testCache(t, 4, 20)
	for _, id := range []string{"d0", "d1", "d2", "d3"} {
		use(t, c, s, id)
	}
	if got := order(t, c); !slices.Equal(got, []string{"d3", "d2", "d1", "d0"}) {
		t.Fatalf("order %v", got)
	}
	use(t, c, s, "d0") // d0 is now the most recent, d1 the least
	use(t, c, s, "d4")
	if got := order(t, c); !slices.Equal(got, []string{"d4", "d0", "d3", "d2"}) {
		t.Fatalf("after d4: %v (d1 was the least recently used)", got)
	}
	use(t, c, s, "d2")
	use(t, c, s, "d5") // evicts d3
	use(t, c, s, "d6") // evicts d0
	if got := order(t, c); !slices.Equal(got, []string{"d6", "d5", "d2", "d4"}) {
		t.Fatalf("after d5, d6: %v", got)
	}

	// A hot device used between every cold one is never dropped nor reloaded.
	before := st.loads.Load()
	for i := 7; i < 20; i++ {
		use(t, c, s, "d2")
		use(t, c, s, fmt.Sprintf("d%d", i))
		if len(c.m) > c.max {
			t.Fatalf("%d entries, bound %d", len(c.m), c.max)
		}
	}
	if got := order(t, c); !slices.Equal(got, []string{"d19", "d2", "d18", "d17"}) {
		t.Fatalf("after the cold sweep: %v", got)
	}
	if got := st.loads.Load() - before; got != 13 {
		t.Fatalf("%d store reads for 13 cold devices and a hot one", got)
	}

	// Unknown ids (garbage with random kids) are never kept and push nothing out.
	for i := range 50 {
		id := fmt.Sprintf("nope-%d", i)
		ds, err := c.lock(context.Background(), id, s)
		if err != nil || ds.d != nil {
			t.Fatalf("unknown id: %+v %v", ds.d, err)
		}
		ds.mu.Unlock()
		if _, ok := c.m[id]; ok {
			t.Fatal("an unknown id stayed in the cache")
		}
	}
	if got := order(t, c); !slices.Equal(got, []string{"d19", "d2", "d18", "d17"}) {
		t.Fatalf("after unknown ids: %v", got)
	}
}

// An entry in use is never evicted: neither one whose lock is held (a report in flight)
// nor one a lock call has taken from the map and is about to lock.
func TestDeviceCacheKeepsEntriesInUse(t *testing.T) {
	c, st, s := testCache(t, 3, 30)
	held, err := c.lock(context.Background(), "d0", s)
	if err != nil {
		t.Fatal(err)
	}
	use(t, c, s, "d1")
	c.mu.Lock()
	pinned := c.m["d1"]
	pinned.pins.Add(1) // as lock does between finding the entry and locking it
	c.mu.Unlock()
	loads := st.loads.Load()
	for i := 2; i < 30; i++ { // d0 and d1 are the least recently used many times over
		use(t, c, s, fmt.Sprintf("d%d", i))
		if c.m["d0"] != held {
			t.Fatalf("the locked entry was evicted after d%d", i)
		}
		if c.m["d1"] != pinned {
			t.Fatalf("the pinned entry was evicted after d%d", i)
		}
		if len(c.m) > c.max {
			t.Fatalf("%d entries, bound %d", len(c.m), c.max)
		}
		order(t, c)
	}
	held.mu.Unlock()
	pinned.pins.Add(-1)
	if ds, _ := c.lock(context.Background(), "d0", s); ds != held || !ds.loaded {
		t.Fatal("d0 lost its state")
	} else {
		ds.mu.Unlock()
	}
	if st.loads.Load() != loads+28 {
		t.Fatalf("%d store reads, want 28", st.loads.Load()-loads)
	}
	// Idle again: they go like any other.
	for i := 2; i < 6; i++ {
		use(t, c, s, fmt.Sprintf("d%d", i))
	}
	if _, ok := c.m["d0"]; ok {
		t.Fatal("d0 stayed after it went idle and fell behind")
	}
	if _, ok := c.m["d1"]; ok {
		t.Fatal("d1 stayed after it went idle and fell behind")
	}

	// When every entry is in use the cache grows past its bound rather than drop one.
	var hold []*devState
	for i := 10; i < 14; i++ {
		ds, err := c.lock(context.Background(), fmt.Sprintf("d%d", i), s)
		if err != nil {
			t.Fatal(err)
		}
		hold = append(hold, ds)
	}
	if len(c.m) != 4 {
		t.Fatalf("%d entries with 4 in use", len(c.m))
	}
	for _, ds := range hold {
		ds.mu.Unlock()
	}
	use(t, c, s, "d20")
	if got := order(t, c); len(got) != 3 || got[0] != "d20" {
		t.Fatalf("back under the bound: %v", got)
	}
}

// Under concurrent use of more devices than the cache holds, no device is ever held by
// two goroutines at once (an evicted in-use entry would let a reloaded twin in).
func TestDeviceCacheConcurrentExclusive(t *testing.T) {
	const devs = 12
	c, _, s := testCache(t, 3, devs)
	var holders [devs]atomic.Int32
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := range 8 {
		wg.Go(func() {
			for i := range 1500 {
				k := (i*7 + g*5) % devs
				ds, err := c.lock(context.Background(), fmt.Sprintf("d%d", k), s)
				if err != nil || ds.d == nil {
					bad.Add(1)
					return
				}
				if holders[k].Add(1) != 1 {
					bad.Add(1)
				}
				if i%16 == 0 {
					time.Sleep(time.Microsecond)
				}
				holders[k].Add(-1)
				ds.mu.Unlock()
			}
		})
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d times a device was held twice (or failed to load)", bad.Load())
	}
	if got := order(t, c); len(got) > 3 {
		t.Fatalf("%d entries after the run, bound 3", len(got))
	}
}

// A cache hit allocates nothing.
func TestDeviceCacheHitAllocs(t *testing.T) {
	c, _, s := testCache(t, 4, 4)
	for i := range 4 {
		use(t, c, s, fmt.Sprintf("d%d", i))
	}
	ids := []string{"d0", "d1", "d2", "d3"}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		ds, _ := c.lock(context.Background(), ids[i%4], s)
		ds.mu.Unlock()
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per cache hit", allocs)
	}
}

// A product this replica cached with no manifest, registered since on another replica:
// the next lookup reloads at once, rate limit or not, so no report of its devices is
// evaluated against an empty (unchecked) manifest list.
func TestManifestCacheEmptyProductReloadsAtOnce(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	c := newManifestCache(st)
	c.minReload = time.Hour // a rate-limited miss would keep the stale list all test long
	if m, vs, _, err := c.lookup(ctx, "p", 1); err != nil || m != nil || len(vs) != 0 {
		t.Fatalf("nothing registered: %v %v %v", m, vs, err)
	}
	if err := st.PutManifest(ctx, &store.Manifest{Product: "p", Version: 1, Root: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	m, _, cur, err := c.lookup(ctx, "p", 1)
	if err != nil || m == nil || cur != 1 {
		t.Fatalf("registered since: manifest %v, current %d, %v; want version 1 at once", m, cur, err)
	}
	// a product with manifests keeps the rate limit: a version nobody registered costs
	// one reload, not one per report
	if _, _, _, err := c.lookup(ctx, "p", 7); err != nil {
		t.Fatal(err)
	}
	if err := st.PutManifest(ctx, &store.Manifest{Product: "p", Version: 2, Root: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	if m, _, _, _ := c.lookup(ctx, "p", 2); m != nil {
		t.Fatalf("version 2 seen within the rate limit: the limit on a known product is gone")
	}
}
