package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// The committed LPWAN vectors are what the generator produces: regenerate with
// `go run ./wire/internal/lpvectorgen` after a deliberate change.
func TestLPVectorsAreCurrent(t *testing.T) {
	committed, err := os.ReadFile("../testdata/vectors/lpwan/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := json.MarshalIndent(GenerateLPVectors(), "", "  ")
	if !bytes.Equal(bytes.TrimSpace(committed), fresh) {
		t.Fatal("testdata/vectors/lpwan/vectors.json is stale: go run ./wire/internal/lpvectorgen")
	}
}

// Every committed vector opens (or fails by its stated name) and decodes to its fields.
func TestLPVectorsDecode(t *testing.T) {
	var vs []LPVector
	raw, _ := os.ReadFile("../testdata/vectors/lpwan/vectors.json")
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	var entry []byte
	for _, v := range vs {
		key, _ := hex.DecodeString(v.Key)
		frame, _ := hex.DecodeString(v.Frame)
		if len(frame) > LPMaxFrame {
			t.Fatalf("%s: %d bytes", v.Name, len(frame))
		}
		body, err := LPOpen(frame, key, v.Dev, v.Epoch)
		if v.Error != "" {
			if err == nil || err.Error() != v.Error {
				t.Fatalf("%s: %v, want %s", v.Name, err, v.Error)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		switch body[0] {
		case LPStatus:
			s, err := DecodeLPStatus(body)
			if err != nil || s.RSeq != uint32(v.Fields["rseq"].(float64)) || s.N != uint32(v.Fields["n"].(float64)) ||
				hex.EncodeToString(s.SealPrefix[:]) != v.Fields["seal_prefix"] || s.BadFiles != uint8(v.Fields["bad_files"].(float64)) {
				t.Fatalf("%s: %+v %v", v.Name, s, err)
			}
		case LPEntry:
			f, err := DecodeLPEntry(body)
			if err != nil || int(f.Index) != int(v.Fields["index"].(float64)) || f.Last != v.Fields["last"].(bool) {
				t.Fatalf("%s: %+v %v", v.Name, f, err)
			}
			entry = append(entry, f.Data...)
			if f.Last {
				e, err := LPParseEntry(uint64(f.N), entry)
				if err != nil || hex.EncodeToString(e.Payload) != v.Fields["payload"] || hex.EncodeToString(e.Tag) != v.Fields["tag"] ||
					e.T != uint64(v.Fields["t"].(float64)) {
					t.Fatalf("%s: reassembled %+v %v", v.Name, e, err)
				}
			}
		case LPAck:
			a, err := DecodeLPAck(body)
			if err != nil || a.AnchorN != uint32(v.Fields["anchor_n"].(float64)) || a.Flags != byte(v.Fields["flags"].(float64)) {
				t.Fatalf("%s: %+v %v", v.Name, a, err)
			}
		case LPToken:
			k, err := DecodeLPToken(body)
			if err != nil || k.Action != v.Fields["action"] || k.Window != uint32(v.Fields["window"].(float64)) {
				t.Fatalf("%s: %+v %v", v.Name, k, err)
			}
		}
	}
	if entry == nil {
		t.Fatal("no entry vectors")
	}
}

// Every frame of the profile fits 51 bytes, MAC included: the largest entry (1024-byte
// payload) takes 29 frames of at most 51; the largest token 42.
func TestLPFramesFit51(t *testing.T) {
	key := bytes.Repeat([]byte{1}, 32)
	e := &Entry{N: 1 << 31, T: 1 << 31, Type: EntryCheckFail, Payload: bytes.Repeat([]byte{9}, MaxPayload), Tag: make([]byte, 16)}
	frames, err := LPEntryFrames(e, key, "d", 1)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for i, f := range frames {
		if len(f) > LPMaxFrame {
			t.Fatalf("frame %d: %d bytes", i, len(f))
		}
		body, err := LPOpen(f, key, "d", 1)
		if err != nil {
			t.Fatal(err)
		}
		fr, _ := DecodeLPEntry(body)
		all = append(all, fr.Data...)
	}
	back, err := LPParseEntry(e.N, all)
	if err != nil || !bytes.Equal(back.Payload, e.Payload) || back.T != e.T || back.Type != e.Type {
		t.Fatalf("reassembled %v", err)
	}
	if len(frames) != 29 {
		t.Fatalf("%d frames for a maximal entry, want 29", len(frames))
	}
	cfg, _ := SealLPToken(&LPTokenFrame{Action: TokenConfig, CheckIv: 1, ReportIv: 2}, key, "d", 1)
	st, _ := SealLPStatus(&LPStatusFrame{}, key, "d", 1)
	ack := SealLPAck(&LPAckFrame{}, key, "d", 1)
	if len(cfg) != 42 || len(st) != LPStatusSize || len(ack) != LPAckSize {
		t.Fatalf("sizes: token %d status %d ack %d", len(cfg), len(st), len(ack))
	}
	if _, err := SealLPToken(&LPTokenFrame{Action: TokenManifest}, key, "d", 1); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("manifest token: %v", err)
	}
	if _, err := LPEntryBytes(&Entry{N: 1, T: 1 << 32, Tag: make([]byte, 16)}); err == nil {
		t.Fatal("a time past 2106 must not be silently truncated")
	}
}

// The MAC binds the key, device, epoch and direction: an uplink under T, a frame of
// another device or epoch, a flipped bit anywhere all fail.
func TestLPMACBinds(t *testing.T) {
	r, tk := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	f, _ := SealLPStatus(&LPStatusFrame{RSeq: 5, N: 3}, r, "wm-1", 1)
	if _, err := LPOpen(f, r, "wm-1", 1); err != nil {
		t.Fatal(err)
	}
	for name, try := range map[string]func() error{
		"key T":        func() error { _, err := LPOpen(f, tk, "wm-1", 1); return err },
		"other device": func() error { _, err := LPOpen(f, r, "wm-2", 1); return err },
		"other epoch":  func() error { _, err := LPOpen(f, r, "wm-1", 2); return err },
	} {
		if err := try(); !errors.Is(err, ErrBadMAC) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for i := range f {
		g := bytes.Clone(f)
		g[i] ^= 0x10
		if _, err := LPOpen(g, r, "wm-1", 1); !errors.Is(err, ErrBadMAC) {
			t.Fatalf("bit flipped in byte %d: %v", i, err)
		}
	}
	if _, err := LPOpen(make([]byte, 52), r, "wm-1", 1); !errors.Is(err, ErrOversize) {
		t.Fatalf("52 bytes: %v", err)
	}
}

// The routine report: the LPWAN status is at least 4× smaller than the COSE report.
func TestLPStatusVersusCOSE(t *testing.T) {
	st, _ := SealLPStatus(&LPStatusFrame{}, make([]byte, 32), "wm-0000001", 1)
	if len(st)*4 > 207 {
		t.Fatalf("status %d bytes: not 4× under the 207-byte COSE routine report", len(st))
	}
}
