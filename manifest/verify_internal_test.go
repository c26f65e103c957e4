package manifest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"testing/iotest"
)

func TestHashExactly(t *testing.T) {
	data := bytes.Repeat([]byte("fieldseal"), 1000) // 9000 bytes
	for _, bufSize := range []int{1, 7, 4096, 9000, 9001, 65536} {
		for _, tc := range []struct {
			name   string
			size   uint64
			wantN  uint64
			digest bool
		}{
			{"exact", 9000, 9000, true},
			{"grew", 8999, 9000, false},
			{"shrank", 9001, 9000, false},
			{"empty", 0, 1, false},
		} {
			for _, slow := range []bool{false, true} {
				if slow && tc.name == "grew" {
					continue // a short read is taken as end-of-file, as for regular files
				}
				r := bytes.NewReader(data)
				var rd interface{ Read([]byte) (int, error) } = r
				if slow {
					rd = iotest.HalfReader(r)
				}
				h := sha256.New()
				n, err := hashExactly(h, rd, tc.size, make([]byte, bufSize))
				if err != nil || (n != tc.wantN && !(tc.name != "exact" && n > tc.size)) {
					t.Fatalf("buf %d %s slow=%v: n=%d err=%v", bufSize, tc.name, slow, n, err)
				}
				if tc.digest {
					want := sha256.Sum256(data)
					if !bytes.Equal(h.Sum(nil), want[:]) {
						t.Fatalf("buf %d %s: wrong digest", bufSize, tc.name)
					}
				}
			}
		}
	}
}
