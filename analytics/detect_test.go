package analytics

import (
	"math/rand/v2"
	"testing"
)

// The threshold's promise, checked on the data it assumes: standard normal samples, k =
// 0.5, in-control ARL 200. A CUSUM restarted after each alarm must alarm once per ~200
// samples (Siegmund's approximation is good to a few %).
func TestCUSUMThresholdGivesItsFalseAlarmRate(t *testing.T) {
	const k, arl, n = 0.5, 200.0, 400000
	h := CUSUMThreshold(k, arl)
	rng := rand.New(rand.NewPCG(1, 2))
	var s float64
	alarms := 0
	for range n {
		s = max(0, s+rng.NormFloat64()-k)
		if s > h {
			alarms++
			s = 0
		}
	}
	got := float64(n) / float64(alarms)
	if got < 0.85*arl || got > 1.15*arl {
		t.Errorf("h = %.3f: observed ARL %.0f, designed %.0f", h, got, arl)
	}
	if h2 := CUSUMThreshold(k, 10*arl); h2 <= h {
		t.Errorf("a longer ARL must raise the threshold: %.3f ≤ %.3f", h2, h)
	}
}
