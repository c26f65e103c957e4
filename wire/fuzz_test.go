package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"
)

// Decoders must never panic and must never accept a mutated message under the right key.
func FuzzOpenReport(f *testing.F) {
	key := bytes.Repeat([]byte{0x52}, 32)
	for _, v := range GenerateVectors() {
		f.Add(mustHex(v.Cose))
	}
	f.Add([]byte{0xd1, 0x84, 0x43, 0xa1, 0x01, 0x05})
	valid := mustHex(GenerateVectors()[0].Cose)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseReport(data)
		if err != nil {
			return
		}
		r, err := OpenReport(m, key)
		if err != nil {
			return
		}
		// Accepted under R: must be the one genuine report, or re-encode to what was MAC'd.
		if !bytes.Equal(MustMarshal(r), m.Payload) && !bytes.Equal(data, valid) {
			t.Fatalf("accepted a payload that does not re-encode to itself")
		}
	})
}

func FuzzOpenAck(f *testing.F) {
	key := bytes.Repeat([]byte{0x54}, 32)
	for _, v := range GenerateVectors() {
		f.Add(mustHex(v.Cose))
	}
	k := NewMACKey(key)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := OpenAck(data, "meter-0001", key)
		if err == nil && a.Dev != "meter-0001" {
			t.Fatal("ack for another device accepted")
		}
		// The prepared key decides exactly as the key.
		if a2, err2 := OpenAckWith(data, "meter-0001", k); !sameOpen(a2, err2, a, err) {
			t.Fatalf("OpenAckWith %#v, %v; OpenAck %#v, %v", a2, err2, a, err)
		}
		_, _ = OpenToken(data, "meter-0001", key)
	})
}

func FuzzOpenManifest(f *testing.F) {
	vendor := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	files := []File{{Path: "main.mpy", Size: 1, SHA256: make([]byte, 32)}}
	signed, _ := SignManifest(&Manifest{Product: "p", Version: 1, Files: files, Root: FilesRoot(files), Policy: DefaultPolicy(), Mutable: []string{}}, vendor)
	f.Add(signed)
	pub := vendor.Public().(ed25519.PublicKey)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := OpenManifest(data, pub)
		if err != nil {
			return
		}
		if err := m.Check(); err != nil {
			t.Fatalf("accepted a manifest that fails Check: %v", err)
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzLPDecode: the LPWAN decoders never panic, and whatever decodes re-encodes to the same
// frame (one frame, one meaning). Corpus: testdata/fuzz/FuzzLPDecode.
func FuzzLPDecode(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	seed := func(b []byte, err error) {
		if err == nil {
			f.Add(b)
		}
	}
	seed(SealLPStatus(&LPStatusFrame{Ctl: LPAckRequest, RSeq: 9, N: 4}, key, "fz", 1))
	seed(SealLPEntry(&LPEntryFrame{N: 5, Last: true, Data: []byte("entry")}, key, "fz", 1))
	f.Add(SealLPAck(&LPAckFrame{AckedRSeq: 9, AnchorN: 4}, key, "fz", 1))
	seed(SealLPToken(&LPTokenFrame{Action: TokenConfig, CheckIv: 60, ReportIv: 900}, key, "fz", 1))
	f.Fuzz(func(t *testing.T, frame []byte) {
		body, err := LPOpen(frame, key, "fz", 1)
		if err != nil {
			// an unauthenticated frame is still decoded by nobody; check the decoders on it
			if len(frame) <= LPMACSize {
				return
			}
			body = frame[:len(frame)-LPMACSize]
		}
		var again []byte
		var rerr error
		switch {
		case len(body) == 0:
			return
		case body[0] == LPStatus:
			s, err := DecodeLPStatus(body)
			if err != nil {
				return
			}
			again, rerr = SealLPStatus(s, key, "fz", 1)
		case body[0] == LPEntry:
			e, err := DecodeLPEntry(body)
			if err != nil {
				return
			}
			again, rerr = SealLPEntry(e, key, "fz", 1)
			if e.Last {
				LPParseEntry(uint64(e.N), e.Data)
			}
		case body[0] == LPAck:
			a, err := DecodeLPAck(body)
			if err != nil {
				return
			}
			again = SealLPAck(a, key, "fz", 1)
		case body[0] == LPToken:
			k, err := DecodeLPToken(body)
			if err != nil {
				return
			}
			again, rerr = SealLPToken(k, key, "fz", 1)
		default:
			return
		}
		if rerr != nil {
			t.Fatalf("decoded but does not re-encode: %v", rerr)
		}
		if !bytes.Equal(again[:len(again)-LPMACSize], body) {
			t.Fatalf("re-encoded body differs:\n%x\n%x", body, again[:len(again)-LPMACSize])
		}
	})
}
