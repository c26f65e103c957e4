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
// Run: go run ./bench/ingest [-devices 1000] [-duration 8s] [-entries 1]
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
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

var (
	nDevices = flag.Int("devices", 1000, "simulated devices (one MQTT connection each)")
	duration = flag.Duration("duration", 8*time.Second, "length of each measured phase")
	entries  = flag.Int("entries", 1, "new log entries per report (0 = routine report, no entries)")
	batch    = flag.Int("batch", 100, "reports per HTTP batch")
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
	c0, b0 := cpuTime(pid), batchStats(base, token)
	mq := mqttPhase(mqttAddr, devs)
	c1, b1 := cpuTime(pid), batchStats(base, token)
	lat1 := serverLatency(base, token)
	hb := httpPhase(base, devs)
	c2, b2 := cpuTime(pid), batchStats(base, token)
	lat2 := serverLatency(base, token)
	mqCPU := (c1 - c0) / time.Duration(max(1, mq.n))
	hbCPU := (c2 - c1) / time.Duration(max(1, hb.n))

	fmt.Printf("\n%-46s %12s %10s %10s\n", "phase", "reports/s", "p50", "p99")
	fmt.Printf("%-46s %12.0f %10s %10s\n", "raw broker publish→deliver (mochi, no processing)", raw, "-", "-")
	fmt.Printf("%-46s %12.0f %10s %10s\n", "MQTT: verified + durably stored", mq.rate, ms(lat1.p50), ms(lat1.p99))
	fmt.Printf("%-46s %12s %10s %10s\n", "  (client publish→ack on downlink)", "", ms(mq.p50), ms(mq.p99))
	fmt.Printf("%-46s %12.0f %10s %10s\n", fmt.Sprintf("HTTP batch of %d: verified + durably stored", *batch), hb.rate, ms(lat2.p50), ms(lat2.p99))
	fmt.Printf("\nserver process CPU per report: MQTT %s (broker included), HTTP batch %s; the load generator shares the machine.\n",
		mqCPU.Round(time.Microsecond), hbCPU.Round(time.Microsecond))
	fmt.Printf("load generator CPU per report: MQTT %s, HTTP batch %s (building, sealing and checking reports; its clients).\n",
		(mq.selfCPU / time.Duration(max(1, mq.n))).Round(time.Microsecond), (hb.selfCPU / time.Duration(max(1, hb.n))).Round(time.Microsecond))
	if mqCPU > 0 && hbCPU > 0 {
		cores := float64(runtime.NumCPU())
		fmt.Printf("if the server had the %d CPUs to itself: ≈ %.0f reports/s over MQTT, ≈ %.0f over HTTP batch\n",
			int(cores), cores/mqCPU.Seconds(), cores/hbCPU.Seconds())
	}
	fmt.Printf("mean group-commit batch: MQTT %.0f reports, HTTP batch %.0f reports.\n", b1.sub(b0), b2.sub(b1))
	fmt.Printf("latency p50/p99 of the verified phases: server receive→commit histogram (cumulative after each phase).\n")
	fmt.Printf("rejected during the run: %s\n", rejected(base, token))
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
	b     wire.Bundle
	w     *fschain.Writer
	rseq  uint64
	nonce []byte
	k     uint64
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
	data, err := wire.SealReport(r, d.b.UplinkKey)
	if err != nil {
		log.Fatal(err)
	}
	return data
}

// accept checks an ack like the device does and prunes what it covers.
func (d *simDevice) accept(ack []byte) error {
	a, err := wire.OpenAck(ack, d.b.Device, d.b.DownlinkKey)
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
				var out []server.BatchResult
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
	sub.Subscribe("raw/+/up", 1, func(paho.Client, paho.Message) { got.Add(1) }).Wait()
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
			topic := "raw/" + strconv.Itoa(p) + "/up"
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

// serverLatency reads the receive→commit histogram from /metrics and interpolates.
func serverLatency(base, token string) quantiles {
	type bucket struct {
		le    float64
		count float64
	}
	var bs []bucket
	for _, line := range scrape(base, token) {
		if !strings.HasPrefix(line, "fieldseal_report_commit_seconds_bucket{") {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.Index(line[i+4:], `"`)
		le, _ := strconv.ParseFloat(line[i+4:i+4+j], 64)
		f := strings.Fields(line)
		c, _ := strconv.ParseFloat(f[len(f)-1], 64)
		bs = append(bs, bucket{le, c})
	}
	if len(bs) == 0 {
		return quantiles{}
	}
	total := bs[len(bs)-1].count
	q := func(p float64) time.Duration {
		target := p * total
		prevLe, prevC := 0.0, 0.0
		for _, b := range bs {
			if b.count >= target {
				if math.IsInf(b.le, 1) {
					return time.Duration(prevLe * float64(time.Second))
				}
				frac := 0.0
				if b.count > prevC {
					frac = (target - prevC) / (b.count - prevC)
				}
				return time.Duration((prevLe + frac*(b.le-prevLe)) * float64(time.Second))
			}
			prevLe, prevC = b.le, b.count
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
