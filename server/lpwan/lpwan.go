// Package lpwan is the server side of the LPWAN profile (docs/PROTOCOL.md, "LPWAN
// profile"): an adapter in front of server.HandleReport for links that carry small frames
// (server/lorawan feeds it from network servers).
package lpwan

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// An Assembler checks each frame's MAC under the device's R, gathers entry fragments,
// and when a status frame arrives turns it and the entries it claims into the report the
// device would have sent in full (sealed here under R, which the server holds) so that
// every report, whatever its transport, goes through the one pipeline and the same FS-chain
// verification. The frames' truncated seal is checked here against the seal recomputed from
// the verified chain; a mismatch is passed on as a seal that fails (bad-seal).

// Bounds on what one device's unassembled entries may hold in memory.
const (
	lpMaxPendingEntries = 64
	lpMaxFragments      = 30 // a 1024-byte payload takes 29
)

// lpDevice is the reassembly state of one device: lost on restart, which costs only a resend
// (the ack's anchor tells the device what the server has).
type lpDevice struct {
	frags  map[uint64]map[uint8][]byte // n → fragment index → data
	last   map[uint64]uint8            // n → index of the fragment marked last
	tokens [][]byte                    // LPWAN token frames waiting for a downlink slot
}

// Assembler is the LPWAN profile in front of one server: it holds the entry fragments
// being assembled and the token frames waiting for a downlink slot.
type Assembler struct {
	s    *server.Server
	st   store.Store
	mu   sync.Mutex
	devs map[string]*lpDevice
}

// New is the LPWAN profile's assembler for s.
func New(s *server.Server) *Assembler { return &Assembler{s: s, st: s.Store()} }

func (l *Assembler) dev(id string) *lpDevice {
	if l.devs == nil {
		l.devs = map[string]*lpDevice{}
	}
	d := l.devs[id]
	if d == nil {
		d = &lpDevice{frags: map[uint64]map[uint8][]byte{}, last: map[uint64]uint8{}}
		l.devs[id] = d
	}
	return d
}

// entry returns the reassembled entry n, if every fragment is there.
func (d *lpDevice) entry(n uint64) (*wire.Entry, bool) {
	last, ok := d.last[n]
	if !ok {
		return nil, false
	}
	var b []byte
	for i := uint8(0); i <= last; i++ {
		f, ok := d.frags[n][i]
		if !ok {
			return nil, false
		}
		b = append(b, f...)
	}
	e, err := wire.LPParseEntry(n, b)
	return e, err == nil
}

func (d *lpDevice) forgetUpTo(n uint64) {
	for k := range d.frags {
		if k <= n {
			delete(d.frags, k)
			delete(d.last, k)
		}
	}
}

// Result is what HandleFrame did with a frame.
type Result struct {
	Kind     string // "status", "entry"
	Downlink []byte // the frame to send to the device, nil when none is needed
	Reject   string // for a status: the pipeline's rejection reason, if any
}

// HandleFrame takes one uplink frame of the LPWAN profile from device dev (named by the
// link: the network server's DevEUI mapping or the topic). Frames that fail their MAC,
// size or layout are refused with the reason's name and change nothing.
func (l *Assembler) HandleFrame(ctx context.Context, dev string, frame []byte) (*Result, error) {
	d, err := l.st.GetDevice(ctx, dev)
	if err != nil {
		return nil, reject(server.ReasonUnknownDevice, "lpwan: device %q: %v", dev, err)
	}
	body, err := wire.LPOpen(frame, d.UplinkKey, d.ID, d.Epoch)
	if err != nil {
		reason := server.ReasonMalformed
		switch {
		case errors.Is(err, wire.ErrBadMAC):
			reason = server.ReasonBadMAC
		case errors.Is(err, wire.ErrOversize):
			reason = server.ReasonOversize
		}
		return nil, l.s.RefuseFrame(ctx, dev, reason, fmt.Sprintf("lpwan frame: %v", err))
	}
	switch body[0] {
	case wire.LPEntry:
		f, err := wire.DecodeLPEntry(body)
		if err != nil {
			return nil, reject(server.ReasonMalformed, "lpwan entry frame from %s: %v", dev, err)
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		ld := l.dev(dev)
		n := uint64(f.N)
		if n <= d.AnchorN || f.Index >= lpMaxFragments {
			return &Result{Kind: "entry"}, nil // already verified (a resend), or impossible
		}
		if _, ok := ld.frags[n]; !ok && len(ld.frags) >= lpMaxPendingEntries {
			return nil, reject(server.ReasonOversize, "lpwan: %s has %d entries pending assembly", dev, len(ld.frags))
		}
		if ld.frags[n] == nil {
			ld.frags[n] = map[uint8][]byte{}
		}
		ld.frags[n][f.Index] = f.Data // a duplicate (several gateways) overwrites the same bytes
		if f.Last {
			ld.last[n] = f.Index
		}
		return &Result{Kind: "entry"}, nil
	case wire.LPStatus:
		st, err := wire.DecodeLPStatus(body)
		if err != nil {
			return nil, reject(server.ReasonMalformed, "lpwan status frame from %s: %v", dev, err)
		}
		return l.status(ctx, d.ID, st)
	}
	return nil, reject(server.ReasonMalformed, "lpwan: frame type %#x is not an uplink", body[0])
}

// status turns a status and the entries gathered for it into a report for the pipeline.
func (l *Assembler) status(ctx context.Context, dev string, st *wire.LPStatusFrame) (*Result, error) {
	d, err := l.st.GetDevice(ctx, dev)
	if err != nil {
		return nil, err
	}
	if uint64(st.RSeq) <= d.LastRSeq {
		// Duplicates of a status from several gateways, or a replay: the first copy was
		// answered; the pipeline would only count a replay.
		return &Result{Kind: "status", Reject: server.ReasonReplay}, nil
	}
	var k fschain.Key
	copy(k[:], d.AnchorKey)
	var head fschain.Hash
	copy(head[:], d.AnchorHead)
	l.mu.Lock()
	ld := l.dev(dev)
	var entries []wire.Entry
	for n := d.AnchorN + 1; n <= uint64(st.N); n++ {
		e, ok := ld.entry(n)
		if !ok {
			break
		}
		entries = append(entries, *e)
	}
	l.mu.Unlock()
	claimed := uint64(st.N)
	if claimed > d.AnchorN && len(entries) == 0 {
		// Entries claimed but none arrived (lost frames): ask for them, verify nothing yet.
		return l.answer(dev, d.DownlinkKey, d.Epoch, st, d.AnchorN, d.AnchorHead, wire.LPResend, "")
	}
	// The head chain over the entries as sent, and the full seal it implies: equal in its
	// first 8 bytes to the status's seal, or the log was cut or altered (bad-seal below).
	h := head
	for i := range entries {
		h = fschain.EntryHead(dev, d.Epoch, h, &entries[i])
	}
	seg := wire.Segment{First: d.AnchorN + 1, Entries: entries, N: claimed, Head: h[:], Seal: make([]byte, 32)}
	if claimed >= d.AnchorN && (len(entries) == 0 || entries[len(entries)-1].N == claimed) {
		next := k
		for i := d.AnchorN; i < claimed; i++ {
			next = fschain.Evolve(next)
		}
		seal := fschain.Seal(dev, d.Epoch, next, claimed, h)
		if hmac.Equal(seal[:wire.LPSealPrefix], st.SealPrefix[:]) {
			seg.Seal = seal[:]
		}
	}
	if claimed < d.AnchorN {
		seg.First, seg.Head = claimed+1, make([]byte, 32) // rollback: the pipeline names it
	}
	root := make([]byte, 32)
	copy(root, st.RootPrefix[:])
	if m, err := l.s.Manifest(ctx, d.Product, uint64(st.ManVersion)); err == nil && hmac.Equal(m.Root[:wire.LPRootPrefix], st.RootPrefix[:]) {
		root = m.Root
	}
	r := &wire.Report{Dev: dev, Epoch: d.Epoch, RSeq: uint64(st.RSeq), Boot: uint32(st.Boot), Time: uint64(st.Time),
		Man:   wire.ManifestRef{Product: d.Product, Version: uint64(st.ManVersion), Root: root},
		Meas:  wire.Measurement{Status: st.MeasStatus, Bad: []wire.Finding{}},
		State: uint32(st.State), Log: seg, Nonce: d.Nonce, // no nonce on the air: rseq alone orders LPWAN reports
		Reading: &wire.Reading{Litres: uint64(st.Litres), Flags: uint32(st.Flow)}}
	sealed, err := wire.SealReport(r, d.UplinkKey)
	if err != nil {
		return nil, err
	}
	ackBytes, herr := l.s.HandleReport(ctx, sealed)
	var re *server.RejectError
	if herr != nil && !errors.As(herr, &re) {
		return nil, herr
	}
	if len(ackBytes) == 0 {
		return &Result{Kind: "status", Reject: re.Reason}, nil
	}
	a, err := wire.OpenAck(ackBytes, dev, d.DownlinkKey)
	if err != nil {
		return nil, fmt.Errorf("lpwan: reading the pipeline's ack: %w", err)
	}
	l.mu.Lock()
	ld = l.dev(dev)
	ld.forgetUpTo(a.Anchor.N)
	for _, c := range a.Commands {
		if t, err := wire.OpenToken(c, dev, d.DownlinkKey); err == nil {
			if f, err := lpToken(t, d.DownlinkKey, dev, d.Epoch); err == nil && !lpQueued(ld.tokens, f) {
				ld.tokens = append(ld.tokens, f)
			}
		}
	}
	l.mu.Unlock()
	var flags byte
	if a.Reject != "" {
		flags |= wire.LPRejected
	}
	if a.Anchor.N < claimed {
		flags |= wire.LPResend
	}
	return l.answer(dev, d.DownlinkKey, d.Epoch, st, a.Anchor.N, a.Anchor.Head, flags, a.Reject)
}

func lpQueued(q [][]byte, f []byte) bool {
	for _, x := range q {
		if string(x[1:17]) == string(f[1:17]) {
			return true
		}
	}
	return false
}

// answer picks the one downlink a class A device can take after this status: an ack when
// the device asked for one or something must be said (resend, rejection, a token waiting),
// else a waiting token, else nothing.
func (l *Assembler) answer(dev string, t []byte, epoch uint32, st *wire.LPStatusFrame, anchorN uint64, anchorHead []byte, flags byte, rej string) (*Result, error) {
	l.mu.Lock()
	ld := l.dev(dev)
	if len(ld.tokens) > 0 {
		flags |= wire.LPTokenFollow
	}
	res := &Result{Kind: "status", Reject: rej}
	switch {
	case st.Ctl&wire.LPAckRequest != 0 || flags&(wire.LPResend|wire.LPRejected) != 0:
		a := &wire.LPAckFrame{AckedRSeq: st.RSeq, AnchorN: uint32(anchorN), Flags: flags}
		copy(a.HeadPrefix[:], anchorHead)
		res.Downlink = wire.SealLPAck(a, t, dev, epoch)
	case len(ld.tokens) > 0:
		res.Downlink, ld.tokens = ld.tokens[0], ld.tokens[1:]
	}
	l.mu.Unlock()
	return res, nil
}

// lpToken re-frames a pipeline token for the LPWAN profile (manifest tokens do not fit).
func lpToken(t *wire.Token, key []byte, dev string, epoch uint32) ([]byte, error) {
	f := &wire.LPTokenFrame{Action: t.Action, UntilRSeq: uint32(min(t.UntilRSeq, 0xFFFFFFFF)), Expires: uint32(min(t.Expires, 0xFFFFFFFF)),
		Window: t.Args.Window, CheckIv: t.Args.CheckInterval, ReportIv: t.Args.ReportInterval}
	copy(f.ID[:], t.ID)
	return wire.SealLPToken(f, key, dev, epoch)
}

// reject is a rejection with a formatted detail.
func reject(reason, format string, args ...any) *server.RejectError {
	return &server.RejectError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
