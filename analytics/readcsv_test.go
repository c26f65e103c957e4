package analytics

import (
	"strings"
	"testing"
)

func TestReadCSV(t *testing.T) {
	in := "meter,time,value\n" +
		"in,2026-03-02T01:00:00Z,200\n" +
		"in,2026-03-02T00:00:00Z,100\n" +
		"tank,2026-03-02T00:00:00+01:00,2.5\n" +
		"in,2026-03-02T01:00:00Z,200\n" // an identical repeat
	d, err := ReadCSV(strings.NewReader(in), map[string]bool{"tank": true})
	if err != nil {
		t.Fatal(err)
	}
	s := d.Registers["in"]
	if len(s) != 2 || s[0].Litres != 100 || s[1].Litres != 200 || len(d.Levels["tank"]) != 1 || d.Registers["tank"] != nil {
		t.Fatalf("registers %v, levels %v", d.Registers, d.Levels)
	}
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"a,b\n", "line 1: header"},
		{"meter,time,value\nin,yesterday,1\n", "line 2: time \"yesterday\" is not RFC 3339"},
		{"meter,time,value\nin,2026-03-02T00:00:00Z,NaN\n", "line 2: value \"NaN\""},
		{"meter,time,value\nin,2026-03-02T00:00:00Z\n", "line 2: 2 fields"},
		{"meter,time,value\n,2026-03-02T00:00:00Z,1\n", "line 2: empty meter"},
		{"meter,time,value\nin,2026-03-02T00:00:00Z,1\nin,2026-03-02T00:00:00Z,2\n", "read twice"},
		{"meter,time,value\n\"in,2026\n", "line 2"},
	} {
		_, err := ReadCSV(strings.NewReader(c.in), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
}

// FuzzReadCSV: any input either reads into time-sorted series without duplicates or fails
// with an error; it never panics.
func FuzzReadCSV(f *testing.F) {
	f.Add("meter,time,value\nin,2026-03-02T00:00:00Z,100\nin,2026-03-02T01:00:00Z,200\n")
	f.Add("meter,time,value\ntank,2026-03-02T00:00:00+01:00,2.5\n")
	f.Add("meter,time,value\n\"a\"\"b\",2026-03-02T00:00:00Z,1e3\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ReadCSV(strings.NewReader(in), map[string]bool{"tank": true})
		if err != nil {
			return
		}
		for _, m := range []map[string]Series{d.Registers, d.Levels} {
			for id, s := range m {
				for i := 1; i < len(s); i++ {
					if !s[i].T.After(s[i-1].T) {
						t.Fatalf("%s: reads %d and %d out of order or repeated", id, i-1, i)
					}
				}
			}
		}
	})
}
