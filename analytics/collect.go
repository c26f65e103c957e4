package analytics

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// Collector gathers the verified register entries of a set of devices from the server's
// store, incrementally: each Update reads only entries after the last one seen.
type Collector struct {
	st     store.Store
	mu     sync.Mutex
	series map[string]Series
	after  map[string]uint64
}

// NewCollector reads from st.
func NewCollector(st store.Store) *Collector {
	return &Collector{st: st, series: map[string]Series{}, after: map[string]uint64{}}
}

// Update reads the new register entries of devs.
func (c *Collector) Update(ctx context.Context, devs []string) error {
	for _, dev := range devs {
		if err := c.update(ctx, dev); err != nil {
			return err
		}
	}
	return nil
}

func (c *Collector) update(ctx context.Context, dev string) error {
	c.mu.Lock()
	after := c.after[dev]
	c.mu.Unlock()
	for {
		evs, err := c.st.ListEvents(ctx, store.Page{Dev: dev, AfterN: after, Limit: 1000})
		if err != nil {
			return err
		}
		var add Series
		for _, e := range evs {
			if e.N > after {
				after = e.N
			}
			if e.Type != wire.EntryRegister {
				continue
			}
			v, err := wire.DecodePayload(e.Type, e.Payload)
			if err != nil {
				continue
			}
			add = append(add, Read{T: time.Unix(int64(e.T), 0).UTC(), Litres: float64(v.(*wire.RegisterPayload).Litres)})
		}
		c.mu.Lock()
		s := c.series[dev]
		for _, r := range add {
			// Device time is untrusted: keep the series monotonic in time and register.
			if n := len(s); n > 0 && (!r.T.After(s[n-1].T) || r.Litres < s[n-1].Litres) {
				continue
			}
			s = append(s, r)
		}
		c.series[dev] = s
		c.after[dev] = after
		c.mu.Unlock()
		if len(evs) < 1000 {
			return nil
		}
	}
}

// Series returns what has been collected for dev.
func (c *Collector) Series(dev string) Series {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.series[dev]
}

// Data assembles the collected series of devs as analytics Data (registers only).
func (c *Collector) Data(devs []string) Data {
	d := Data{Registers: map[string]Series{}}
	for _, id := range devs {
		d.Registers[id] = c.Series(id)
	}
	return d
}

// Forget drops every series' reads before t but the last one, so totals over periods that
// start at t or later still interpolate at their start: a long-running server keeps only
// the history it reads.
func (c *Collector) Forget(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for dev, s := range c.series {
		i := sort.Search(len(s), func(i int) bool { return !s[i].T.Before(t) })
		if i > 1 {
			c.series[dev] = append(Series(nil), s[i-1:]...)
		}
	}
}
