// Package agent is the fieldseal device side for Linux-class devices, and the engine of the
// simulated town: a Device holds the evidence log, the device state and the keys, turns
// observations (file checks, cover, magnet, meter register) into log entries, builds
// authenticated reports and applies authenticated acks and tokens. It knows nothing of
// clocks, files or networks: the caller passes the time and moves the bytes, so the same
// engine runs one real device (Run) or thousands of simulated ones on virtual clocks.
package agent

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/wire"
)

// Config is what a Device is made from.
type Config struct {
	Bundle   *wire.Bundle
	Manifest wire.ManifestRef // product, version and root of the manifest the device enforces
	Chain    fschain.Storage  // where the evidence log and, in its state slots, the device state live
	// Legacy is the state an earlier agent kept in a plain file, taken over once when the
	// slots hold no device state yet.
	Legacy *State
	// Now is the device time at start (unix seconds): stamped on the boot entry.
	Now uint64
	// Uptime, if set, reads what the renter cannot rewind without a reboot: the OS boot id
	// and the monotonic seconds since boot. A service window is bounded by it as well as by
	// device time (threat D25). Without it, windows end at the device's next boot.
	Uptime func() (bootID string, secs uint64)
	// OnCorrupt, if set, is called before a log found corrupt is salvaged (to keep a copy).
	OnCorrupt func(err error)
	// ResetCause goes into the boot entry (power-on, watchdog, soft...).
	ResetCause string
}

// Device is one sealed device. Its methods are safe for concurrent use.
type Device struct {
	mu     sync.Mutex
	b      *wire.Bundle
	man    wire.ManifestRef
	w      *fschain.Writer
	st     *State
	uptime func() (string, uint64)
	meas   wire.Measurement
	cover  bool // cover open now
	read   *wire.Reading
	logger func(format string, args ...any)
	onMan  func(m *wire.Manifest, signed []byte) error
	// chunked: the last report carried only the oldest part of the backlog.
	chunked bool
	// Prepared HMAC states of R and T: a report and an ack cost one MAC each, not a key setup.
	up, down *wire.MACKey
	created  bool // New created the evidence log from the bundle's K_1
}

// Created reports whether New created the evidence log (first start) from the bundle's
// K_1. From then on the log holds only evolved keys, and any copy of K_1 on the device
// should be erased: whoever reads it could re-tag every entry not yet reported.
func (d *Device) Created() bool { return d.created }

// OnManifest sets what happens when a manifest token arrives: the caller makes the new
// manifest the one it checks against (and keeps it for the next boot). A non-nil error
// refuses the token.
func (d *Device) OnManifest(f func(m *wire.Manifest, signed []byte) error) { d.onMan = f }

// Errors HandleAck returns. A rejected downlink is also logged as a bad-downlink entry.
var (
	ErrBadDownlink = errors.New("bad-downlink") // MAC, device, epoch or counter does not match
	ErrStaleAck    = errors.New("stale-ack")    // authentic, but for a report already acknowledged
	ErrRejected    = errors.New("rejected")     // the server refused the report (Ack.Reject)
	// ErrTokenRefused wraps a token an accepted ack carried but the device refused (also
	// logged as bad-downlink): the ack itself took effect.
	ErrTokenRefused = errors.New("token refused")
)

// New opens the device's evidence log (creating it on first start from the bundle's K_1),
// counts a boot and logs it.
func New(cfg Config) (*Device, error) {
	if err := cfg.Bundle.Check(); err != nil {
		return nil, err
	}
	d := &Device{b: cfg.Bundle, man: cfg.Manifest, uptime: cfg.Uptime,
		up: wire.NewMACKey(cfg.Bundle.UplinkKey), down: wire.NewMACKey(cfg.Bundle.DownlinkKey),
		meas: wire.Measurement{Status: wire.MeasUnchecked, Bad: []wire.Finding{}}}
	// Open completes every committed record (a torn write, or a copied-back slot: then a
	// rollback-detected entry) and logs what it did.
	var err error
	d.w, _, err = fschain.OpenAt(cfg.Chain, cfg.Now)
	if errors.Is(err, fschain.ErrNoState) {
		if len(cfg.Bundle.ChainKey) != len(fschain.Key{}) {
			return nil, fmt.Errorf("evidence log: there is none yet and the bundle holds no chain key (K_1 is erased from the device's copy once its log exists): restore the device's data folder, or re-provision it")
		}
		var k1 fschain.Key
		copy(k1[:], cfg.Bundle.ChainKey)
		d.w, err = fschain.Create(cfg.Chain, cfg.Bundle.Device, cfg.Bundle.Epoch, k1)
		d.created = err == nil
	}
	if errors.Is(err, fschain.ErrCorrupt) {
		// The device still holds R and its chain state: it reports the corruption (a
		// tamper-class log-corrupt entry) instead of refusing to start and looking silent.
		if cfg.OnCorrupt != nil {
			cfg.OnCorrupt(err)
		}
		d.w, err = fschain.Salvage(cfg.Chain, cfg.Now)
	}
	if err != nil {
		return nil, fmt.Errorf("evidence log: %w", err)
	}
	if d.w.Dev() != cfg.Bundle.Device || d.w.Epoch() != cfg.Bundle.Epoch {
		return nil, fmt.Errorf("evidence log belongs to %s epoch %d, bundle is %s epoch %d",
			d.w.Dev(), d.w.Epoch(), cfg.Bundle.Device, cfg.Bundle.Epoch)
	}
	ext := d.w.Ext()
	if d.st, err = decodeState(ext); err != nil {
		return nil, err
	}
	if ext == nil && cfg.Legacy != nil {
		d.st = cfg.Legacy
		base, _ := d.w.Base()
		d.st.Seen = base // entries still in the log are accounted for below
	}
	forged := !d.w.ExtAuthentic()
	if forged {
		d.st.Seen, _ = d.w.Base()
	}
	// Entries the state has not accounted for: completed by recovery beyond a copied-back
	// slot, or logged just before a power cut. Their latches and spent tokens count.
	for _, e := range d.w.Segment().Entries {
		d.st.account(e)
	}
	if forged {
		// Whole (its CRC holds) but its tag fails: edited in storage. Keep what it says (the
		// keys to report are in the bundle), account again for every entry still stored and
		// make the edit evidence.
		if _, err := d.append(cfg.Now, wire.EntryRollbackDetected, &wire.RollbackPayload{What: "device state in the state slot fails its tag: edited in storage"}); err != nil {
			return nil, err
		}
	}
	d.st.Boot++
	// A window opened before this boot is over unless the monotonic clock says otherwise
	// (an agent restarted by cron within one OS boot keeps it).
	if err := d.expireService(cfg.Now); err != nil {
		return nil, err
	}
	if err := d.save(); err != nil {
		return nil, err
	}
	cause := cfg.ResetCause
	if cause == "" {
		cause = "power-on"
	}
	_, err = d.append(cfg.Now, wire.EntryBoot, &wire.BootPayload{ResetCause: cause, BootCount: d.st.Boot,
		ManifestVersion: cfg.Manifest.Version, Root: cfg.Manifest.Root, Result: "unchecked"})
	return d, err
}

// SetLogger routes the device's own notes (rejected downlinks, tokens applied).
func (d *Device) SetLogger(f func(format string, args ...any)) { d.logger = f }

func (d *Device) logf(format string, args ...any) {
	if d.logger != nil {
		d.logger(format, args...)
	}
}

// ID is the device id.
func (d *Device) ID() string { return d.b.Device }

// Bundle is the device's provisioning bundle.
func (d *Device) Bundle() *wire.Bundle { return d.b }

// save makes the device state durable in the evidence log's state slots.
func (d *Device) save() error {
	b, err := encodeState(d.st)
	if err != nil {
		return err
	}
	return d.w.SaveExt(b)
}

// append logs an entry and accounts for it in the device state (latches, the tamper
// summary), which is written with the entry's own slot commit.
func (d *Device) append(t uint64, typ uint16, payload any) (wire.Entry, error) {
	p, err := wire.Marshal(payload)
	if err != nil {
		return wire.Entry{}, err
	}
	// The entry's slot commit carries the device state as last saved (every change to it is
	// saved where it is made). What the entry itself changes (latches, the tamper summary,
	// a spent token) is saved just after, once the writer has given it its number; a power
	// cut in between is repaired at boot, which accounts again for entries past Seen.
	e, err := d.w.Append(t, typ, p)
	if errors.Is(err, fschain.ErrDropped) {
		// Log full while offline: the writer counts routine entries and logs an overflow
		// entry when space returns; tamper entries are never dropped.
		return e, nil
	}
	if err != nil {
		return e, err
	}
	latched := d.st.Latched
	d.st.account(e)
	if latchFor(e.Type, e.Payload) != 0 || e.Type == wire.EntryTamperCleared || d.st.Latched != latched {
		return e, d.save()
	}
	return e, nil
}

// Check records the result of verifying the application tree: files checked and what
// differed. A change of result is logged (check-fail with every bad file, or check-ok when
// the tree is clean again); an unchanged result only refreshes the measurement, so a
// scheduled check does not grow the log. A mismatch latches: restoring the files later
// leaves the check-fail in the log and the latch set until a clear token.
func (d *Device) Check(now uint64, files uint32, bad []wire.Finding, expected map[string][]byte, seen map[string][]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	sort.Slice(bad, func(i, j int) bool { return bad[i].Path < bad[j].Path })
	prev := d.meas
	d.meas = wire.Measurement{Status: wire.MeasOK, FilesChecked: files, LastCheck: now, Bad: bad}
	if bad == nil {
		d.meas.Bad = []wire.Finding{}
	}
	if len(bad) > 0 {
		d.meas.Status = wire.MeasMismatch
		if prev.Status == wire.MeasMismatch && sameFindings(prev.Bad, bad) {
			return nil
		}
		p := &wire.CheckFailPayload{Files: files}
		for i, f := range bad {
			if i == 32 { // keep the entry under the payload limit; the report lists them all
				break
			}
			p.Bad = append(p.Bad, wire.BadFile{Path: f.Path, Kind: f.Kind, Expected: prefix(expected[f.Path]), Seen: prefix(seen[f.Path])})
		}
		_, err := d.append(now, wire.EntryCheckFail, p) // latches (latchFor)
		return err
	}
	if prev.Status == wire.MeasOK && prev.FilesChecked == files {
		return nil
	}
	_, err := d.append(now, wire.EntryCheckOK, &wire.CheckOKPayload{Files: files, Root: d.man.Root})
	return err
}

func prefix(b []byte) []byte {
	if len(b) > 8 {
		return b[:8]
	}
	return b
}

func sameFindings(a, b []wire.Finding) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Path != b[i].Path || a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

// Cover records the enclosure switch. Opening is tamper evidence unless a service window
// is open, in which case it is still logged (the service-begin entry before it says why)
// and does not latch.
func (d *Device) Cover(now uint64, open bool, source string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireService(now)
	if open == d.cover && source != wire.CoverSourceLatch {
		return nil
	}
	d.cover = open
	if !open {
		_, err := d.append(now, wire.EntryCoverClose, &wire.EmptyPayload{})
		return err
	}
	if d.st.ServiceUntil != 0 {
		source = wire.CoverSourceService // expected: the service-begin entry says why
	}
	_, err := d.append(now, wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: source})
	return err
}

// Magnet records a magnetic field on the meter (a classic way to stall its register).
func (d *Device) Magnet(now uint64, strength uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.append(now, wire.EntryMagnet, &wire.MagnetPayload{Strength: strength})
	return err
}

// SetReading sets the meter register sent with the next reports.
func (d *Device) SetReading(litres uint64, flags uint32) {
	d.mu.Lock()
	d.read = &wire.Reading{Litres: litres, Flags: flags}
	d.mu.Unlock()
}

// Register logs the current register as a signed billing read.
func (d *Device) Register(now uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.read == nil {
		return nil
	}
	_, err := d.append(now, wire.EntryRegister, &wire.RegisterPayload{Litres: d.read.Litres, Flags: d.read.Flags})
	return err
}

// Tick closes an expired service window.
func (d *Device) Tick(now uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expireService(now)
}

func (d *Device) expireService(now uint64) error {
	if d.st.ServiceUntil == 0 || d.serviceOpen(now) {
		return nil
	}
	d.st.ServiceUntil = 0
	d.st.ServiceToken = nil
	d.st.Service = nil
	if err := d.save(); err != nil {
		return err
	}
	_, err := d.append(now, wire.EntryServiceEnd, &wire.ServiceEndPayload{})
	return err
}

// serviceOpen says whether the open service window still holds at device time now. Device
// time is the renter's to set, so the window also ends when the clock goes back before its
// opening, at the next boot (OS boot id, or the boot count without one) and when the
// monotonic clock since boot passes its end: a clock reset cannot stretch it (D25).
func (d *Device) serviceOpen(now uint64) bool {
	w := d.st.Service
	if now >= d.st.ServiceUntil {
		return false
	}
	if w == nil {
		return false // a window without its bounds (older state): closed, never stretched
	}
	if now < w.OpenedAt {
		return false
	}
	if d.uptime != nil && w.BootID != "" {
		id, up := d.uptime()
		return id == w.BootID && up < w.UptimeUntil
	}
	return w.Boot == d.st.Boot
}

// flags are the report's state flags: what is true now and what is latched.
func (d *Device) flags() uint32 {
	f := d.st.Latched
	if d.meas.Status == wire.MeasMismatch {
		f |= wire.StateCodeMismatch
	} else {
		f &^= wire.StateCodeMismatch
	}
	if d.cover {
		f |= wire.StateCoverOpenNow
	}
	if d.st.ServiceUntil != 0 {
		f |= wire.StateServiceMode
	}
	return f
}

// Report builds the next report: a new report counter, persisted before the report is
// returned, and every log entry the server has not acknowledged (store-and-forward: an
// unsent report is simply superseded by the next, which carries the same entries).
func (d *Device) Report(now uint64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireService(now)
	d.st.RSeq++
	if err := d.save(); err != nil {
		d.st.RSeq--
		return nil, err
	}
	r := &wire.Report{Dev: d.b.Device, Epoch: d.b.Epoch, RSeq: d.st.RSeq, Boot: d.st.Boot, Time: now,
		Man: d.man, Meas: d.meas, State: d.flags(), Log: d.w.Segment(), Nonce: d.st.Nonce, Reading: d.read}
	data, err := wire.SealReportWith(r, d.up)
	d.chunked = false
	if err != nil || len(data) <= wire.MaxMessageSize {
		return data, err
	}
	// The backlog is bigger than one message (a long outage): send the oldest entries that
	// fit, still claiming the current n, head and seal; the server verifies them and acks
	// up to the last one (docs/PROTOCOL.md, "Backlog in chunks"), and Behind asks for the
	// next chunk at once.
	all := r.Log.Entries
	lo, hi := 1, len(all)-1 // the most entries that fit: at least one, fewer than all
	for lo < hi {
		mid := (lo + hi + 1) / 2
		r.Log.Entries = all[:mid]
		if b, err := wire.SealReportWith(r, d.up); err == nil && len(b) <= wire.MaxMessageSize {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	r.Log.Entries = all[:lo]
	d.chunked = true
	return wire.SealReportWith(r, d.up)
}

// Behind reports whether the last report carried only part of the backlog: send the next
// one as soon as it is acknowledged.
func (d *Device) Behind() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.chunked
}

// RSeq is the last report counter used.
func (d *Device) RSeq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.RSeq
}

// Status is a snapshot for displays and tests.
type Status struct {
	RSeq, AckedRSeq uint64
	Boot            uint32
	LogN            uint64
	Pending         int // log entries not yet acknowledged
	Flags           uint32
	Meas            wire.Measurement
	InService       bool
}

// Status returns a snapshot of the device.
func (d *Device) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	n, _, _ := d.w.State()
	return Status{RSeq: d.st.RSeq, AckedRSeq: d.st.AckedRSeq, Boot: d.st.Boot, LogN: n,
		Pending: len(d.w.Segment().Entries), Flags: d.flags(), Meas: d.meas, InService: d.st.ServiceUntil != 0}
}

// Segment is the unacknowledged part of the log with the claimed head and seal.
func (d *Device) Segment() wire.Segment {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Segment()
}

// HandleAck applies the server's answer, by the downlink rules of docs/PROTOCOL.md
// ("Downlink rules"; behaviour vectors in testdata/vectors/downlink, shared with the
// MicroPython guard). The MAC under T, the device id, the epoch and the acknowledged
// counter are all checked before anything is pruned; a failure is logged as a bad-downlink
// entry and nothing changes (S5). Only an ack answering the last report sent is taken: an
// authentic ack for an earlier one is stale and ignored whole, tokens included. An accepted
// ack moves the nonce, prunes the log up to the anchor, keeps the receipt and applies the
// tokens it carries; a token it refuses is logged and returned as ErrTokenRefused.
func (d *Device) HandleAck(data []byte, now uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := wire.OpenAckWith(data, d.b.Device, d.down)
	if err != nil {
		return d.badDownlink(now, ackWhy(err), "ack: "+err.Error())
	}
	if a.Epoch != d.b.Epoch {
		return d.badDownlink(now, WhyWrongEpoch, fmt.Sprintf("ack: epoch %d, want %d", a.Epoch, d.b.Epoch))
	}
	if a.AckedRSeq > d.st.RSeq || a.AckedRSeq == 0 {
		return d.badDownlink(now, WhyUnsentRSeq, fmt.Sprintf("ack: acks report %d, last sent %d", a.AckedRSeq, d.st.RSeq))
	}
	if a.AckedRSeq < d.st.RSeq {
		// An authentic answer to an earlier report: a late duplicate or a replay. Nothing in
		// it is current (its anchor, nonce and tokens answer what the server knew then).
		return ErrStaleAck
	}
	if a.Reject != "" {
		// The server refused the report; nothing it says about the log can be taken as
		// verified. A fresh nonce is still worth taking: it is authentic.
		if len(a.Nonce) > 0 {
			d.st.Nonce = a.Nonce
			d.save()
		}
		return fmt.Errorf("%w: %s", ErrRejected, a.Reject)
	}
	n, _, _ := d.w.State()
	if a.Anchor.N > 0 && len(a.Anchor.Head) != 32 {
		return d.badDownlink(now, WhyMalformed, "ack: anchor head is not 32 bytes")
	}
	if a.Anchor.N > n {
		return d.badDownlink(now, WhyAnchorAhead, fmt.Sprintf("ack: anchor %d beyond log head %d", a.Anchor.N, n))
	}
	if a.Anchor.N > 0 {
		if h, ok := d.w.HeadAt(a.Anchor.N); ok && !bytes.Equal(h[:], a.Anchor.Head) {
			return d.badDownlink(now, WhyAnchorMismatch, fmt.Sprintf("ack: anchor head at %d is not the log's", a.Anchor.N))
		}
	}
	if len(a.Receipt) > 0 && len(d.b.ServerPub) == ed25519.PublicKeySize {
		rc, err := wire.OpenReceipt(a.Receipt, ed25519.PublicKey(d.b.ServerPub))
		if err != nil || rc.Dev != d.b.Device || rc.Epoch != d.b.Epoch || rc.N != a.Anchor.N || !bytes.Equal(rc.Head, a.Anchor.Head) {
			return d.badDownlink(now, WhyBadReceipt, "ack: receipt does not match the anchor")
		}
		d.st.Receipt = a.Receipt
	}
	d.st.AckedRSeq = a.AckedRSeq
	if len(a.Nonce) > 0 {
		d.st.Nonce = a.Nonce
	}
	if err := d.settleBadDownlinks(now); err != nil {
		return err
	}
	if a.Anchor.N > 0 && len(d.w.Segment().Entries) > 0 {
		var h fschain.Hash
		copy(h[:], a.Anchor.Head)
		if err := d.w.Prune(a.Anchor.N, h); err != nil {
			return d.badDownlink(now, WhyAnchorMismatch, "ack: anchor does not match the log: "+err.Error())
		}
	}
	var errs []error
	for _, c := range a.Commands {
		if err := d.applyToken(c, now, true); err != nil {
			errs = append(errs, fmt.Errorf("%w: %w", ErrTokenRefused, err))
		}
	}
	return errors.Join(errs...)
}

// ApplyToken applies one token received outside an ack (e.g. typed in by a technician).
func (d *Device) ApplyToken(data []byte, now uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyToken(data, now, false)
}

// applyToken applies one token. inAck says it came inside an accepted ack: the server
// re-sends a pending token until it sees it used (a backlog sent in chunks can hold the
// report that shows it only later), so a spent one there is a harmless repeat and is
// ignored; anywhere else it is refused and logged (S6). Validity is the same everywhere:
// until_rseq (0 is never valid) and expires (device time), as in the guard.
func (d *Device) applyToken(data []byte, now uint64, inAck bool) error {
	t, err := wire.OpenToken(data, d.b.Device, d.b.DownlinkKey)
	if err != nil {
		return d.badDownlink(now, ackWhy(err), "token: "+err.Error())
	}
	return d.applyOpenToken(t, now, inAck)
}

// applyOpenToken applies an authentic token, however it came (COSE or LPWAN frame).
func (d *Device) applyOpenToken(t *wire.Token, now uint64, inAck bool) error {
	var err error
	if t.Epoch != d.b.Epoch {
		return d.badDownlink(now, WhyWrongEpoch, fmt.Sprintf("token: epoch %d, want %d", t.Epoch, d.b.Epoch))
	}
	if len(t.ID) != 16 {
		return d.badDownlink(now, WhyMalformed, "token: id is not 16 bytes")
	}
	for _, id := range d.st.UsedTokens {
		if bytes.Equal(id, t.ID) {
			if inAck {
				return nil
			}
			return d.badDownlink(now, WhyTokenReplay, fmt.Sprintf("token: %x already used", t.ID))
		}
	}
	if t.UntilRSeq == 0 || d.st.RSeq > t.UntilRSeq {
		return d.badDownlink(now, WhyTokenExpired, fmt.Sprintf("token: %x valid until report %d, device is at %d", t.ID, t.UntilRSeq, d.st.RSeq))
	}
	if t.Expires != 0 && now > t.Expires {
		return d.badDownlink(now, WhyTokenExpired, fmt.Sprintf("token: %x expired at %d", t.ID, t.Expires))
	}
	switch t.Action {
	case wire.TokenService, wire.TokenClear, wire.TokenConfig, wire.TokenManifest:
	default:
		return d.badDownlink(now, WhyUnknownAction, "token: action "+t.Action+" not supported by this agent")
	}
	d.st.UsedTokens = append(d.st.UsedTokens, wire.HexBytes(t.ID))
	if len(d.st.UsedTokens) > maxUsedTokens {
		d.st.UsedTokens = d.st.UsedTokens[len(d.st.UsedTokens)-maxUsedTokens:]
	}
	switch t.Action {
	case wire.TokenService:
		w := uint64(t.Args.Window)
		if w == 0 {
			w = 3600
		}
		d.st.ServiceUntil = now + w
		d.st.ServiceToken = wire.HexBytes(t.ID)
		d.st.Service = &wire.ServiceWindow{Boot: d.st.Boot, OpenedAt: now}
		if d.uptime != nil {
			d.st.Service.BootID, d.st.Service.UptimeUntil = d.uptime()
			d.st.Service.UptimeUntil += w
		}
		if err := d.save(); err != nil {
			return err
		}
		d.logf("%s: service window open for %ds (work order %s)", d.b.Device, w, t.Args.WorkOrder)
		_, err = d.append(now, wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: t.ID, WorkOrder: t.Args.WorkOrder, Technician: t.Args.Technician})
		return err
	case wire.TokenClear:
		// The tamper-cleared entry clears the latches and the summary (State.account).
		d.logf("%s: tamper state cleared", d.b.Device)
		_, err = d.append(now, wire.EntryTamperCleared, &wire.TamperClearedPayload{TokenID: t.ID})
		return err
	case wire.TokenConfig:
		if t.Args.ReportInterval != 0 {
			d.st.ReportInterval = t.Args.ReportInterval
		}
		if t.Args.CheckInterval != 0 {
			d.st.CheckInterval = t.Args.CheckInterval
		}
		return d.save()
	default: // wire.TokenManifest
		m, err := manifestOf(t.Args.Manifest)
		if err != nil {
			return d.badDownlink(now, WhyBadManifest, "token: manifest: "+errName(err))
		}
		if m.Product != d.man.Product {
			return d.badDownlink(now, WhyWrongProduct, fmt.Sprintf("token: manifest %s cannot replace %s", m.Product, d.man.Product))
		}
		if m.Version <= d.man.Version {
			return d.badDownlink(now, WhyDowngrade, fmt.Sprintf("token: manifest v%d cannot replace v%d", m.Version, d.man.Version))
		}
		if d.onMan == nil {
			return d.badDownlink(now, WhyUnknownAction, "token: this device cannot install manifests")
		}
		if err := d.onMan(m, t.Args.Manifest); err != nil {
			return fmt.Errorf("installing manifest v%d: %w", m.Version, err)
		}
		old := d.man.Version
		d.man = wire.ManifestRef{Product: m.Product, Version: m.Version, Root: m.Root}
		if err := d.save(); err != nil {
			return err
		}
		d.logf("%s: manifest v%d installed (was v%d)", d.b.Device, m.Version, old)
		_, err = d.append(now, wire.EntryManifestUpdate, &wire.ManifestUpdatePayload{Old: old, New: m.Version})
		return err
	}
}

// manifestOf decodes a vendor-signed manifest carried by a manifest token. The device has
// no vendor key: the token's MAC under T says the server sent it, and the server checked
// the vendor signature, product and version when the manifest was registered (S7).
func manifestOf(signed []byte) (*wire.Manifest, error) {
	return wire.ParseManifestUnverified(signed)
}

// Manifest is the manifest reference the device enforces.
func (d *Device) Manifest() wire.ManifestRef {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.man
}

// Intervals are those set by a config token (0: the manifest policy's).
func (d *Device) Intervals() (report, check uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st.ReportInterval, d.st.CheckInterval
}

// badDownlink logs a rejected downlink as a bad-downlink entry whose payload is the
// stable name why (the guard logs the same names); detail goes to the device's own notes.
// Tamper-class entries are never dropped, so whoever reaches the downlink could fill the
// log with garbage: after MaxBadDownlinks rejections without an accepted ack in between,
// further ones are only counted, and the count is logged with the next accepted ack (S13).
func (d *Device) badDownlink(now uint64, why, detail string) error {
	d.logf("%s: bad-downlink: %s", d.b.Device, detail)
	err := fmt.Errorf("%w: %s", ErrBadDownlink, detail)
	d.st.BadDownlinks++
	if serr := d.save(); serr != nil {
		return errors.Join(err, serr)
	}
	if d.st.BadDownlinks > MaxBadDownlinks {
		return err
	}
	if _, aerr := d.append(now, wire.EntryBadDownlink, &wire.BadDownlinkPayload{Why: why}); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// errName is the stable name of a wire error, for logs that must not leak details.
func errName(err error) string {
	if n := wire.ErrorName(err); n != "" {
		return n
	}
	return err.Error()
}

// Summary is the latched tamper summary (nil when nothing is latched): the first tamper
// entry since the last clear token and a count per type.
func (d *Device) Summary() *wire.TamperSummary {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.st.Summary == nil {
		return nil
	}
	c := *d.st.Summary
	return &c
}

// Receipt is the latest anchor receipt from the server (nil before the first).
func (d *Device) Receipt() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.st.Receipt...)
}

// StampsDigest is the digest of the sealed files' stamps the state vouches for.
func (d *Device) StampsDigest() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.st.StampsDigest...)
}

// SetStampsDigest records the digest of the stamps just written, durably.
func (d *Device) SetStampsDigest(digest []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.st.StampsDigest = append([]byte(nil), digest...)
	return d.save()
}

// StateEdited logs that device state kept outside the slots, which the slot state vouches
// for, was found edited or removed: tamper evidence (rollback-detected).
func (d *Device) StateEdited(now uint64, what string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.append(now, wire.EntryRollbackDetected, &wire.RollbackPayload{What: what})
	return err
}

// settleBadDownlinks runs when a genuine ack arrives: it saves the state with the count of
// forged downlinks reset and logs, as one entry, those beyond the MaxBadDownlinks already
// logged one by one since the previous good ack (S13: the same cap as the guard).
func (d *Device) settleBadDownlinks(now uint64) error {
	unlogged := d.st.BadDownlinks - min(d.st.BadDownlinks, MaxBadDownlinks)
	d.st.BadDownlinks = 0
	if err := d.save(); err != nil {
		return err
	}
	if unlogged > 0 {
		if _, err := d.append(now, wire.EntryBadDownlink, &wire.BadDownlinkPayload{Why: UnloggedWhy(unlogged)}); err != nil {
			return err
		}
	}
	return nil
}
