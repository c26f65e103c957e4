package postgres_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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
//
// The server/ variants are the server's routine report instead: one log entry, no audit
// record, fresh values in the hot columns only (anchor, nonce, ack, report hash, times;
// a new receipt every fourth report), committed with and without store.Change.Was, so
// the ratio of hint=on to hint=off is what writing only the changed columns saves.
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
			cfg, err := pgx.ParseConfig(pgtest.DSN(b))
			if err != nil {
				b.Fatal(err)
			}
			dial := cfg.DialFunc
			cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{c}, nil
			}
			s, err := postgres.OpenConfig(context.Background(), cfg)
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
				measure(b, func() { w.run(b, b.N, batch) })
			})
		}
		for _, batch := range []int{1, 256} {
			for _, hint := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/server/batch=%d/hint=%s", be.name, batch, map[bool]string{false: "off", true: "on"}[hint]), func(b *testing.B) {
					s := be.open(b)
					defer s.Close()
					w := newWriter(b, s, "m", 1024)
					w.server, w.hint = true, hint
					b.ResetTimer()
					measure(b, func() { w.run(b, b.N, batch) })
				})
			}
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
		measure(b, func() {
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
		})
	})
}

// measure runs b.N reports and reports, besides ns/op, reports/s and the CPU time this
// process spent per report (user + system: the store's own work, fsync waits and the
// PostgreSQL server excluded), which a loaded machine disturbs far less than the time;
// for PostgreSQL through a countingConn also the bytes sent to the server per report.
func measure(b *testing.B, run func()) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, c0, s0 := time.Now(), cpu(), sent.Load()
	run()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reports/s")
	b.ReportMetric(float64((cpu()-c0).Nanoseconds())/float64(b.N), "cpu-ns/report")
	if n := sent.Load() - s0; n > 0 {
		b.ReportMetric(float64(n)/float64(b.N), "sent-B/report")
	}
}

// sent counts the bytes written by countingConns.
var sent atomic.Int64

type countingConn struct{ net.Conn }

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	sent.Add(int64(n))
	return n, err
}

// writer plays a server's committer: it holds its devices' rows as the cache would and
// commits one report per device in turn.
type writer struct {
	s    store.Store
	devs []*store.Device
	next int

	server bool   // reports as the server's routine ones (serverReport)
	hint   bool   // with store.Change.Was
	seq    uint64 // reports made, for fresh values
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

// fresh returns a new n-byte value, unique to seq.
func fresh(n int, seq uint64) []byte {
	b := make([]byte, n)
	copy(b, ack)
	binary.LittleEndian.PutUint64(b, seq)
	return b
}

// serverReport is a routine report as the server commits it: a new row differing from
// the cached one in the hot columns only, and the one log entry it carried.
func (w *writer) serverReport(now time.Time) *store.Change {
	was := w.devs[w.next%len(w.devs)]
	w.next++
	w.seq++
	d := was.Clone()
	d.AnchorN++
	d.AnchorHead, d.AnchorKey = fresh(32, w.seq), fresh(32, w.seq+1<<62)
	if w.seq%4 == 0 {
		d.Receipt = fresh(len(receipt), w.seq)
	}
	d.LastRSeq++
	d.LastReportHash, d.LastAck = fresh(32, w.seq+2<<62), fresh(len(ack), w.seq+3<<62)
	d.PrevNonce, d.Nonce = d.Nonce, fresh(16, w.seq)
	d.LastSeen, d.LastDeviceTime = now, uint64(now.Unix())
	c := &store.Change{Device: d,
		Events: []store.Event{{Dev: d.ID, Epoch: d.Epoch, N: d.AnchorN, T: uint64(now.Unix()), Type: 2, Payload: payload, Tag: tag, Head: d.AnchorHead, Received: now}}}
	if w.hint {
		c.Was = was
	}
	return c
}

func (w *writer) report(now time.Time) *store.Change {
	if w.server {
		return w.serverReport(now)
	}
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
