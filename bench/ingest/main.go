// Command ingest is the fleet server's ingest benchmark: a load generator in its own
// process that starts `fieldseal server` (SQLite, embedded broker) as a child process,
// provisions simulated devices with real FS-chain logs, and prints in one run:
//
//   - the raw publish→deliver rate of the same broker software (mochi, no hooks, no
//     processing), for comparison;
//   - verified + durably stored reports/s over MQTT (each device publishes, waits for its
//     ack on its downlink topic, then sends the next report);
//   - the same over HTTP batches (gateways posting /v1/reports:batch);
//   - p50/p99 receive-to-commit latency (server histogram) and publish-to-ack latency
//     (client clock).
//
// Run: go run ./bench/ingest [-devices 1000] [-duration 8s] [-entries 1] [-runs 3]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/wire"
)

var (
	nDevices = flag.Int("devices", 1000, "simulated devices (one MQTT connection each)")
	duration = flag.Duration("duration", 8*time.Second, "length of each measured phase")
	entries  = flag.Int("entries", 1, "new log entries per report (0 = routine report, no entries)")
	batch    = flag.Int("batch", 100, "reports per HTTP batch")
	runs     = flag.Int("runs", 3, "measure each phase this many times (the summary is the median)")
	bin      = flag.String("bin", "", "fieldseal binary (default: go build ./cmd/fieldseal)")
	keep     = flag.Bool("keep", false, "keep the data folder")
	srvFlags = flag.String("server-flags", "", "extra flags for fieldseal server, space-separated (e.g. \"--commit-linger 5ms\")")
	cpuProf  = flag.String("cpuprofile", "", "write the load generator's CPU profile of the MQTT phase to this file")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if os.Getenv("GOGC") == "" {
		// The generator allocates short-lived reports at a high rate, as the server does (it
		// sets 300): a larger heap target keeps GC from taking CPU the server would use.
		debug.SetGCPercent(400)
	}
	tmp, err := os.MkdirTemp("", "fieldseal-bench-")
	if err != nil {
		log.Fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(tmp)
	}
	if *bin == "" {
		*bin = filepath.Join(tmp, "fieldseal")
		cmd := exec.Command("go", "build", "-o", *bin, "./cmd/fieldseal")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			log.Fatalf("go build: %v (run from the repository root, or pass -bin)", err)
		}
	}
	fmt.Printf("fieldseal ingest benchmark: %d devices, %d entries/report, %s per phase, GOMAXPROCS=%d, %d CPUs\n\n",
		*nDevices, *entries, *duration, runtime.GOMAXPROCS(0), runtime.NumCPU())

	raw := rawBroker()

	data := filepath.Join(tmp, "data")
	httpAddr, mqttAddr := freeAddr(), freeAddr()
	srv := exec.Command(*bin, append([]string{"server", "--data", data, "--http", httpAddr, "--mqtt", mqttAddr, "--log-level", "error"},
		strings.Fields(*srvFlags)...)...)
	srv.Stdout, srv.Stderr = io.Discard, os.Stderr
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	base := "http://" + httpAddr
	waitUp(base)
	tokenB, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	token := strings.TrimSpace(string(tokenB))

	devs := provisionAll(base, token, *nDevices)
	pid := srv.Process.Pid
	// Each run measures both phases against the same server; the figures to quote are the
	// medians (these machines are noisy), each set beside the raw broker rate of this process.
	type row struct {
		run, phase           string
		rate                 float64
		srvCPU, genCPU       time.Duration
		batch                float64
		p50, p99, cp50, cp99 time.Duration
	}
	var rows []row
	var mqRates, hbRates []float64
	measure := func(run int, phase string, f func() result) {
		c0, b0, h0 := cpuTime(pid), batchStats(base, token), histogram(base, token)
		r := f()
		c1, b1, h1 := cpuTime(pid), batchStats(base, token), histogram(base, token)
		q := h1.since(h0)
		n := time.Duration(max(1, r.n))
		rows = append(rows, row{strconv.Itoa(run), phase, r.rate, (c1 - c0) / n, r.selfCPU / n, b1.sub(b0), q.p50, q.p99, r.p50, r.p99})
	}
	for run := 1; run <= *runs; run++ {
		measure(run, "MQTT", func() result { return mqttPhase(mqttAddr, devs) })
		mqRates = append(mqRates, rows[len(rows)-1].rate)
		measure(run, fmt.Sprintf("HTTP batch of %d", *batch), func() result { return httpPhase(base, devs) })
		hbRates = append(hbRates, rows[len(rows)-1].rate)
	}

	fmt.Printf("\nraw broker publish→deliver (mochi, no processing, paho clients): %.0f messages/s\n\n", raw)
	fmt.Printf("%-4s %-17s %10s %7s %11s %11s %7s %17s %17s\n", "run", "phase (verified +", "reports/s", "÷ raw", "server CPU", "loadgen CPU", "batch", "receive→commit", "publish→ack")
	fmt.Printf("%-4s %-17s %10s %7s %11s %11s %7s %17s %17s\n", "", "durably stored)", "", "", "per report", "per report", "mean", "p50 / p99", "p50 / p99")
	for _, r := range rows {
		client := "-"
		if r.cp99 > 0 {
			client = ms(r.cp50) + " / " + ms(r.cp99)
		}
		fmt.Printf("%-4s %-17s %10.0f %7.2f %11s %11s %7.0f %17s %17s\n", r.run, r.phase, r.rate, r.rate/raw,
			r.srvCPU.Round(time.Microsecond), r.genCPU.Round(time.Microsecond), r.batch, ms(r.p50)+" / "+ms(r.p99), client)
	}
	fmt.Printf("\nmedian of %d runs: MQTT %.0f reports/s, HTTP batch %.0f reports/s (load generator on the same %d CPUs).\n",
		*runs, median(mqRates), median(hbRates), runtime.NumCPU())
	fmt.Printf("rejected during the runs: %s\n", rejected(base, token))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitUp(base string) {
	for i := 0; i < 600; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatal("server did not start")
}

// simDevice is a device with a real FS-chain log, as the agent or guard would run it.
type simDevice struct {
	b        wire.Bundle
	up, down *wire.MACKey // prepared R and T, as the agent keeps them
	w        *fschain.Writer
	rseq     uint64
	nonce    []byte
	k        uint64
}

func (d *simDevice) next() []byte {
	now := uint64(time.Now().Unix())
	for i := 0; i < *entries; i++ {
		d.k++
		if _, err := d.w.Append(now, wire.EntryRegister, wire.MustMarshal(&wire.RegisterPayload{Litres: d.k})); err != nil {
			log.Fatal(err)
		}
	}
	d.rseq++
	n, head, seal := d.w.State()
	seg := d.w.Segment()
	seg.N, seg.Head, seg.Seal = n, head[:], seal[:]
	r := &wire.Report{Dev: d.b.Device, Epoch: d.b.Epoch, RSeq: d.rseq, Boot: 1, Time: now,
		Man:  wire.ManifestRef{Product: d.b.Product, Version: d.b.ManifestVersion, Root: make([]byte, 32)},
		Meas: wire.Measurement{Status: wire.MeasOK, FilesChecked: 12, LastCheck: now, Bad: []wire.Finding{}}, Log: seg, Nonce: d.nonce}
	data, err := wire.SealReportWith(r, d.up)
	if err != nil {
		log.Fatal(err)
	}
	return data
}

// accept checks an ack like the device does and prunes what it covers.
func (d *simDevice) accept(ack []byte) error {
	a, err := wire.OpenAckWith(ack, d.b.Device, d.down)
	if err != nil {
		return err
	}
	d.nonce = a.Nonce
	if a.Reject != "" {
		return fmt.Errorf("rejected: %s", a.Reject)
	}
	if base, _ := d.w.Base(); a.Anchor.N > base {
		var h fschain.Hash
		copy(h[:], a.Anchor.Head)
		return d.w.Prune(a.Anchor.N, h)
	}
	return nil
}

func provisionAll(base, token string, n int) []*simDevice {
	start := time.Now()
	devs := make([]*simDevice, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			body, _ := json.Marshal(map[string]string{"device": fmt.Sprintf("bench-%05d", i), "product": "watermeter"})
			req, _ := http.NewRequest("POST", base+"/api/v1/devices", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				log.Fatal(err)
			}
			defer resp.Body.Close()
			d := &simDevice{}
			if err := json.NewDecoder(resp.Body).Decode(&d.b); err != nil {
				log.Fatal(err)
			}
			var k1 fschain.Key
			copy(k1[:], d.b.ChainKey)
			if d.w, err = fschain.Create(fschain.NewMemStorage(), d.b.Device, d.b.Epoch, k1); err != nil {
				log.Fatal(err)
			}
			d.up, d.down = wire.NewMACKey(d.b.UplinkKey), wire.NewMACKey(d.b.DownlinkKey)
			devs[i] = d
		}()
	}
	wg.Wait()
	fmt.Printf("provisioned %d devices in %s\n", n, time.Since(start).Round(time.Millisecond))
	return devs
}

type result struct {
	rate     float64
	n        int64
	p50, p99 time.Duration
	selfCPU  time.Duration // the load generator's own CPU time during the phase
}

// cpuTime is the user+system CPU time of process pid (Linux /proc; 0 elsewhere).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[min(len(ds)-1, int(math.Ceil(p*float64(len(ds))))-1)]
}

// mqttPhase: every device connects with its own credentials (through the agent's MQTT
// transport, the client a Linux-class device runs) and loops report → ack.
func mqttPhase(addr string, devs []*simDevice) result {
	trs := make([]agent.Transport, len(devs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i, d := range devs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t, err := agent.Dial(context.Background(), "mqtt://"+addr, &d.b, agent.DialOptions{Timeout: 30 * time.Second})
			if err != nil {
				log.Fatalf("connect %s: %v", d.b.Device, err)
			}
			trs[i] = t
		}()
	}
	wg.Wait()
	defer func() {
		for _, t := range trs {
			t.Close()
		}
	}()
	var count atomic.Int64
	var mu sync.Mutex
	var lats []time.Duration
	stop := time.Now().Add(*duration)
	start := time.Now()
	self0 := cpuTime(os.Getpid())
	if *cpuProf != "" {
		f, err := os.Create(*cpuProf)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for time.Now().Before(stop) {
				data := d.next()
				t0 := time.Now()
				ack, err := trs[i].Send(context.Background(), data)
				if err != nil {
					log.Fatalf("%s: %v", d.b.Device, err)
				}
				local = append(local, time.Since(t0))
				if err := d.accept(ack); err != nil {
					log.Fatalf("%s: %v", d.b.Device, err)
				}
				count.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	r := result{rate: float64(count.Load()) / el.Seconds(), n: count.Load(), p50: percentile(lats, 0.5), p99: percentile(lats, 0.99),
		selfCPU: cpuTime(os.Getpid()) - self0}
	fmt.Printf("MQTT: %d reports acked in %s\n", count.Load(), el.Round(time.Millisecond))
	return r
}

// httpPhase: gateways post batches over HTTP; each device has one report per batch.
func httpPhase(base string, devs []*simDevice) result {
	gateways := max(1, len(devs) / *batch)
	var count atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(*duration)
	start := time.Now()
	self0 := cpuTime(os.Getpid())
	for g := 0; g < gateways; g++ {
		mine := devs[g*len(devs)/gateways : (g+1)*len(devs)/gateways]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				reps := make([][]byte, len(mine))
				for i, d := range mine {
					reps[i] = d.next()
				}
				resp, err := http.Post(base+"/v1/reports:batch", "application/cbor", bytes.NewReader(wire.MustMarshal(reps)))
				if err != nil {
					log.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var out []httpapi.BatchResult
				if err := wire.Unmarshal(body, &out); err != nil || len(out) != len(mine) {
					log.Fatalf("batch answer: %v %d %s", err, resp.StatusCode, body)
				}
				for i, r := range out {
					if r.Reject != "" {
						log.Fatalf("%s: %s", mine[i].b.Device, r.Reject)
					}
					if err := mine[i].accept(r.Ack); err != nil {
						log.Fatal(err)
					}
				}
				count.Add(int64(len(out)))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	fmt.Printf("HTTP: %d reports acked in %s (%d gateways)\n", count.Load(), el.Round(time.Millisecond), gateways)
	return result{rate: float64(count.Load()) / el.Seconds(), n: count.Load(), selfCPU: cpuTime(os.Getpid()) - self0}
}

// rawBroker measures publish→deliver through a bare mochi broker: publishers send QoS 1
// messages, one subscriber receives them all.
func rawBroker() float64 {
	addr := freeAddr()
	b := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})
	b.AddHook(new(allowAll), nil)
	if err := b.AddListener(listeners.NewTCP(listeners.Config{ID: "raw", Address: addr})); err != nil {
		log.Fatal(err)
	}
	b.Serve()
	defer b.Close()
	var got atomic.Int64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("raw-sub").SetOrderMatters(false))
	if t := sub.Connect(); t.Wait() && t.Error() != nil {
		log.Fatal(t.Error())
	}
	sub.Subscribe(wire.Topics{Root: "raw"}.UplinkFilter(), 1, func(paho.Client, paho.Message) { got.Add(1) }).Wait()
	pubs := 100
	payload := bytes.Repeat([]byte{0xa5}, 260)
	var wg sync.WaitGroup
	stop := time.Now().Add(*duration)
	start := time.Now()
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("raw-pub-" + strconv.Itoa(p)))
			if t := c.Connect(); t.Wait() && t.Error() != nil {
				log.Fatal(t.Error())
			}
			defer c.Disconnect(0)
			topic := wire.Topics{Root: "raw"}.Up(strconv.Itoa(p))
			for time.Now().Before(stop) {
				c.Publish(topic, 1, false, payload).Wait()
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	el := time.Since(start)
	sub.Disconnect(0)
	rate := float64(got.Load()) / el.Seconds()
	fmt.Printf("raw broker: %d messages delivered in %s\n", got.Load(), el.Round(time.Millisecond))
	return rate
}

type quantiles struct{ p50, p99 time.Duration }

// commitHistogram is the server's cumulative receive→commit histogram (le → count).
type commitHistogram struct {
	le    []float64
	count []float64
}

func histogram(base, token string) commitHistogram {
	var h commitHistogram
	for _, line := range scrape(base, token) {
		if !strings.HasPrefix(line, "fieldseal_report_commit_seconds_bucket{") {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.Index(line[i+4:], `"`)
		le, _ := strconv.ParseFloat(line[i+4:i+4+j], 64)
		f := strings.Fields(line)
		c, _ := strconv.ParseFloat(f[len(f)-1], 64)
		h.le, h.count = append(h.le, le), append(h.count, c)
	}
	return h
}

// since interpolates p50 and p99 of the reports committed between scrape a and h.
func (h commitHistogram) since(a commitHistogram) quantiles {
	if len(h.le) == 0 {
		return quantiles{}
	}
	counts := make([]float64, len(h.count))
	for i := range counts {
		counts[i] = h.count[i]
		if i < len(a.count) {
			counts[i] -= a.count[i]
		}
	}
	total := counts[len(counts)-1]
	q := func(p float64) time.Duration {
		target := p * total
		prevLe, prevC := 0.0, 0.0
		for i, le := range h.le {
			c := counts[i]
			if c >= target {
				if math.IsInf(le, 1) {
					return time.Duration(prevLe * float64(time.Second))
				}
				frac := 0.0
				if c > prevC {
					frac = (target - prevC) / (c - prevC)
				}
				return time.Duration((prevLe + frac*(le-prevLe)) * float64(time.Second))
			}
			prevLe, prevC = le, c
		}
		return 0
	}
	return quantiles{q(0.5), q(0.99)}
}

func scrape(base, token string) []string {
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// commitBatches is the server's group-commit histogram totals (sum of batch sizes, batches).
type commitBatches struct{ sum, count float64 }

// sub is the mean batch size between two scrapes.
func (b commitBatches) sub(a commitBatches) float64 {
	if b.count <= a.count {
		return 0
	}
	return (b.sum - a.sum) / (b.count - a.count)
}

func batchStats(base, token string) commitBatches {
	var b commitBatches
	for _, l := range scrape(base, token) {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "fieldseal_commit_batch_size_sum":
			b.sum = v
		case "fieldseal_commit_batch_size_count":
			b.count = v
		}
	}
	return b
}

func rejected(base, token string) string {
	var out []string
	for _, l := range scrape(base, token) {
		if strings.HasPrefix(l, "fieldseal_reports_rejected_total{") {
			out = append(out, l)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}

// allowAll admits every client and topic: the raw broker does no work of its own.
type allowAll struct{ mqtt.HookBase }

func (h *allowAll) ID() string { return "allow-all" }
func (h *allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (h *allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
