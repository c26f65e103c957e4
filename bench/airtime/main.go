// Command airtime is a benchmark (not a test): bytes on air per meter per day for COSE
// reports over MQTT, over HTTP and for the LPWAN profile, and the LoRa time on air of the
// LPWAN profile at SF7 and SF12 (EU868, 125 kHz, Semtech's formula, AN1200.13) as a share of
// the 1 % duty cycle. Two days: routine (a report every 15 minutes, one billing read) and a
// day with a tamper and a service visit (cover opened, service token, technician opens and
// closes the cover, window ends, clear token after the inspection).
//
//	go run ./bench/airtime
//
// Everything runs against a real server in-process: the reports, acks, tokens and LPWAN
// frames are the bytes the pipeline produced, and HTTP exchanges are real requests over
// loopback TCP counted byte for byte. MQTT framing is computed from the packets a battery
// meter sends per report (CONNECT, SUBSCRIBE, PUBLISH, PUBACKs, DISCONNECT; the downlink
// PUBLISH with its PUBACK). Not counted for MQTT and HTTP: TCP/IP and TLS headers (about
// 40 bytes per segment, plus TLS records). LoRaWAN adds 13 bytes per frame (MHDR, FHDR
// without options, FPort, MIC).
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

const (
	rounds          = 96 // a report every 15 minutes
	loraOverhead    = 13 // MHDR 1, FHDR 7, FPort 1, MIC 4
	dutyCycle       = 0.01
	secondsPerDay   = 86400.0
	mqttDevIDLength = 10
)

// clock is the server's and the devices' time, moved by the scenario.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// counts are one transport's bytes for one day.
type counts struct {
	up, down    int     // bytes
	upFrames    int     // LPWAN: uplink frames
	downFrames  int     // LPWAN: downlink frames
	toa7, toa12 float64 // LPWAN: uplink time on air, seconds
}

// loraToA is the time on air of a LoRa frame of pl PHY payload bytes (Semtech AN1200.13):
// EU868 125 kHz, coding rate 4/5, 8-symbol preamble, explicit header, CRC on, low data
// rate optimisation at SF11 and SF12.
func loraToA(pl, sf int) float64 {
	bw := 125000.0
	tsym := math.Pow(2, float64(sf)) / bw
	de := 0.0
	if sf >= 11 {
		de = 1
	}
	num := 8*float64(pl) - 4*float64(sf) + 28 + 16 - 0
	n := math.Ceil(num/(4*(float64(sf)-2*de))) * 5
	payloadSym := 8 + math.Max(n, 0)
	return (8+4.25)*tsym + payloadSym*tsym
}

// mqttExchange is the MQTT bytes of one report exchange for a meter that connects per
// report: up = CONNECT, SUBSCRIBE, PUBLISH(report), PUBACK(ack), DISCONNECT; down =
// CONNACK, SUBACK, PUBACK(report), PUBLISH(ack).
func mqttExchange(report, ack int) (up, down int) {
	rl := func(n int) int { // fixed header: type byte + remaining length varint
		h := 1
		for {
			h++
			if n < 128 {
				return h
			}
			n >>= 7
		}
	}
	dev := mqttDevIDLength
	topic := len(wire.DefaultTopics.Up(strings.Repeat("x", dev)))
	connect := 10 + (2 + dev) + (2 + dev) + (2 + 64) // variable header, client id, user, password
	subscribe := 2 + (2 + topic + 2) + 1
	publishUp := 2 + topic + 2 + report
	publishDown := 2 + (topic + 2) + 2 + ack
	up = rl(connect) + connect + rl(subscribe) + subscribe + rl(publishUp) + publishUp + 4 + 2
	down = 4 + 5 + 4
	if ack > 0 {
		down += rl(publishDown) + publishDown
	}
	return up, down
}

// httpPost sends one report the way the guard does (fieldseal/http.py) and counts bytes.
func httpPost(addr string, report []byte) (ack []byte, up, down int, err error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, 0, 0, err
	}
	defer c.Close()
	host, _, _ := strings.Cut(addr, ":")
	head := fmt.Sprintf("POST /v1/reports HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		host, wire.ReportMediaType, len(report))
	if _, err := io.WriteString(c, head); err != nil {
		return nil, 0, 0, err
	}
	if _, err := c.Write(report); err != nil {
		return nil, 0, 0, err
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		return nil, 0, 0, err
	}
	i := strings.Index(string(raw), "\r\n\r\n")
	if i < 0 {
		return nil, 0, 0, fmt.Errorf("no response head")
	}
	r := bufio.NewReader(strings.NewReader(string(raw[:i+4])))
	status, _ := r.ReadString('\n')
	if !strings.Contains(status, " 200 ") && !strings.Contains(status, " 409 ") {
		return nil, 0, 0, fmt.Errorf("HTTP %s", strings.TrimSpace(status))
	}
	return raw[i+4:], len(head) + len(report), len(raw), nil
}

type scenario struct {
	name   string
	tamper bool
}

func run(sc scenario) (mqtt, http, lp counts) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
	dir, err := os.MkdirTemp("", "fieldseal-airtime-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	st, err := storeurl.Open(ctx, "", dir)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	// The product's manifest, registered before any meter is provisioned (as an operator must).
	vendor, _ := keys.Generate()
	body := []byte("print('meter')\n")
	sum := sha256.Sum256(body)
	files := []wire.File{{Path: "main.py", Size: uint64(len(body)), SHA256: sum[:]}}
	m := &wire.Manifest{Product: "watermeter", Version: 1, Files: files, Mutable: []string{}, Policy: wire.DefaultPolicy(), Root: wire.FilesRoot(files),
		Mpy: wire.MpyInfo{Major: 6, Minor: 3, Arch: "bytecode", SmallIntBits: 31}}
	signed, err := wire.SignManifest(m, vendor)
	if err != nil {
		log.Fatal(err)
	}
	s, err := serve.New(server.Config{DataDir: dir, Store: st, HTTPAddr: "127.0.0.1:0", MQTTAddr: "off", Now: clk.Now,
		VendorKeys: []ed25519.PublicKey{vendor.Public().(ed25519.PublicKey)}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer s.Shutdown(ctx)
	if _, err := s.RegisterManifest(ctx, signed); err != nil {
		log.Fatal(err)
	}
	lpa := lpwan.New(s)
	now := func() uint64 { return uint64(clk.Now().Unix()) }
	mk := func(id string) *agent.Device {
		b, err := s.ProvisionDevice(ctx, id, "watermeter")
		if err != nil {
			log.Fatal(err)
		}
		d, err := agent.New(agent.Config{Bundle: b, Manifest: wire.ManifestRef{Product: m.Product, Version: m.Version, Root: m.Root},
			Chain: fschain.NewMemStorage(), Now: now()})
		if err != nil {
			log.Fatal(err)
		}
		d.SetReading(123456, 0)
		return d
	}
	// three meters living the same day: over MQTT, over HTTP, over the LPWAN profile
	dm, dh, dl := mk("wm-mqtt-01"), mk("wm-http-01"), mk("wm-lora-01")
	lpm := agent.NewLPMeter(dl)
	for i := 0; i < rounds; i++ {
		t := now()
		if i == 0 {
			for _, d := range []*agent.Device{dm, dh, dl} {
				d.Register(t) // the day's signed billing read
			}
		}
		if sc.tamper {
			for _, d := range []*agent.Device{dm, dh, dl} {
				switch i {
				case 40: // the renter opens the cover
					d.Cover(t, true, wire.CoverSourceIRQ)
					d.Cover(t+60, false, wire.CoverSourceIRQ)
				case 46: // the technician, inside the service window
					d.Cover(t, true, wire.CoverSourceIRQ)
				case 47:
					d.Cover(t, false, wire.CoverSourceIRQ)
				}
			}
			switch i {
			case 42: // an operator opens a visit: a service token in the next answer
				for _, id := range []string{"wm-mqtt-01", "wm-http-01", "wm-lora-01"} {
					if err := s.IssueServiceToken(ctx, id, "WO-1", "kim", time.Hour); err != nil {
						log.Fatal(err)
					}
				}
			case 52: // after the inspection: clear
				for _, id := range []string{"wm-mqtt-01", "wm-http-01", "wm-lora-01"} {
					if err := s.ClearTamper(ctx, id, "seal replaced", "bench"); err != nil {
						log.Fatal(err)
					}
				}
			}
		}
		// COSE over MQTT: the pipeline's own bytes, MQTT framing around them
		rep, err := dm.Report(t)
		if err != nil {
			log.Fatal(err)
		}
		ack, _ := s.HandleReport(ctx, rep)
		if err := dm.HandleAck(ack, t); err != nil {
			log.Fatalf("mqtt meter, round %d: %v", i, err)
		}
		u, d := mqttExchange(len(rep), len(ack))
		mqtt.up += u
		mqtt.down += d
		// COSE over HTTP: a real request on loopback
		rep, err = dh.Report(t)
		if err != nil {
			log.Fatal(err)
		}
		ack, u, d, err = httpPost(s.HTTPAddr(), rep)
		if err != nil {
			log.Fatal(err)
		}
		if err := dh.HandleAck(ack, t); err != nil {
			log.Fatalf("http meter, round %d: %v", i, err)
		}
		http.up += u
		http.down += d
		// LPWAN profile
		frames, err := lpm.Uplink(t)
		if err != nil {
			log.Fatal(err)
		}
		for _, f := range frames {
			lp.up += len(f) + loraOverhead
			lp.upFrames++
			lp.toa7 += loraToA(len(f)+loraOverhead, 7)
			lp.toa12 += loraToA(len(f)+loraOverhead, 12)
			res, err := lpa.HandleFrame(ctx, "wm-lora-01", f)
			if err != nil {
				log.Fatal(err)
			}
			if res.Downlink != nil {
				lp.down += len(res.Downlink) + loraOverhead
				lp.downFrames++
				if err := lpm.Downlink(res.Downlink, t); err != nil {
					log.Fatalf("lora meter, round %d: %v", i, err)
				}
			}
		}
		clk.add(15 * time.Minute)
	}
	if sc.tamper {
		for _, id := range []string{"wm-mqtt-01", "wm-http-01", "wm-lora-01"} {
			dev, _ := s.Store().GetDevice(ctx, id)
			if dev.State != "trusted" {
				fmt.Fprintf(os.Stderr, "note: %s ends the day %s (%s)\n", id, dev.State, dev.StateReason)
			}
		}
	}
	return
}

func main() {
	fmt.Println("fieldseal bytes on air per meter per day (bench/airtime; EU868 125 kHz, CR 4/5)")
	fmt.Println()
	fmt.Printf("%-36s %-13s %9s %9s %9s %8s %10s %10s %9s %9s\n", "day", "transport", "up B", "down B", "total B", "frames", "ToA SF7 s", "ToA SF12 s", "DC SF7", "DC SF12")
	for _, sc := range []scenario{{"routine (96 reports, 1 billing read)", false}, {"tamper + service visit", true}} {
		m, h, l := run(sc)
		row := func(name string, c counts, lora bool) {
			toa7, toa12, dc7, dc12, frames := "-", "-", "-", "-", "-"
			if lora {
				toa7, toa12 = strconv.FormatFloat(c.toa7, 'f', 1, 64), strconv.FormatFloat(c.toa12, 'f', 1, 64)
				dc7 = strconv.FormatFloat(100*c.toa7/secondsPerDay, 'f', 3, 64) + "%"
				dc12 = strconv.FormatFloat(100*c.toa12/secondsPerDay, 'f', 3, 64) + "%"
				frames = fmt.Sprintf("%d/%d", c.upFrames, c.downFrames)
			}
			fmt.Printf("%-36s %-13s %9d %9d %9d %8s %10s %10s %9s %9s\n", sc.name, name, c.up, c.down, c.up+c.down, frames, toa7, toa12, dc7, dc12)
		}
		row("COSE/MQTT", m, false)
		row("COSE/HTTP", h, false)
		row("LPWAN", l, true)
		fmt.Printf("%-36s %-13s %9s %9s %9.1f×\n", "", "MQTT ÷ LPWAN", "", "", float64(m.up+m.down)/float64(l.up+l.down))
	}
	fmt.Println()
	fmt.Printf("DC = uplink time on air ÷ 24 h (EU868 sub-band limit: %.0f%%). Frames: uplink/downlink.\n", dutyCycle*100)
	fmt.Println("MQTT and HTTP bytes exclude TCP/IP and TLS; LPWAN bytes include the 13-byte LoRaWAN frame overhead.")
}
