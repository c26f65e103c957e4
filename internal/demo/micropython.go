package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/device/micropython/mpharness"
	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/sim"
	"github.com/fieldseal/fieldseal/wire"
)

// mpMeter is a meter running the real MicroPython guard (frozen manifest, verifying import
// VFS, its own FS-chain log) in the WebAssembly interpreter under Node.js, driven on the
// demo's virtual clock: the same reports, acks and tokens as the Go meters, over HTTP.
type mpMeter struct {
	id   string
	b    *wire.Bundle
	d    *mpharness.Device
	tr   agent.Transport
	now  atomic.Int64 // device clock, unix seconds; read by the watcher
	scen *sim.Scenario
}

// startMicroPython provisions n MicroPython meters on the server and boots them with the
// sealed example app. The last one (when n ≥ 2) is the victim of an edit-and-restore.
func startMicroPython(ctx context.Context, n int, dist string, provision func(context.Context, string) (*wire.Bundle, error),
	dial func(context.Context, *wire.Bundle) (agent.Transport, error), origin time.Time, work string) ([]*mpMeter, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node not found on PATH")
	}
	if _, err := os.Stat(filepath.Join(dist, manifest.FrozenFile)); err != nil {
		return nil, errors.New("the example app was not built with mpy-cross")
	}
	var out []*mpMeter
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("mp-%03d", i)
		b, err := provision(ctx, id)
		if err != nil {
			return out, err
		}
		root := filepath.Join(work, id)
		ext := filepath.Join(root, "ext")
		if err := os.CopyFS(ext, os.DirFS(filepath.Join(dist, manifest.AppDir))); err != nil {
			return out, err
		}
		if err := mpharness.Provision(filepath.Join(root, "int"), *b); err != nil {
			return out, err
		}
		d, err := mpharness.Start(ctx, mpharness.Options{Ext: ext, Int: filepath.Join(root, "int"), Manifest: filepath.Join(dist, manifest.FrozenFile),
			Now: origin.Unix(), Node: node})
		if err != nil {
			return out, err
		}
		m := &mpMeter{id: id, b: b, d: d}
		m.now.Store(origin.Unix())
		out = append(out, m)
		if _, err := d.Boot(); err != nil {
			return out, fmt.Errorf("%s: boot: %w", id, err)
		}
		if m.tr, err = dial(ctx, b); err != nil {
			return out, err
		}
	}
	return out, nil
}

func closeMicroPython(ms []*mpMeter) {
	for _, m := range ms {
		if m.tr != nil {
			m.tr.Close()
		}
		m.d.Close()
	}
}

// mpScenario makes the last MicroPython meter the victim of an edit-and-restore at the
// given virtual time: a sealed .mpy replaced, a scheduled check, the original put back.
func mpScenario(ms []*mpMeter, at time.Time) *sim.Scenario {
	if len(ms) < 2 {
		return nil
	}
	m := ms[len(ms)-1]
	m.scen = &sim.Scenario{Name: "mp-code-edit-restore", Title: "edit and restore on a meter running the MicroPython guard",
		Threat: "D1, D2", Device: m.id, At: at, ExpectAlarm: true}
	return m.scen
}

// stepMicroPython advances every MicroPython meter to now, in parallel, and returns when
// all are there: the guard's own scheduler runs (checks and reports at its policy's
// intervals); each report goes to the server and the ack comes back.
func stepMicroPython(ctx context.Context, ms []*mpMeter, now time.Time, logf func(string, ...any)) {
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Add(1)
		go func(m *mpMeter) {
			defer wg.Done()
			if err := m.step(ctx, now); err != nil && ctx.Err() == nil {
				logf("%s: %v", m.id, err)
			}
		}(m)
	}
	wg.Wait()
}

func (m *mpMeter) step(ctx context.Context, now time.Time) error {
	if s := m.scen; s != nil && s.Injected().IsZero() && !now.Before(s.At) {
		// The renter's edit: replace a sealed file, the scheduled check runs, and the
		// original goes back before the next report.
		if err := m.advance(ctx, s.At.Unix()); err != nil {
			return err
		}
		if err := m.d.Edit("metrology.mpy", []byte("M\x06\x00\x1fnot the sealed bytes")); err != nil {
			return err
		}
		if _, err := m.d.Step(mpharness.Cmd{"cmd": "check"}); err != nil {
			return err
		}
		if err := m.d.Restore("metrology.mpy"); err != nil {
			return err
		}
		s.Mark(s.At, "metrology.mpy replaced, checked, restored")
	}
	return m.advance(ctx, now.Unix())
}

// advance ticks the guard's clock to t and delivers the reports it emits.
func (m *mpMeter) advance(ctx context.Context, t int64) error {
	cur := m.now.Load()
	if t <= cur {
		return nil
	}
	r, err := m.d.Tick(int(t - cur))
	if err != nil {
		return err
	}
	m.now.Store(t)
	for _, b64 := range r.Reports {
		ack, err := m.tr.Send(ctx, mpharness.Bytes(b64))
		if err != nil {
			return err
		}
		if res, err := m.d.Ack(ack); err != nil || (res != "ok" && res != "") {
			return fmt.Errorf("ack: %s %v", res, err)
		}
	}
	return nil
}
