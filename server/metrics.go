package server

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/fieldseal/fieldseal/store"
)

// metrics are the server's Prometheus metrics, on their own registry (several servers may
// live in one test process).
type metrics struct {
	reg        *prometheus.Registry
	accepted   prometheus.Counter
	rejected   *prometheus.CounterVec
	latency    prometheus.Histogram
	verify     prometheus.Histogram
	batchSize  prometheus.Histogram
	unrecorded prometheus.Counter
	// lorawanDropped counts uplinks the LoRaWAN transport dropped (CountLoRaWANDrop).
	lorawanDropped *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldseal_reports_accepted_total", Help: "Reports verified, stored durably and acked."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fieldseal_reports_rejected_total", Help: "Reports rejected, by reason name."}, []string{"reason"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldseal_report_commit_seconds", Help: "Receive-to-commit latency of accepted reports.",
		Buckets: latencyBuckets()})
	m.verify = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldseal_report_handle_seconds", Help: "Time HandleReport takes, verification and commit included.",
		Buckets: latencyBuckets()})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fieldseal_commit_batch_size", Help: "Changes per group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	m.unrecorded = prometheus.NewCounter(prometheus.CounterOpts{Name: "fieldseal_rejections_unrecorded_total", Help: "Rejections of unauthenticated input counted but not stored as audit records (flood protection)."})
	m.lorawanDropped = newLoRaWANDropped()
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fieldseal_commit_queue_depth", Help: "Changes waiting for the group commit."},
		func() float64 { return float64(s.commit.depth()) })
	m.reg.MustRegister(m.accepted, m.rejected, m.unrecorded, m.lorawanDropped, m.latency, m.verify, m.batchSize, queue, &stateCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// latencyBuckets are 0.2 ms × 1.4^k (30 bounds, up to about 3 minutes) rounded to two
// significant digits: le="0.00039", not le="0.00039199999999999994".
func latencyBuckets() []float64 {
	b := prometheus.ExponentialBuckets(0.0002, 1.4, 30)
	for i, v := range b {
		b[i], _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	}
	return b
}

func (m *metrics) observe(err error, recv time.Time) {
	m.verify.Observe(time.Since(recv).Seconds())
	if err == nil {
		m.accepted.Inc()
		return
	}
	var re *RejectError
	if errors.As(err, &re) {
		m.rejected.WithLabelValues(re.Reason).Inc()
		return
	}
	m.rejected.WithLabelValues(Reason(err)).Inc()
}

// stateCollector reports devices by state, counted in the store at scrape time.
type stateCollector struct{ s *Server }

var devicesDesc = prometheus.NewDesc("fieldseal_devices", "Devices by state.", []string{"state"}, nil)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- devicesDesc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.s.st.CountDevices(ctx)
	if err != nil {
		return
	}
	for _, st := range store.States {
		ch <- prometheus.MustNewConstMetric(devicesDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
}

// Metrics is the server's Prometheus registry, for /metrics.
func (s *Server) Metrics() prometheus.Gatherer { return s.met.reg }
