// Command fleet measures how many meters one machine sustains at a 15-minute report
// interval, server included: the fleet server (SQLite, HTTP ingest) and a simulated town
// of real agent.Device meters in one process. Run by bench/fleet.sh.
//
// Method: provision -meters devices (every one a real device with its own keys and
// evidence log, registered in the server's store), then run the town on a virtual clock at
// increasing speeds. At speed s the report rate equals that of meters×s meters reporting
// every 15 minutes in real time ("meter-equivalents"); each level runs for -level wall
// seconds and is "kept up" when every report left within one report interval of its slot
// and the achieved rate is within 5% of the offered one. -mqtt N meters hold their own MQTT
// connection to the embedded broker; the rest report over HTTP (a keep-alive pool, as
// through a gateway): per-device connections for 100,000 meters in one process would need
// more file descriptors (two per connection, both ends here) than this machine allows. CPU is the process's
// user+system time over the level's wall time (2.00 = two cores busy).
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/sim"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

func main() {
	meters := flag.Int("meters", 100000, "simulated meters (each provisioned on the server)")
	levels := flag.String("speeds", "1,4,16,32,64", "clock speeds to try, in order")
	level := flag.Duration("level", 20*time.Second, "wall time per speed")
	workers := flag.Int("workers", 128, "concurrent meter steps")
	overMQTT := flag.Int("mqtt", 0, "this many meters hold their own MQTT connection to the embedded broker; the rest report over HTTP")
	dir := flag.String("data", "", "server data folder (default: temporary)")
	flag.Parse()
	if err := run(*meters, *levels, *level, *workers, *overMQTT, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench fleet:", err)
		os.Exit(1)
	}
}

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type usage struct {
	wall time.Time
	cpu  time.Duration
}

func now() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return usage{time.Now(), cpu}
}

func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return float64(m.Sys) / (1 << 20)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func run(meters int, levels string, level time.Duration, workers, overMQTT int, dir string) error {
	ctx := context.Background()
	if dir == "" {
		d, err := os.MkdirTemp("", "fieldseal-bench-fleet-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	const interval = 15 * time.Minute
	vendor, _ := keys.Generate()
	body := []byte("print('meter')\n")
	sum := sha256.Sum256(body)
	files := []wire.File{{Path: "main.py", Size: uint64(len(body)), SHA256: sum[:]}}
	pol := wire.DefaultPolicy()
	pol.ReportInterval = uint32(interval / time.Second)
	m := &wire.Manifest{Product: "watermeter", Version: 1, Files: files, Mutable: []string{}, Policy: pol, Root: wire.FilesRoot(files),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		return err
	}
	origin := time.Now().UTC().Truncate(time.Hour)
	clock := sim.NewClock(origin, 1)
	mqttAddr := "off"
	if overMQTT > 0 {
		mqttAddr = freeAddr()
	}
	db, err := storeurl.Open(ctx, "", dir)
	if err != nil {
		return err
	}
	defer db.Close()
	srv, err := serve.New(server.Config{Store: db, DataDir: dir, HTTPAddr: freeAddr(), MQTTAddr: mqttAddr, Now: clock.Now, SilentAfter: 1000,
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer func() {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(c)
	}()
	if _, err := srv.RegisterManifest(ctx, signed); err != nil {
		return err
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}}
	fmt.Fprintf(os.Stderr, "bench fleet: provisioning %d meters on the server and in the town...\n", meters)
	t0 := now()
	var dialed atomic.Int64
	town, err := sim.New(ctx, sim.Config{Meters: meters, PerDistrict: 1000, Seed: 7, Clock: clock, Span: 24 * time.Hour, ReportInterval: interval,
		Manifest: wire.ManifestRef{Product: m.Product, Version: m.Version, Root: m.Root}, Files: 1, Scenarios: []string{},
		OfflineShare: -1, Workers: workers, HTTPEvery: 1,
		Provision: func(ctx context.Context, id string) (*wire.Bundle, error) {
			return srv.ProvisionDevice(ctx, id, m.Product)
		},
		Dial: func(ctx context.Context, b *wire.Bundle, _ bool) (agent.Transport, error) {
			if dialed.Add(1) <= int64(overMQTT) {
				return agent.Dial(ctx, b.MQTT, b, agent.DialOptions{Timeout: 30 * time.Second})
			}
			return agent.Dial(ctx, b.HTTP, b, agent.DialOptions{HTTP: hc, Timeout: 30 * time.Second})
		},
	})
	if err != nil {
		return err
	}
	t1 := now()
	total := len(town.Meters)
	fmt.Printf("fleet benchmark: %d devices (%d meters + %d inlet meters), report interval 15 min, server in-process (SQLite)\n",
		total, meters, total-meters)
	fmt.Printf("transports: %d devices on their own MQTT connection to the embedded broker, %d over HTTP (keep-alive pool of %d)\n",
		min(overMQTT, total), total-min(overMQTT, total), workers)
	fmt.Printf("machine: %d CPUs, %s; provisioning took %.1fs (%.0f devices/s), RSS after provisioning %.0f MB\n\n",
		runtime.NumCPU(), runtime.Version(), t1.wall.Sub(t0.wall).Seconds(), float64(total)/t1.wall.Sub(t0.wall).Seconds(), rssMB())
	fmt.Printf("%-6s %-17s %-12s %-12s %-10s %-10s %-6s %-7s %s\n", "speed", "meter-equivalents", "offered/s", "achieved/s", "mean lag", "max lag", "CPU", "RSS MB", "kept up")

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	clock.Start()
	go func() {
		town.Run(runCtx, origin.Add(1000*24*time.Hour))
		close(done)
	}()
	best := 0.0
	for _, f := range strings.Split(levels, ",") {
		speed, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || speed <= 0 {
			continue
		}
		clock.SetSpeed(speed)
		// A short settle, then the measured window.
		time.Sleep(2 * time.Second)
		town.ResetMaxLag()
		s0, u0 := town.Stats(), now()
		time.Sleep(level)
		s1, u1 := town.Stats(), now()
		wall := u1.wall.Sub(u0.wall).Seconds()
		offered := float64(total) * speed / interval.Seconds()
		achieved := float64(s1.Reports-s0.Reports) / wall
		n := s1.Steps - s0.Steps
		mean := time.Duration(0)
		if n > 0 {
			mean = (s1.LagSum - s0.LagSum) / time.Duration(n)
		}
		cpu := (u1.cpu - u0.cpu).Seconds() / wall
		ok := s1.MaxLag < interval && achieved >= 0.95*offered && s1.SendErrors == s0.SendErrors
		verdict := "yes"
		if !ok {
			verdict = "NO"
		} else if eq := float64(total) * speed; eq > best {
			best = eq
		}
		fmt.Printf("%-6g %-17.0f %-12.0f %-12.0f %-10s %-10s %-6.2f %-7.0f %s\n", speed, float64(total)*speed, offered, achieved,
			mean.Round(time.Second), s1.MaxLag.Round(time.Second), cpu, rssMB(), verdict)
		if !ok {
			break
		}
	}
	cancel()
	<-done
	st := town.Stats()
	fmt.Printf("\nreports %d, acknowledged %d, refused %d, send errors %d\n", st.Reports, st.Acked, st.Rejected, st.SendErrors)
	fmt.Printf("sustained: %.0f meters at a 15-minute interval (target 100000)\n", best)
	return nil
}
