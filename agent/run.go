package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/atomicfile"
	"github.com/fieldseal/fieldseal/manifest"
	"github.com/fieldseal/fieldseal/wire"
)

// CoverSource is an enclosure switch (or any tamper input with two states).
type CoverSource interface {
	// Open reports the level now: read at start, so an opening while unpowered is seen.
	Open() (bool, error)
	// Watch calls f on every change until ctx ends.
	Watch(ctx context.Context, f func(open bool, source string)) error
}

// FileCover reads the cover state from a file whose content "1" or "open" means open
// (anything else, or no file, means closed): for tests, and for devices whose switch is
// read by another program.
type FileCover struct {
	Path string
	Poll time.Duration // default 100 ms
}

func (f *FileCover) Open() (bool, error) {
	b, err := os.ReadFile(f.Path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v := strings.ToLower(strings.TrimSpace(string(b)))
	return v == "1" || v == "open", nil
}

func (f *FileCover) Watch(ctx context.Context, cb func(open bool, source string)) error {
	p := f.Poll
	if p <= 0 {
		p = 100 * time.Millisecond
	}
	last, err := f.Open()
	if err != nil {
		return err
	}
	go func() {
		t := time.NewTicker(p)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if now, err := f.Open(); err == nil && now != last {
				last = now
				cb(now, wire.CoverSourceLevel)
			}
		}
	}()
	return nil
}

// RunConfig configures a Linux device agent.
type RunConfig struct {
	Bundle   *wire.Bundle
	Manifest *wire.Manifest // signature already checked by the caller
	AppDir   string         // the application tree the manifest seals
	DataDir  string         // evidence log and state
	Server   string         // mqtt://, mqtts://, http:// or https://
	Once     bool           // one check and one report, then return (nil when acknowledged)
	Cover    CoverSource    // optional
	Dial     DialOptions
	Logf     func(format string, args ...any)
	Now      func() time.Time
	// RetryAfter is how soon a failed report is retried (default 30 s); the entries wait
	// in the log meanwhile.
	RetryAfter time.Duration
	// BundlePath names the bundle file Bundle was read from, for messages only: the agent
	// never modifies it. It takes the secrets into its own data folder (bundle.json there)
	// and erases K_1 from that copy once the evidence log exists.
	BundlePath string
	// FirstCheck, if set, is told what the check at start found (nil: the tree matches),
	// before the first report: the command line's start line and --once result.
	FirstCheck func(bad []wire.Finding)
}

// ownBundle is the agent's copy of the bundle in its data folder.
const ownBundle = "bundle.json"

// Runner is a running agent: one real device around the Device engine.
type Runner struct {
	cfg   RunConfig
	dev   *Device
	tr    Transport
	mu    sync.Mutex // one check or report at a time
	stamp map[string]fileStamp
}

// NewRunner opens the device's data folder (creating its evidence log on first start)
// and logs the boot.
func NewRunner(ctx context.Context, cfg RunConfig) (*Runner, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 30 * time.Second
	}
	b, m := cfg.Bundle, cfg.Manifest
	if err := b.Check(); err != nil {
		// before anything is written: a bad bundle (say a topic root no server can have)
		// must not become the agent's copy
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if m.Product != b.Product {
		return nil, fmt.Errorf("manifest is for product %q, the device is a %q", m.Product, b.Product)
	}
	if m.Version < b.ManifestVersion {
		return nil, fmt.Errorf("%w: manifest version %d is below the provisioned %d", wire.ErrDowngrade, m.Version, b.ManifestVersion)
	}
	// A manifest installed by a token since provisioning is kept in the data folder and
	// wins over the one given on the command line when it is newer.
	if kept, err := os.ReadFile(filepath.Join(cfg.DataDir, keptManifest)); err == nil {
		if km, err := manifestOf(kept); err == nil && km.Product == m.Product && km.Version > m.Version {
			cfg.Logf("%s: enforcing manifest v%d installed by token (command line gave v%d)", b.Device, km.Version, m.Version)
			cfg.Manifest, m = km, km
		}
	}
	if err := checkAppDir(cfg.AppDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	b, err := takeBundle(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Bundle = b
	chain, err := fschain.NewFileStorage(filepath.Join(cfg.DataDir, "log"))
	if err != nil {
		return nil, err
	}
	legacy, err := readLegacyState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	dev, err := New(Config{Bundle: b, Manifest: wire.ManifestRef{Product: m.Product, Version: m.Version, Root: m.Root},
		Chain: chain, Legacy: legacy, Now: unixSec(cfg.Now()), Uptime: osUptime,
		OnCorrupt: func(err error) {
			// Keep the unreadable log for forensics before it is salvaged.
			keep := filepath.Join(cfg.DataDir, fmt.Sprintf("log.corrupt-%d", cfg.Now().Unix()))
			if raw, rerr := os.ReadFile(filepath.Join(cfg.DataDir, "log", "log")); rerr == nil {
				atomicfile.Write(keep, raw, 0o600)
			}
			cfg.Logf("%s: evidence log corrupt (%v): kept a copy in %s, reporting log-corrupt", b.Device, err, keep)
		}})
	if err != nil {
		return nil, err
	}
	dev.SetLogger(cfg.Logf)
	if legacy != nil {
		// The state is in the slots now; a plain copy left behind would only mislead.
		old := filepath.Join(cfg.DataDir, legacyStateFile)
		if raw, err := os.ReadFile(old); err == nil && atomicfile.Write(old+".imported", raw, 0o600) == nil {
			os.Remove(old)
		}
	}
	// Forward security holds only if no copy of K_1 outlives the log's creation: erase it
	// from the agent's own copy (never from the operator's file).
	if len(b.ChainKey) > 0 {
		if err := EraseChainKeyFile(filepath.Join(cfg.DataDir, ownBundle), *b); err != nil {
			return nil, fmt.Errorf("erasing K_1 from %s: %w", filepath.Join(cfg.DataDir, ownBundle), err)
		}
		b.ChainKey = nil
	}
	if dev.Created() && cfg.BundlePath != "" {
		cfg.Logf("%s: evidence log created; K_1 erased from the agent's copy. %s still holds K_1: keep it off the device (it is the auditor's key for 'fieldseal log verify --chain-key')", b.Device, cfg.BundlePath)
	}
	r := &Runner{cfg: cfg, dev: dev}
	// The sealed files' stamps of the previous run (cron: --once): an edit and a restore
	// between two runs still leaves a new change time. A record the state vouches for that
	// is gone or edited is itself evidence.
	var ok bool
	if r.stamp, ok = loadStamps(cfg.DataDir, dev.StampsDigest()); !ok {
		if err := dev.StateEdited(unixSec(cfg.Now()), "the agent's record of the sealed files' identities ("+stampsFile+") was edited or removed"); err != nil {
			return nil, err
		}
	}
	// Called from HandleAck inside Report, with r.mu held.
	dev.OnManifest(func(nm *wire.Manifest, signed []byte) error {
		if err := atomicfile.Write(filepath.Join(cfg.DataDir, keptManifest), signed, 0o600); err != nil {
			return err
		}
		r.cfg.Manifest = nm
		r.stamp = map[string]fileStamp{}
		return nil
	})
	tr, err := Dial(ctx, cfg.Server, b, cfg.Dial)
	if err != nil {
		// Offline at boot is normal for a field device: keep logging, report later.
		cfg.Logf("%s: server unreachable (%v); reports wait in the log", b.Device, err)
	}
	r.tr = tr
	return r, nil
}

// keptManifest is where a token-installed manifest is kept in the data folder.
const keptManifest = "manifest.cose"

// Device is the engine.
func (r *Runner) Device() *Device { return r.dev }

// Manifest is the manifest the runner checks against (a token may have replaced it).
func (r *Runner) Manifest() *wire.Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.Manifest
}

func (r *Runner) policy() wire.Policy { return r.Manifest().Policy }

func unixSec(t time.Time) uint64 { return uint64(t.Unix()) }

// Check verifies the application tree and records the result. Besides content, it keeps
// each sealed file's inode and change time from the previous check: a file written and
// put back between two checks (D2, D3) leaves a new change time even though it hashes
// right again, and that is recorded as a modification.
func (r *Runner) Check(ctx context.Context) (bad []wire.Finding, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.cfg.Manifest
	now := unixSec(r.cfg.Now())
	res, err := manifest.VerifyTree(ctx, r.cfg.AppDir, m, manifest.VerifyOptions{})
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		bad = []wire.Finding{{Path: ".", Kind: wire.KindUnreadable}}
		return bad, r.dev.Check(now, 0, bad, nil, nil)
	}
	bad = res.Wire()
	flagged := map[string]bool{}
	for _, f := range bad {
		flagged[f.Path] = true
	}
	before := stampsDigest(r.stamp)
	for _, f := range m.Files {
		if m.IsMutable(f.Path) {
			continue
		}
		st, ok := stampOf(filepath.Join(r.cfg.AppDir, filepath.FromSlash(f.Path)))
		prev, had := r.stamp[f.Path]
		if ok {
			r.stamp[f.Path] = st
		}
		if had && ok && st != prev && !flagged[f.Path] {
			bad = append(bad, wire.Finding{Path: f.Path, Kind: wire.KindModified})
			r.cfg.Logf("%s: %s was rewritten since the last check (content matches again)", r.cfg.Bundle.Device, f.Path)
		}
	}
	if after := stampsDigest(r.stamp); !bytes.Equal(after, before) {
		if err := saveStamps(r.cfg.DataDir, r.stamp); err != nil {
			return nil, fmt.Errorf("keeping the sealed files' stamps: %w", err)
		}
		if err := r.dev.SetStampsDigest(after); err != nil {
			return nil, err
		}
	}
	if len(bad) > 0 {
		var list []string
		for _, f := range bad {
			list = append(list, f.Path+" ("+f.Kind+")")
		}
		r.cfg.Logf("%s: check found %d problem(s): %s", r.cfg.Bundle.Device, len(bad), strings.Join(list, ", "))
	}
	// The check-fail entry carries the expected digest prefix of each bad file (what the
	// manifest says), so the evidence names exactly which sealed version was replaced.
	var expected map[string][]byte
	if len(bad) > 0 {
		expected = map[string][]byte{}
		for _, f := range m.Files {
			expected[f.Path] = f.SHA256
		}
	}
	return bad, r.dev.Check(now, uint32(res.Checked), bad, expected, nil)
}

// Cover records the enclosure switch.
func (r *Runner) Cover(open bool, source string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if open {
		r.cfg.Logf("%s: cover opened (%s)", r.cfg.Bundle.Device, source)
	}
	return r.dev.Cover(unixSec(r.cfg.Now()), open, source)
}

// Report sends one report and applies the answer; nil means acknowledged.
func (r *Runner) Report(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := unixSec(r.cfg.Now())
	if r.tr == nil {
		tr, err := Dial(ctx, r.cfg.Server, r.cfg.Bundle, r.cfg.Dial)
		if err != nil {
			return err
		}
		r.tr = tr
	}
	r.dev.Tick(now)
	rep, err := r.dev.Report(now)
	if err != nil {
		return err
	}
	ack, err := r.tr.Send(ctx, rep)
	if err != nil {
		return err
	}
	return takeAnswer(ctx, r.dev, r.tr, ack, now)
}

// takeAnswer hands the device the answers to the report it just sent until it takes one:
// only the ack whose acked rseq answers this report is taken (an answer to an earlier
// report is stale, a forged one is logged), and on MQTT the right one may still come after
// others on the downlink topic (PROTOCOL.md, "Downlink rules").
func takeAnswer(ctx context.Context, d *Device, tr Transport, ack []byte, now uint64) error {
	more, _ := tr.(interface {
		Next(context.Context) ([]byte, error)
	})
	for tries := 0; ; tries++ {
		err := d.HandleAck(ack, now)
		taken := !errors.Is(err, ErrStaleAck) && (!errors.Is(err, ErrBadDownlink) || errors.Is(err, ErrTokenRefused))
		if taken || more == nil || tries >= maxDownlinksPerReport {
			return err
		}
		if ack, err = more.Next(ctx); err != nil {
			return err
		}
	}
}

// maxDownlinksPerReport bounds how many messages Report reads from the downlink while it
// waits for the answer to its report (a flood of forged ones cannot hold it forever).
const maxDownlinksPerReport = 64

// Close releases the transport.
func (r *Runner) Close() {
	if r.tr != nil {
		r.tr.Close()
	}
}

// Run runs the agent: check at start, then on the manifest's schedule and whenever the
// tree changes; watch the cover; report on schedule and at once after any finding or
// cover event. With Once, one check and one report, nil when acknowledged.
func Run(ctx context.Context, cfg RunConfig) error {
	r, err := NewRunner(ctx, cfg)
	if err != nil {
		return err
	}
	defer r.Close()
	logf := r.cfg.Logf
	if cfg.Cover != nil {
		open, err := cfg.Cover.Open()
		if err != nil {
			return fmt.Errorf("cover: %w", err)
		}
		if open {
			// Found open at start: opened while we were not running.
			r.Cover(true, wire.CoverSourceLevel)
		}
	}
	bad, err := r.Check(ctx)
	if err != nil {
		return err
	}
	if cfg.FirstCheck != nil {
		cfg.FirstCheck(bad)
	}
	if cfg.Once {
		return r.Report(ctx)
	}
	urgent := make(chan struct{}, 1)
	kick := func() {
		select {
		case urgent <- struct{}{}:
		default:
		}
	}
	changed := make(chan struct{}, 1)
	if err := watchTree(ctx, cfg.AppDir, func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}); err != nil {
		logf("%s: no change notifications (%v): scheduled checks only", cfg.Bundle.Device, err)
	}
	if cfg.Cover != nil {
		if err := cfg.Cover.Watch(ctx, func(open bool, source string) {
			if err := r.Cover(open, source); err != nil {
				logf("%s: cover: %v", cfg.Bundle.Device, err)
			}
			kick()
		}); err != nil {
			return fmt.Errorf("cover: %w", err)
		}
	}
	intervals := func() (time.Duration, time.Duration) {
		rep, chk := r.dev.Intervals()
		pol := r.policy()
		if rep == 0 {
			rep = pol.ReportInterval
		}
		if chk == 0 {
			chk = pol.CheckInterval
		}
		return time.Duration(max(rep, 1)) * time.Second, time.Duration(max(chk, 1)) * time.Second
	}
	_, chkIv := intervals() // the report interval is read again after each report
	var repIv time.Duration
	nextReport := time.Now()
	nextCheck := time.Now().Add(chkIv)
	var lastBad int
	for {
		wait := min(time.Until(nextReport), time.Until(nextCheck))
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		case <-changed:
			timer.Stop()
			nextCheck = time.Now()
		case <-urgent:
			timer.Stop()
			nextReport = time.Now()
		}
		if !time.Now().Before(nextCheck) {
			bad, err := r.Check(ctx)
			if err != nil {
				return err
			}
			if len(bad) != lastBad {
				nextReport = time.Now()
			}
			lastBad = len(bad)
			nextCheck = time.Now().Add(chkIv)
		}
		if !time.Now().Before(nextReport) {
			err := r.Report(ctx)
			repIv, chkIv = intervals()
			switch {
			case err == nil && r.dev.Behind():
				nextReport = time.Now() // the rest of a backlog too big for one report
			case err == nil || errors.Is(err, ErrStaleAck):
				nextReport = time.Now().Add(repIv)
			case errors.Is(err, ErrRejected), errors.Is(err, ErrBadDownlink):
				logf("%s: report: %v", cfg.Bundle.Device, err)
				nextReport = time.Now().Add(repIv)
			default:
				logf("%s: report not delivered (%v); retrying in %s", cfg.Bundle.Device, err, cfg.RetryAfter)
				nextReport = time.Now().Add(min(cfg.RetryAfter, repIv))
			}
		}
	}
}
