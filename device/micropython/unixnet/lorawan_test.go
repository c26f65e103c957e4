package unixnet

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fieldseal/fieldseal/server/lpwan"
	"github.com/fieldseal/fieldseal/wire"
)

// rui3 emulates a RAKwireless RUI3 LoRaWAN modem (RAK3172) on the far side of the byte pipe
// that stands in for the stm32-lorawan board's UART 2: the AT commands the template's Rui3
// class sends, the answers and events RAK's AT manual gives. What it sends on the air goes
// to the server's LPWAN ingest as a network server would pass it on; the server's answer
// comes back as a downlink event in the uplink's receive window.
type rui3 struct {
	t   *testing.T
	e   *env
	dev string
	ln  net.Listener
	lp  *lpwan.Assembler // the server's LPWAN ingest, as a network server feeds it

	busy   int // AT+SEND answered AT_BUSY_ERROR this many times first
	busyAt int // … or once, at this AT+SEND (counted from 1)
	sends  int
	noise  bool // line noise and a downlink on another port around every downlink

	mu      sync.Mutex
	joined  bool
	joins   int
	frames  [][]byte
	downs   int
	refused []string // the server's refusals of frames
	odd     []string // commands the template should never send
}

func newRUI3(t *testing.T, e *env, dev string) *rui3 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := &rui3{t: t, e: e, dev: dev, ln: ln, lp: lpwan.New(e.s)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go m.serve(c)
		}
	}()
	return m
}

func (m *rui3) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(lines ...string) { c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")) }
	for {
		raw, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line := strings.TrimSpace(raw)
		m.mu.Lock()
		switch {
		case line == "AT+NJS=?":
			v := "0"
			if m.joined {
				v = "1"
			}
			say("AT+NJS="+v, "OK")
		case line == "AT+JOIN=1:0:10:8":
			m.joins++
			m.joined = true
			say("OK", "+EVT:JOINED")
		case strings.HasPrefix(line, "AT+SEND="):
			if m.sends++; m.busy > 0 || m.sends == m.busyAt {
				m.busy = max(m.busy-1, 0)
				say("AT_BUSY_ERROR")
				break
			}
			port, data, _ := strings.Cut(strings.TrimPrefix(line, "AT+SEND="), ":")
			f, err := hex.DecodeString(data)
			if port != "73" || err != nil || len(f) > wire.LPMaxFrame {
				m.odd = append(m.odd, line)
				say("AT_PARAM_ERROR")
				break
			}
			say("OK")
			m.frames = append(m.frames, f)
			res, err := m.lp.HandleFrame(context.Background(), m.dev, f)
			if err != nil {
				m.refused = append(m.refused, err.Error())
			}
			if m.noise {
				c.Write([]byte("\xff\xfe\x00 noise\r\n"))
				say("+EVT:RX_1:-96:3:UNICAST:12:0badcafe", "+EVT:RX_1:-96:3:UNICAST:73:zz")
			}
			if res != nil && res.Downlink != nil {
				m.downs++
				say(fmt.Sprintf("+EVT:RX_1:-96:3:UNICAST:73:%X", res.Downlink))
			}
			say("+EVT:TX_DONE")
		default:
			m.odd = append(m.odd, line)
			say("AT_COMMAND_NOT_FOUND")
		}
		m.mu.Unlock()
	}
}

// bootLoRaWAN runs the frozen guard with the template's modem adapter for rounds report
// slots, after backlog register reads (optional) logged before the first.
func (e *env) bootLoRaWAN(m *meter, modem *rui3, rounds int, backlog ...int) *run {
	e.t.Helper()
	args := []string{modem.ln.Addr().String(), fmt.Sprint(rounds)}
	for _, b := range backlog {
		args = append(args, fmt.Sprint(b))
	}
	return e.script(m, "lorawan.py", args...)
}

// A sealed meter built on the stm32-lorawan template's adapter (lorawan_modem.py, frozen
// with the guard into a real unix build) joins through the modem once, then sends each
// report slot as LPWAN frames of at most 51 bytes on port 73; the server verifies them and
// trusts the meter. It asks for no ack (routine rounds), and none is sent.
func TestLoRaWANTemplateModemReports(t *testing.T) {
	e := newEnv(t)
	m := e.meter("lora-unix-1")
	modem := newRUI3(t, e, m.id)
	r := e.bootLoRaWAN(m, modem, 3)
	for i, c := range r.Cycles {
		if c.Res == nil || *c.Res != "sent" || c.RSeq != uint64(i+1) {
			t.Fatalf("round %d: %+v", i, c)
		}
	}
	modem.mu.Lock()
	defer modem.mu.Unlock()
	if modem.joins != 1 || len(modem.odd) != 0 || len(modem.refused) != 0 || len(modem.frames) < 4 {
		t.Fatalf("joins %d, odd commands %q, refused %q, %d frames", modem.joins, modem.odd, modem.refused, len(modem.frames))
	}
	d, err := e.s.Store().GetDevice(context.Background(), m.id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "trusted" || d.LastRSeq != 3 || d.AnchorN != r.Cycles[2].N {
		t.Fatalf("server: %s, rseq %d, anchor %d (the meter's log at %d)", d.State, d.LastRSeq, d.AnchorN, r.Cycles[2].N)
	}
}

// A meter whose calibration was edited logs check-fail at boot: its first round asks for an
// ack, which comes back as a downlink event in the status's receive window; the adapter
// hands it to the guard, which prunes. The modem's trouble on the way changes nothing that
// counts: a busy modem fails the first round (its entries go with the next, brought
// forward), line noise, a downlink on another port and a malformed one are ignored.
func TestLoRaWANTemplateModemTamperAckedThroughTrouble(t *testing.T) {
	e := newEnv(t)
	m := e.meter("lora-unix-2")
	if err := os.WriteFile(filepath.Join(m.ext, "calib.json"), []byte(`{"k": 1.2, "offset": -3}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	modem := newRUI3(t, e, m.id)
	modem.busy, modem.noise = 1, true
	r := e.bootLoRaWAN(m, modem, 2)
	if c := r.Cycles[0]; c.Res != nil || c.Last != "error: AT_BUSY_ERROR" || c.Base != 0 {
		t.Fatalf("round 1 with a busy modem: %+v", c)
	}
	if c := r.Cycles[1]; c.Res == nil || *c.Res != "ok" || c.Base != c.N {
		t.Fatalf("round 2: %+v (the ack should have pruned the log to its head)", c)
	}
	if len(r.Bad) != 1 || r.Bad[0][0] != "calib.json" {
		t.Fatalf("bad %v", r.Bad)
	}
	modem.mu.Lock()
	defer modem.mu.Unlock()
	if modem.downs == 0 || len(modem.odd) != 0 || len(modem.refused) != 0 {
		t.Fatalf("downlinks %d, odd commands %q, refused %q", modem.downs, modem.odd, modem.refused)
	}
	d, err := e.s.Store().GetDevice(context.Background(), m.id)
	if err != nil {
		t.Fatal(err)
	}
	if d.State != "tampered" || d.AnchorN != r.Cycles[1].N {
		t.Fatalf("server: %s, anchor %d (the meter's log at %d)", d.State, d.AnchorN, r.Cycles[1].N)
	}
}

// A backlog through the template's adapter: 120 register reads logged before the first slot
// leave over the following slots, each round at most lpwan.ROUND_FRAMES frames (8, the status
// included) whatever waits, each a prefix the server verifies and acks (resend) at the last
// entry it holds, the guard pruning as the acks come. A round the modem refuses halfway
// (busy) is rewound and goes again with the next slot. The server ends at the meter's head,
// the meter trusted.
func TestLoRaWANTemplateModemDrainsBacklogWithinBudget(t *testing.T) {
	e := newEnv(t)
	m := e.meter("lora-unix-3")
	modem := newRUI3(t, e, m.id)
	modem.busyAt = 20 // the third round's fourth frame
	r := e.bootLoRaWAN(m, modem, 30, 120)
	failed, caughtUp := 0, 0
	for i, c := range r.Cycles {
		if c.Frames > wire.LPRoundFrames || c.Frames < 1 {
			t.Fatalf("round %d: %d frames (budget %d)", i+1, c.Frames, wire.LPRoundFrames)
		}
		if c.Res == nil {
			failed++
			continue
		}
		if c.Frames < wire.LPRoundFrames && caughtUp == 0 {
			caughtUp = i + 1
		}
	}
	last := r.Cycles[len(r.Cycles)-1]
	d, err := e.s.Store().GetDevice(context.Background(), m.id)
	if err != nil {
		t.Fatal(err)
	}
	modem.mu.Lock()
	defer modem.mu.Unlock()
	if failed != 1 || caughtUp == 0 || len(modem.refused) != 0 || len(modem.odd) != 0 {
		t.Fatalf("%d rounds failed (want the busy one), caught up at round %d; refused %q, odd %q", failed, caughtUp, modem.refused, modem.odd)
	}
	if d.State != "trusted" || d.AnchorN != last.N || last.Base < last.N-uint64(wire.LPRoundFrames) {
		t.Fatalf("server: %s, anchor %d; meter's log %d..%d", d.State, d.AnchorN, last.Base, last.N)
	}
	t.Logf("%d entries waiting at the first slot: caught up at slot %d (%d frames sent in all, one round refused by a busy modem), server anchor %d",
		r.Cycles[0].N, caughtUp, len(modem.frames), d.AnchorN)
}
