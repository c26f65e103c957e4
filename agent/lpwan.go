package agent

import (
	"bytes"
	"fmt"

	"github.com/fieldseal/fieldseal/wire"
)

// LPMeter speaks the LPWAN profile (docs/PROTOCOL.md, "LPWAN profile") for a Device: the
// simulated town's LoRaWAN meters and the tests of the server's LPWAN ingest. Each uplink
// round sends the oldest log entries not sent yet (entry frames, one entry across as many
// frames as it needs), at most MaxFrames frames in all, and then one status frame; a round
// may end inside an entry, whose next fragment opens the next round. The device asks for an ack every AckEvery rounds,
// or at once after a tamper-class entry or when many entries wait unacknowledged.
type LPMeter struct {
	d *Device
	// AckEvery asks for an ack every n-th status (default 24: a day at 15-minute reports
	// costs the network one downlink).
	AckEvery int
	// MaxUnacked asks for an ack when this many entries wait unacknowledged (default 32).
	MaxUnacked int
	// MaxFrames bounds a round's frames, the status included (default wire.LPRoundFrames;
	// at least 2): the rest of a backlog goes in later rounds.
	MaxFrames int
	sentN     uint64 // the newest entry whose fragments all went out
	sentI     int    // fragments of entry sentN+1 that went out (a round ended inside it)
	rounds    int
	lastRSeq  uint32
}

// NewLPMeter wraps d.
func NewLPMeter(d *Device) *LPMeter {
	return &LPMeter{d: d, AckEvery: 24, MaxUnacked: 32, MaxFrames: wire.LPRoundFrames}
}

// Errors of the LPWAN downlink, besides those HandleAck returns.
var ErrLPStale = fmt.Errorf("%w (lpwan)", ErrStaleAck)

// Uplink returns the frames of one round, in the order they should go out.
func (m *LPMeter) Uplink(now uint64) ([][]byte, error) {
	d := m.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expireService(now)
	seg := d.w.Segment()
	var frames [][]byte
	tamper := false
	room := max(m.MaxFrames, 2) - 1 // the status takes one
	for i := range seg.Entries {
		e := &seg.Entries[i]
		if e.N <= m.sentN {
			continue
		}
		if len(frames) >= room {
			break
		}
		if e.N != m.sentN+1 {
			m.sentI = 0 // pruned past a partly sent entry: start the next afresh
		}
		fs, err := wire.LPEntryFrames(e, d.b.UplinkKey, d.b.Device, d.b.Epoch)
		if err != nil {
			return nil, err
		}
		fs = fs[min(m.sentI, len(fs)):]
		if len(fs) > room-len(frames) {
			fs = fs[:room-len(frames)]
			m.sentN, m.sentI = e.N-1, m.sentI+len(fs)
		} else {
			m.sentN, m.sentI = e.N, 0
		}
		frames = append(frames, fs...)
		tamper = tamper || wire.IsTamper(e.Type)
	}
	d.st.RSeq++
	if err := d.save(); err != nil {
		d.st.RSeq--
		return nil, err
	}
	if d.st.RSeq > 0xFFFFFFFF || seg.N > 0xFFFFFFFF {
		return nil, fmt.Errorf("lpwan: counters beyond 32 bits (rseq %d, n %d)", d.st.RSeq, seg.N)
	}
	m.rounds++
	st := &wire.LPStatusFrame{RSeq: uint32(d.st.RSeq), Boot: uint16(d.st.Boot), Time: uint32(now), State: uint8(d.flags()),
		MeasStatus: d.meas.Status, BadFiles: uint8(min(len(d.meas.Bad), 63)), ManVersion: uint16(d.man.Version), N: uint32(seg.N)}
	copy(st.RootPrefix[:], d.man.Root)
	copy(st.SealPrefix[:], seg.Seal)
	if d.read != nil {
		st.Litres, st.Flow = uint32(d.read.Litres), uint8(d.read.Flags)
	}
	if tamper || (m.AckEvery > 0 && m.rounds%m.AckEvery == 0) || len(seg.Entries) >= m.MaxUnacked {
		st.Ctl |= wire.LPAckRequest
	}
	if len(frames) > 0 {
		st.Ctl |= wire.LPEntriesAhead
	}
	f, err := wire.SealLPStatus(st, d.b.UplinkKey, d.b.Device, d.b.Epoch)
	if err != nil {
		return nil, err
	}
	m.lastRSeq = st.RSeq
	return append(frames, f), nil
}

// Downlink applies an LPWAN downlink (ack or token) by the downlink rules of PROTOCOL.md:
// the same checks as a COSE ack, with the anchor head compared on its first 8 bytes.
func (m *LPMeter) Downlink(frame []byte, now uint64) error {
	d := m.d
	d.mu.Lock()
	defer d.mu.Unlock()
	body, err := wire.LPOpen(frame, d.b.DownlinkKey, d.b.Device, d.b.Epoch)
	if err != nil {
		return d.badDownlink(now, ackWhy(err), "lpwan: "+err.Error())
	}
	switch body[0] {
	case wire.LPToken:
		k, err := wire.DecodeLPToken(body)
		if err != nil {
			return d.badDownlink(now, WhyMalformed, "lpwan token: "+err.Error())
		}
		t := &wire.Token{Dev: d.b.Device, Epoch: d.b.Epoch, ID: k.ID[:], Action: k.Action, UntilRSeq: uint64(k.UntilRSeq),
			Expires: uint64(k.Expires), Args: wire.TokenArgs{Window: k.Window, CheckInterval: k.CheckIv, ReportInterval: k.ReportIv}}
		return d.applyOpenToken(t, now, false)
	case wire.LPAck:
	default:
		return d.badDownlink(now, WhyMalformed, fmt.Sprintf("lpwan: frame type %#x is not a downlink", body[0]))
	}
	a, err := wire.DecodeLPAck(body)
	if err != nil {
		return d.badDownlink(now, WhyMalformed, "lpwan ack: "+err.Error())
	}
	acked := uint64(a.AckedRSeq)
	if acked == 0 || acked > d.st.RSeq {
		return d.badDownlink(now, WhyUnsentRSeq, fmt.Sprintf("lpwan ack: acks report %d, last sent %d", acked, d.st.RSeq))
	}
	if acked < d.st.RSeq {
		return ErrLPStale
	}
	n, _, _ := d.w.State()
	an := uint64(a.AnchorN)
	if an > n {
		return d.badDownlink(now, WhyAnchorAhead, fmt.Sprintf("lpwan ack: anchor %d beyond log head %d", an, n))
	}
	h, ok := d.w.HeadAt(an)
	if ok && !bytes.Equal(h[:wire.LPHeadPrefix], a.HeadPrefix[:]) {
		return d.badDownlink(now, WhyAnchorMismatch, fmt.Sprintf("lpwan ack: anchor head at %d is not the log's", an))
	}
	if a.Flags&wire.LPRejected != 0 {
		return fmt.Errorf("%w: (lpwan: the reason is in the server's audit)", ErrRejected)
	}
	d.st.AckedRSeq = acked
	if err := d.settleBadDownlinks(now); err != nil {
		return err
	}
	if ok && len(d.w.Segment().Entries) > 0 {
		if err := d.w.Prune(an, h); err != nil {
			return d.badDownlink(now, WhyAnchorMismatch, "lpwan ack: "+err.Error())
		}
	}
	if m.sentN < an || (a.Flags&wire.LPResend != 0 && m.sentN > an) {
		// The server lacks what follows its anchor: send it again, from its first fragment.
		// At sentN == an it holds every entry sent whole; a round cut inside the next entry
		// goes on with that entry's remaining fragments (the server keeps them).
		m.sentN, m.sentI = an, 0
	}
	return nil
}

// Pending is how many entries wait unacknowledged.
func (m *LPMeter) Pending() int { return len(m.d.Segment().Entries) }
