package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The compact LPWAN profile (docs/PROTOCOL.md, "LPWAN profile"): fixed-layout binary frames
// of at most LPMaxFrame bytes, MAC included, for LoRaWAN (EU868 DR0–2), NB-IoT and wM-Bus.
// The link (network server, topic) names the device; every frame's 8-byte MAC binds the
// device id and epoch. Uplinks are MAC'd under R, downlinks under T, with their own labels.

// LPMaxFrame is the largest frame of the profile, MAC included.
const LPMaxFrame = 51

// LPRoundFrames is the default budget of one uplink round, status included (the guard's
// lpwan.ROUND_FRAMES, the agent's LPMeter.MaxFrames): 8 frames take at most 5.6 s on air
// at SF10 (EU868 DR2), within the 1 % duty cycle of a 15-minute report slot (9 s); at SF12
// (DR0) 3 frames fit (8.4 s). A backlog goes out over several rounds (docs/PROTOCOL.md,
// "LPWAN profile", Flow).
const LPRoundFrames = 8

// LPMACSize is the truncated HMAC-SHA-256 tag every frame ends with.
const LPMACSize = 8

// Frame types: the first byte. Uplinks below 0x80, downlinks from 0x80.
const (
	LPStatus byte = 0x01 // routine status: counters, flags, reading, claimed n and seal
	LPEntry  byte = 0x02 // one fragment of one log entry
	LPAck    byte = 0x81 // acknowledgement: acked rseq and anchor
	LPToken  byte = 0x82 // a single-use command token
)

// Status ctl bits.
const (
	LPAckRequest   byte = 0x01 // the device asks for an ack with this frame's answer
	LPEntriesAhead byte = 0x02 // entry frames follow this status
)

// Ack flags.
const (
	LPResend      byte = 0x01 // the server lacks entries after the anchor: send them again
	LPTokenFollow byte = 0x02 // a token is queued: uplink again to fetch it
	LPRejected    byte = 0x04 // the status was refused (reason by name in the server's audit)
)

// Sizes of the fixed frames.
const (
	LPStatusSize = 45
	LPAckSize    = 26
	lpEntryHead  = 6 // type, n (u32), fragment byte
	// LPEntryChunk is the entry bytes one entry frame carries.
	LPEntryChunk = LPMaxFrame - lpEntryHead - LPMACSize
	// LPRootPrefix and LPSealPrefix are the truncated root and seal a status carries;
	// LPHeadPrefix the truncated anchor head an ack carries.
	LPRootPrefix = 4
	LPSealPrefix = 8
	LPHeadPrefix = 8
)

// ErrLPFrame is returned for a frame that is not one of the profile.
var ErrLPFrame = errors.New("malformed")

// LPStatusFrame is the routine status: one frame, 45 bytes.
//
//	0 type · 1 ctl · 2 rseq u32 · 6 boot u16 · 8 time u32 · 12 state u8 · 13 meas u8
//	(status bits 0–1, bad files (≤ 63) bits 2–7) · 14 manifest version u16 · 16 root[0:4]
//	· 20 n u32 · 24 seal_n[0:8] · 32 litres u32 · 36 flow flags u8 · 37 MAC[0:8]
type LPStatusFrame struct {
	Ctl        byte
	RSeq       uint32
	Boot       uint16
	Time       uint32
	State      uint8
	MeasStatus uint8 // MeasOK, MeasMismatch, MeasUnchecked
	BadFiles   uint8 // ≤ 63
	ManVersion uint16
	RootPrefix [LPRootPrefix]byte
	N          uint32
	SealPrefix [LPSealPrefix]byte
	Litres     uint32
	Flow       uint8
}

// LPEntryFrame carries entry bytes [Index*LPEntryChunk, …) of entry N; Last marks the final
// fragment. An entry's bytes are t (u32) · type (u16) · payload · tag (16).
type LPEntryFrame struct {
	N     uint32
	Index uint8 // 0..127
	Last  bool
	Data  []byte // 1..LPEntryChunk bytes
}

// LPAckFrame is the server's acknowledgement, 26 bytes:
// 0 type · 1 acked rseq u32 · 5 anchor n u32 · 9 anchor head[0:8] · 17 flags · 18 MAC[0:8].
type LPAckFrame struct {
	AckedRSeq  uint32
	AnchorN    uint32
	HeadPrefix [LPHeadPrefix]byte
	Flags      byte
}

// LPTokenFrame is a single-use command, 38 bytes plus its arguments (≤ 51):
// 0 type · 1 id (16) · 17 action u8 · 18 until rseq u32 · 22 expires u32 · 26 args · MAC[0:8].
// Args: service: window s (u32); config: check interval, report interval (u32 each);
// clear: none. Manifest tokens do not fit and are not carried by the profile.
type LPTokenFrame struct {
	ID        [16]byte
	Action    string // TokenService, TokenClear, TokenConfig
	UntilRSeq uint32
	Expires   uint32
	Window    uint32 // service
	CheckIv   uint32 // config
	ReportIv  uint32 // config
}

var lpActions = []string{"", TokenService, TokenClear, TokenConfig}

func lpActionCode(a string) (byte, bool) {
	for i, s := range lpActions {
		if i > 0 && s == a {
			return byte(i), true
		}
	}
	return 0, false
}

// LPMAC is the frame tag: HMAC-SHA-256(key, label ‖ lp(dev) ‖ u32(epoch) ‖ body)[0:8], label
// "fs1/lp-up" for uplinks (key R) and "fs1/lp-down" for downlinks (key T).
func LPMAC(key []byte, dev string, epoch uint32, body []byte) [LPMACSize]byte {
	label := "fs1/lp-up"
	if len(body) > 0 && body[0] >= 0x80 {
		label = "fs1/lp-down"
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{byte(len(dev) >> 8), byte(len(dev))})
	m.Write([]byte(dev))
	m.Write(binary.BigEndian.AppendUint32(nil, epoch))
	m.Write(body)
	var out [LPMACSize]byte
	copy(out[:], m.Sum(nil))
	return out
}

func lpSeal(key []byte, dev string, epoch uint32, body []byte) []byte {
	mac := LPMAC(key, dev, epoch, body)
	return append(body, mac[:]...)
}

// LPOpen checks a frame's size and MAC (key R for uplinks, T for downlinks) and returns its
// body without the MAC: ErrOversize, ErrLPFrame (malformed) or ErrBadMAC.
func LPOpen(frame []byte, key []byte, dev string, epoch uint32) ([]byte, error) {
	if len(frame) > LPMaxFrame {
		return nil, fmt.Errorf("%w: %d-byte frame", ErrOversize, len(frame))
	}
	if len(frame) < 1+LPMACSize {
		return nil, fmt.Errorf("%w: %d-byte frame", ErrLPFrame, len(frame))
	}
	body := frame[:len(frame)-LPMACSize]
	want := LPMAC(key, dev, epoch, body)
	if !hmac.Equal(want[:], frame[len(body):]) {
		return nil, ErrBadMAC
	}
	return body, nil
}

// SealLPStatus encodes and MACs a status frame under R.
func SealLPStatus(s *LPStatusFrame, r []byte, dev string, epoch uint32) ([]byte, error) {
	if s.MeasStatus > 3 || s.BadFiles > 63 {
		return nil, fmt.Errorf("%w: meas status %d, bad files %d", ErrLPFrame, s.MeasStatus, s.BadFiles)
	}
	b := make([]byte, 0, LPStatusSize)
	b = append(b, LPStatus, s.Ctl)
	b = binary.BigEndian.AppendUint32(b, s.RSeq)
	b = binary.BigEndian.AppendUint16(b, s.Boot)
	b = binary.BigEndian.AppendUint32(b, s.Time)
	b = append(b, s.State, s.MeasStatus|s.BadFiles<<2)
	b = binary.BigEndian.AppendUint16(b, s.ManVersion)
	b = append(b, s.RootPrefix[:]...)
	b = binary.BigEndian.AppendUint32(b, s.N)
	b = append(b, s.SealPrefix[:]...)
	b = binary.BigEndian.AppendUint32(b, s.Litres)
	b = append(b, s.Flow)
	return lpSeal(r, dev, epoch, b), nil
}

// SealLPEntry encodes and MACs an entry fragment under R.
func SealLPEntry(e *LPEntryFrame, r []byte, dev string, epoch uint32) ([]byte, error) {
	if len(e.Data) == 0 || len(e.Data) > LPEntryChunk || e.Index > 127 {
		return nil, fmt.Errorf("%w: entry fragment %d of %d bytes", ErrLPFrame, e.Index, len(e.Data))
	}
	b := make([]byte, 0, LPMaxFrame)
	b = append(b, LPEntry)
	b = binary.BigEndian.AppendUint32(b, e.N)
	f := e.Index
	if e.Last {
		f |= 0x80
	}
	b = append(b, f)
	b = append(b, e.Data...)
	return lpSeal(r, dev, epoch, b), nil
}

// SealLPAck encodes and MACs an ack under T.
func SealLPAck(a *LPAckFrame, t []byte, dev string, epoch uint32) []byte {
	b := make([]byte, 0, LPAckSize)
	b = append(b, LPAck)
	b = binary.BigEndian.AppendUint32(b, a.AckedRSeq)
	b = binary.BigEndian.AppendUint32(b, a.AnchorN)
	b = append(b, a.HeadPrefix[:]...)
	b = append(b, a.Flags)
	return lpSeal(t, dev, epoch, b)
}

// SealLPToken encodes and MACs a token under T.
func SealLPToken(k *LPTokenFrame, t []byte, dev string, epoch uint32) ([]byte, error) {
	code, ok := lpActionCode(k.Action)
	if !ok {
		return nil, fmt.Errorf("%w: action %q is not carried by the LPWAN profile", ErrUnsupported, k.Action)
	}
	b := make([]byte, 0, LPMaxFrame)
	b = append(b, LPToken)
	b = append(b, k.ID[:]...)
	b = append(b, code)
	b = binary.BigEndian.AppendUint32(b, k.UntilRSeq)
	b = binary.BigEndian.AppendUint32(b, k.Expires)
	switch k.Action {
	case TokenService:
		b = binary.BigEndian.AppendUint32(b, k.Window)
	case TokenConfig:
		b = binary.BigEndian.AppendUint32(b, k.CheckIv)
		b = binary.BigEndian.AppendUint32(b, k.ReportIv)
	}
	return lpSeal(t, dev, epoch, b), nil
}

// DecodeLPStatus decodes an opened status body (LPOpen).
func DecodeLPStatus(body []byte) (*LPStatusFrame, error) {
	if len(body) != LPStatusSize-LPMACSize || body[0] != LPStatus {
		return nil, fmt.Errorf("%w: not a status frame", ErrLPFrame)
	}
	s := &LPStatusFrame{Ctl: body[1], RSeq: binary.BigEndian.Uint32(body[2:]), Boot: binary.BigEndian.Uint16(body[6:]),
		Time: binary.BigEndian.Uint32(body[8:]), State: body[12], MeasStatus: body[13] & 3, BadFiles: body[13] >> 2,
		ManVersion: binary.BigEndian.Uint16(body[14:]), N: binary.BigEndian.Uint32(body[20:]),
		Litres: binary.BigEndian.Uint32(body[32:]), Flow: body[36]}
	copy(s.RootPrefix[:], body[16:20])
	copy(s.SealPrefix[:], body[24:32])
	if s.Ctl&^(LPAckRequest|LPEntriesAhead) != 0 {
		return nil, fmt.Errorf("%w: unknown ctl bits %#x", ErrLPFrame, s.Ctl)
	}
	return s, nil
}

// DecodeLPEntry decodes an opened entry fragment body.
func DecodeLPEntry(body []byte) (*LPEntryFrame, error) {
	if len(body) < lpEntryHead+1 || len(body) > LPMaxFrame-LPMACSize || body[0] != LPEntry {
		return nil, fmt.Errorf("%w: not an entry frame", ErrLPFrame)
	}
	return &LPEntryFrame{N: binary.BigEndian.Uint32(body[1:]), Index: body[5] & 0x7f, Last: body[5]&0x80 != 0,
		Data: append([]byte(nil), body[lpEntryHead:]...)}, nil
}

// DecodeLPAck decodes an opened ack body.
func DecodeLPAck(body []byte) (*LPAckFrame, error) {
	if len(body) != LPAckSize-LPMACSize || body[0] != LPAck {
		return nil, fmt.Errorf("%w: not an ack frame", ErrLPFrame)
	}
	a := &LPAckFrame{AckedRSeq: binary.BigEndian.Uint32(body[1:]), AnchorN: binary.BigEndian.Uint32(body[5:]), Flags: body[17]}
	copy(a.HeadPrefix[:], body[9:17])
	if a.Flags&^(LPResend|LPTokenFollow|LPRejected) != 0 {
		return nil, fmt.Errorf("%w: unknown ack flags %#x", ErrLPFrame, a.Flags)
	}
	return a, nil
}

// DecodeLPToken decodes an opened token body.
func DecodeLPToken(body []byte) (*LPTokenFrame, error) {
	if len(body) < 26 || body[0] != LPToken {
		return nil, fmt.Errorf("%w: not a token frame", ErrLPFrame)
	}
	k := &LPTokenFrame{UntilRSeq: binary.BigEndian.Uint32(body[18:]), Expires: binary.BigEndian.Uint32(body[22:])}
	copy(k.ID[:], body[1:17])
	code := int(body[17])
	if code == 0 || code >= len(lpActions) {
		return nil, fmt.Errorf("%w: unknown action %d", ErrLPFrame, code)
	}
	k.Action = lpActions[code]
	args := body[26:]
	want := map[string]int{TokenService: 4, TokenClear: 0, TokenConfig: 8}[k.Action]
	if len(args) != want {
		return nil, fmt.Errorf("%w: %s token with %d argument bytes", ErrLPFrame, k.Action, len(args))
	}
	switch k.Action {
	case TokenService:
		k.Window = binary.BigEndian.Uint32(args)
	case TokenConfig:
		k.CheckIv, k.ReportIv = binary.BigEndian.Uint32(args), binary.BigEndian.Uint32(args[4:])
	}
	return k, nil
}

// LPEntryBytes is an entry's bytes for the entry frames: t (u32) · type (u16) · payload · tag.
func LPEntryBytes(e *Entry) ([]byte, error) {
	if e.T > 0xFFFFFFFF || e.N > 0xFFFFFFFF || len(e.Tag) != 16 || len(e.Payload) > MaxPayload {
		return nil, fmt.Errorf("%w: entry %d does not fit the LPWAN profile", ErrLPFrame, e.N)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(e.T))
	b = binary.BigEndian.AppendUint16(b, e.Type)
	b = append(b, e.Payload...)
	return append(b, e.Tag...), nil
}

// LPParseEntry is the inverse of LPEntryBytes for entry n.
func LPParseEntry(n uint64, b []byte) (*Entry, error) {
	if len(b) < 6+16 || len(b) > 6+MaxPayload+16 {
		return nil, fmt.Errorf("%w: entry %d of %d bytes", ErrLPFrame, n, len(b))
	}
	return &Entry{N: n, T: uint64(binary.BigEndian.Uint32(b)), Type: binary.BigEndian.Uint16(b[4:]),
		Payload: append([]byte{}, b[6:len(b)-16]...), Tag: append([]byte(nil), b[len(b)-16:]...)}, nil
}

// LPEntryFrames splits an entry into sealed entry frames under R.
func LPEntryFrames(e *Entry, r []byte, dev string, epoch uint32) ([][]byte, error) {
	data, err := LPEntryBytes(e)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i := 0; i*LPEntryChunk < len(data); i++ {
		end := min((i+1)*LPEntryChunk, len(data))
		f, err := SealLPEntry(&LPEntryFrame{N: uint32(e.N), Index: uint8(i), Last: end == len(data), Data: data[i*LPEntryChunk : end]}, r, dev, epoch)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
