package mpharness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fieldseal/fieldseal/manifest"
)

// BenchmarkGuard seals examples/watermeter and runs harness/bench.py in the MicroPython
// interpreter: verified vs plain import of the same .mpy files, and the heap the guard
// allocates beyond the files it keeps. Run by bench/guard.sh; the figures are logged and
// reported as metrics (ratio, check-heap-B, boot-heap-beyond-kept-B).
func BenchmarkGuard(b *testing.B) {
	dist, _ := buildExample(b)
	data := b.TempDir()
	os.Rename(filepath.Join(dist, "app"), filepath.Join(data, "app"))
	mod, _ := os.ReadFile(filepath.Join(dist, manifest.FrozenFile))
	os.WriteFile(filepath.Join(data, manifest.FrozenFile), mod, 0o644)
	for i := 0; i < b.N; i++ {
		res := runPyTB(b, "bench.py", data)
		r := res[0]
		b.ReportMetric(r["ratio"].(float64), "verified/plain")
		b.ReportMetric(r["plain_import_us"].(float64), "plain-us")
		b.ReportMetric(r["verified_import_us"].(float64), "verified-us")
		b.ReportMetric(r["check_heap_bytes"].(float64), "check-heap-B")
		b.ReportMetric(r["boot_heap_beyond_kept"].(float64), "measure-heap-beyond-kept-B")
		b.ReportMetric(r["device_boot_alloc_beyond_kept"].(float64), "boot-alloc-beyond-kept-B")
		b.Logf("%v", r)
	}
}
