package analytics

import (
	"fmt"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/sim"
)

// A district of 100 households on the simulator's consumption model, read every 15 min;
// from hour 8 one household's meter registers only 15% of what flows through it. The
// balance must show the step and the list must name that meter first.
func TestBypassTopsTheList(t *testing.T) {
	origin := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	const hours = 24
	bypass := origin.Add(8 * time.Hour)
	d := &District{Name: "d01", Meters: map[string]Series{}}
	var cons []sim.Consumption
	for i := 0; i < 100; i++ {
		per := 150 + float64(i%10)*50
		if i%20 == 7 {
			per *= 5 // a business
		}
		cons = append(cons, sim.Consumption{Seed: 42, Index: uint64(i), PerDay: per, Origin: origin})
	}
	victim := 33
	for i, c := range cons {
		var s Series
		for m := 0; m <= hours*4; m++ {
			at := origin.Add(time.Duration(m)*15*time.Minute + time.Duration(i)*time.Second)
			v := c.At(at)
			if i == victim && at.After(bypass) {
				b := c.At(bypass)
				v = b + 0.15*(v-b)
			}
			s = append(s, Read{T: at, Litres: float64(int64(v))})
		}
		d.Meters[fmt.Sprintf("m%03d", i)] = s
	}
	for m := 0; m <= hours*4; m++ {
		at := origin.Add(time.Duration(m) * 15 * time.Minute)
		var tot float64
		for _, c := range cons {
			tot += c.At(at)
		}
		d.Inlet = append(d.Inlet, Read{T: at, Litres: tot + 60*at.Sub(origin).Hours()})
	}
	in := Inspect(d, time.Hour)
	if in.StepAt.IsZero() || in.StepAt.Sub(bypass).Abs() > 2*time.Hour {
		t.Errorf("loss step found at %v, bypass was at %v", in.StepAt, bypass)
	}
	if len(in.List) < 3 || in.List[0].Device != fmt.Sprintf("m%03d", victim) {
		t.Fatalf("inspection list starts %+v", in.List[:3])
	}
	if in.List[0].Score < 1.1*in.List[1].Score || in.List[0].Fraction < 0.5 {
		t.Errorf("victim's score %.1f not clearly above the next %.1f", in.List[0].Score, in.List[1].Score)
	}
	if len(in.Night) == 0 || in.Night[0].UnaccountedH < 40 {
		t.Errorf("night flow %+v: want ~60 L/h unaccounted", in.Night)
	}
	t.Logf("step at %v, loss %.0f → %.0f L/h; top: %+v; next: %+v", in.StepAt.Format("15:04"), in.LossBefore, in.LossAfter, in.List[0], in.List[1])
}
