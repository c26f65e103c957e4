package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The committed vectors are what the generator produces: regenerate with
// `go run ./wire/internal/vectorgen` after a deliberate change (and bump ProtocolVersion).
func TestVectorsAreCurrent(t *testing.T) {
	committed, err := os.ReadFile("../testdata/vectors/wire/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := json.MarshalIndent(GenerateVectors(), "", "  ")
	if !bytes.Equal(bytes.TrimSpace(committed), fresh) {
		t.Fatal("testdata/vectors/wire/vectors.json is stale: run go run ./wire/internal/vectorgen")
	}
}

// Every vector decodes, verifies and re-encodes to the same bytes; negative ones fail by name.
func TestVectorsDecode(t *testing.T) {
	var vs []WireVector
	raw, _ := os.ReadFile("../testdata/vectors/wire/vectors.json")
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Run(v.Desc, func(t *testing.T) {
			cose, key := unhex(t, v.Cose), unhex(t, v.Key)
			var payload []byte
			var err error
			switch v.Kind {
			case "report":
				var m *Maced
				if m, err = ParseReport(cose); err == nil {
					var r *Report
					if r, err = OpenReport(m, key); err == nil {
						payload = MustMarshal(r)
					}
				}
			case "ack":
				var a *Ack
				if a, err = OpenAck(cose, "meter-0001", key); err == nil {
					payload = MustMarshal(a)
				}
			case "token":
				var tk *Token
				if tk, err = OpenToken(cose, "meter-0001", key); err == nil {
					payload = MustMarshal(tk)
				}
			case "receipt":
				var r *Receipt
				pub := ed25519.NewKeyFromSeed(key).Public().(ed25519.PublicKey)
				if r, err = OpenReceipt(cose, pub); err == nil {
					payload = MustMarshal(r)
				}
			default:
				t.Fatalf("unknown kind %q", v.Kind)
			}
			if v.WantErr != "" {
				if err == nil || !errors.Is(err, errByName(v.WantErr)) {
					t.Fatalf("got %v, want %s", err, v.WantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(payload) != v.Payload {
				t.Fatalf("payload re-encodes differently")
			}
		})
	}
}

func errByName(name string) error {
	for _, e := range []error{ErrMalformed, ErrOversize, ErrBadMAC, ErrBadSig, ErrUnknownKey, ErrUnsupported} {
		if e.Error() == name {
			return e
		}
	}
	return errors.New("unknown error name " + name)
}
