package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/store/postgres"
	"github.com/fieldseal/fieldseal/store/postgres/pgtest"
	"github.com/fieldseal/fieldseal/store/sqlite"
	"github.com/fieldseal/fieldseal/store/storetest"
)

// BenchmarkCommit measures the server's hot path on each backend in the same run: the
// group commit of verified reports, each a Change that advances a device's anchor
// (compare-and-set on its version) and stores two log entries and an audit record. One
// op is one report; reports/s = 1e9 / (ns/op), also reported as the reports/s metric.
//
//	go test -run '^$' -bench BenchmarkCommit -benchtime 2s ./store/postgres/
//
// batch=1 is a commit per report (no batching); batch=256 is what the server's committer
// writes under load. postgres/2-replicas runs two stores (two pools, as two server
// replicas would) committing disjoint devices into the same database at once.
func BenchmarkCommit(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"sqlite", func(b *testing.B) store.Store {
			s, err := sqlite.Open(filepath.Join(b.TempDir(), "fieldseal.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) store.Store {
			s, err := postgres.Open(context.Background(), pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, be := range backends {
		for _, batch := range []int{1, 256} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				s := be.open(b)
				defer s.Close()
				w := newWriter(b, s, "m", 1024)
				b.ResetTimer()
				start := time.Now()
				w.run(b, b.N, batch)
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
			})
		}
	}
	b.Run("postgres/2-replicas/batch=256", func(b *testing.B) {
		dsn := pgtest.DSN(b)
		var ws []*writer
		for i := range 2 {
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ws = append(ws, newWriter(b, s, fmt.Sprintf("r%d", i), 512))
		}
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for i, w := range ws {
			n := b.N / 2
			if i == 0 {
				n += b.N % 2
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(b, n, 256)
			}()
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
	})
}

// writer plays a server's committer: it holds its devices' rows as the cache would and
// commits one report per device in turn.
type writer struct {
	s    store.Store
	devs []*store.Device
	next int
}

func newWriter(b *testing.B, s store.Store, prefix string, n int) *writer {
	w := &writer{s: s}
	var cs []*store.Change
	for i := range n {
		d := storetest.NewDevice(fmt.Sprintf("%s-%05d", prefix, i))
		cs = append(cs, &store.Change{Device: d, Create: true})
		d.Version = 1
		w.devs = append(w.devs, d)
	}
	for _, err := range s.Commit(context.Background(), cs) {
		if err != nil {
			b.Fatal(err)
		}
	}
	return w
}

var (
	payload = bytes.Repeat([]byte{0xa5}, 24)
	tag     = bytes.Repeat([]byte{0x11}, 16)
	head    = bytes.Repeat([]byte{0x22}, 32)
	ack     = bytes.Repeat([]byte{0x33}, 160)
	receipt = bytes.Repeat([]byte{0x44}, 120)
)

func (w *writer) report(now time.Time) *store.Change {
	d := w.devs[w.next%len(w.devs)].Clone()
	w.next++
	n := d.AnchorN
	d.AnchorN += 2
	d.AnchorHead, d.AnchorKey, d.Receipt, d.LastAck = head, head, receipt, ack
	d.LastRSeq++
	d.LastReportHash, d.Nonce, d.PrevNonce = head, tag, d.Nonce
	d.LastSeen, d.LastDeviceTime, d.State = now, uint64(now.Unix()), store.StateTrusted
	c := &store.Change{Device: d, Audits: []store.Audit{{At: now, Actor: "pipeline", Kind: "report", Dev: d.ID, Reason: "accepted", Detail: `{"entries":2}`}}}
	for k := uint64(1); k <= 2; k++ {
		c.Events = append(c.Events, store.Event{Dev: d.ID, Epoch: d.Epoch, N: n + k, T: uint64(now.Unix()), Type: 2, Payload: payload, Tag: tag, Head: head, Received: now})
	}
	return c
}

func (w *writer) run(b *testing.B, n, batch int) {
	ctx := context.Background()
	cs := make([]*store.Change, 0, batch)
	for done := 0; done < n; {
		cs = cs[:0]
		now := time.Now()
		for len(cs) < batch && done+len(cs) < n {
			cs = append(cs, w.report(now))
		}
		for i, err := range w.s.Commit(ctx, cs) {
			if err != nil {
				b.Error(err)
				return
			}
			d := cs[i].Device
			d.Version++
			w.devs[(w.next-len(cs)+i)%len(w.devs)] = d
		}
		done += len(cs)
	}
}
