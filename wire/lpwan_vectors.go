package wire

import (
	"bytes"
	"encoding/hex"
)

// LPVector is one cross-language vector of the LPWAN profile: a frame's fields, the keys
// and the exact bytes (testdata/vectors/lpwan/vectors.json; docs/PROTOCOL.md).
type LPVector struct {
	Name   string         `json:"name"`
	Dev    string         `json:"dev"`
	Epoch  uint32         `json:"epoch"`
	Key    string         `json:"key"` // hex: R for uplinks, T for downlinks
	Fields map[string]any `json:"fields"`
	Frame  string         `json:"frame"` // hex, MAC included
	Error  string         `json:"error,omitempty"`
}

// GenerateLPVectors builds the committed LPWAN vectors (deterministic).
func GenerateLPVectors() []LPVector {
	dev, epoch := "wm-0042", uint32(3)
	r := bytes.Repeat([]byte{0x52}, 32)
	t := bytes.Repeat([]byte{0x54}, 32)
	var out []LPVector
	st := &LPStatusFrame{Ctl: LPAckRequest, RSeq: 96, Boot: 7, Time: 1767312000, State: uint8(StateCoverWasOpen | StateTamperLatched),
		MeasStatus: MeasMismatch, BadFiles: 2, ManVersion: 4, RootPrefix: [4]byte{0xde, 0xad, 0xbe, 0xef}, N: 412,
		SealPrefix: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, Litres: 123456, Flow: 2}
	sf, _ := SealLPStatus(st, r, dev, epoch)
	out = append(out, LPVector{Name: "status", Dev: dev, Epoch: epoch, Key: hex.EncodeToString(r), Frame: hex.EncodeToString(sf),
		Fields: map[string]any{"ctl": st.Ctl, "rseq": st.RSeq, "boot": st.Boot, "time": st.Time, "state": st.State,
			"meas_status": st.MeasStatus, "bad_files": st.BadFiles, "man_version": st.ManVersion,
			"root_prefix": hex.EncodeToString(st.RootPrefix[:]), "n": st.N, "seal_prefix": hex.EncodeToString(st.SealPrefix[:]),
			"litres": st.Litres, "flow": st.Flow}})
	e := &Entry{N: 413, T: 1767312060, Type: EntryCheckFail, Payload: bytes.Repeat([]byte{0xa1}, 40), Tag: bytes.Repeat([]byte{0x7a}, 16)}
	frames, _ := LPEntryFrames(e, r, dev, epoch)
	for i, f := range frames {
		out = append(out, LPVector{Name: "entry-fragment-" + string(rune('0'+i)), Dev: dev, Epoch: epoch, Key: hex.EncodeToString(r),
			Frame: hex.EncodeToString(f), Fields: map[string]any{"n": e.N, "t": e.T, "type": e.Type,
				"payload": hex.EncodeToString(e.Payload), "tag": hex.EncodeToString(e.Tag), "index": i, "last": i == len(frames)-1}})
	}
	a := &LPAckFrame{AckedRSeq: 96, AnchorN: 412, HeadPrefix: [8]byte{9, 8, 7, 6, 5, 4, 3, 2}, Flags: LPTokenFollow}
	out = append(out, LPVector{Name: "ack", Dev: dev, Epoch: epoch, Key: hex.EncodeToString(t), Frame: hex.EncodeToString(SealLPAck(a, t, dev, epoch)),
		Fields: map[string]any{"acked_rseq": a.AckedRSeq, "anchor_n": a.AnchorN, "head_prefix": hex.EncodeToString(a.HeadPrefix[:]), "flags": a.Flags}})
	k := &LPTokenFrame{ID: [16]byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf},
		Action: TokenService, UntilRSeq: 106, Expires: 1767398400, Window: 3600}
	kf, _ := SealLPToken(k, t, dev, epoch)
	out = append(out, LPVector{Name: "token-service", Dev: dev, Epoch: epoch, Key: hex.EncodeToString(t), Frame: hex.EncodeToString(kf),
		Fields: map[string]any{"id": hex.EncodeToString(k.ID[:]), "action": k.Action, "until_rseq": k.UntilRSeq, "expires": k.Expires, "window": k.Window}})
	bad := append([]byte(nil), sf...)
	bad[len(bad)-1] ^= 1
	out = append(out, LPVector{Name: "status-flipped-mac", Dev: dev, Epoch: epoch, Key: hex.EncodeToString(r), Frame: hex.EncodeToString(bad), Error: "bad-mac"})
	other, _ := SealLPStatus(st, r, dev, epoch+1)
	out = append(out, LPVector{Name: "status-other-epoch", Dev: dev, Epoch: epoch, Key: hex.EncodeToString(r), Frame: hex.EncodeToString(other), Error: "bad-mac"})
	return out
}
