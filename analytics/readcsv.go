package analytics

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReadCSV reads reads from CSV with the header "meter,time,value": one read per row, time
// in RFC 3339 (2026-03-02T06:00:00Z or with an offset), value the cumulative register in
// litres, or for the sensors named in levels the tank level in metres. Rows may come in
// any order; each series is sorted by time. A time read twice with different values is an
// error (which one is true?); an identical repeat is dropped. Errors name the line.
func ReadCSV(r io.Reader, levels map[string]bool) (Data, error) {
	d := Data{Registers: map[string]Series{}, Levels: map[string]Series{}}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return d, errors.New("empty: want a header line \"meter,time,value\" and one read per line")
	}
	if err != nil {
		return d, csvErr(err)
	}
	if len(head) != 3 || !strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(head[0], "\ufeff")), "meter") ||
		!strings.EqualFold(strings.TrimSpace(head[1]), "time") || !strings.EqualFold(strings.TrimSpace(head[2]), "value") {
		return d, fmt.Errorf("line 1: header is %q, want \"meter,time,value\"", strings.Join(head, ","))
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return d, csvErr(err)
		}
		if len(rec) != 3 {
			return d, fmt.Errorf("line %d: %d fields, want 3 (meter,time,value)", line, len(rec))
		}
		id := strings.TrimSpace(rec[0])
		if id == "" {
			return d, fmt.Errorf("line %d: empty meter name", line)
		}
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[1]))
		if err != nil {
			return d, fmt.Errorf("line %d: time %q is not RFC 3339 (e.g. 2026-03-02T06:00:00Z)", line, rec[1])
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[2]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return d, fmt.Errorf("line %d: value %q is not a number", line, rec[2])
		}
		m := d.Registers
		if levels[id] {
			m = d.Levels
		}
		m[id] = append(m[id], Read{T: t, Litres: v})
	}
	for _, m := range []map[string]Series{d.Registers, d.Levels} {
		for id, s := range m {
			sort.SliceStable(s, func(i, j int) bool { return s[i].T.Before(s[j].T) })
			out := s[:0]
			for _, r := range s {
				if n := len(out); n > 0 && out[n-1].T.Equal(r.T) {
					if out[n-1].Litres != r.Litres {
						return d, fmt.Errorf("meter %q read twice at %s with different values (%g and %g)", id, r.T.Format(time.RFC3339), out[n-1].Litres, r.Litres)
					}
					continue
				}
				out = append(out, r)
			}
			m[id] = out
		}
	}
	return d, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}
