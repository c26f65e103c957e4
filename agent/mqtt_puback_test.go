package agent

import (
	"bufio"
	"context"
	"net"
	"testing"
	"time"
)

// A fake broker drives the client: the PUBACK for a downlink message is held back and
// leaves in front of the device's next packet, or on its own within pubackDelay.
func TestPubackHeldUntilNextWriteOrDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type packet struct {
		h    byte
		body []byte
		at   time.Time
	}
	got := make(chan packet, 16)
	srvConn := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		srvConn <- c
		r := bufio.NewReader(c)
		for {
			h, body, err := readPacket(r)
			if err != nil {
				close(got)
				return
			}
			if h>>4 == pktConnect {
				c.Write(encodePacket(pktConnack<<4, []byte{0, 0}))
				continue
			}
			got <- packet{h, body, time.Now()}
		}
	}()
	msgs := make(chan string, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mqttDial(ctx, mqttParams{addr: ln.Addr().String(), clientID: "d", user: "d", pass: "p"}, func(topic string, _ []byte) { msgs <- topic })
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	broker := <-srvConn
	next := func() packet {
		t.Helper()
		select {
		case p, ok := <-got:
			if !ok {
				t.Fatal("connection closed")
			}
			return p
		case <-time.After(5 * time.Second):
			t.Fatal("nothing from the client")
		}
		return packet{}
	}
	// 1. A message with nothing else to send: its PUBACK comes on its own, after the delay.
	sent := time.Now()
	h, body := mqttPublish{qos: 1, topic: "down", id: 7, payload: []byte("ack")}.encode()
	broker.Write(encodePacket(h, body))
	<-msgs
	p := next()
	if id, _, ok := parseAck(p.h, p.body); !ok || p.h>>4 != pktPuback || id != 7 {
		t.Fatalf("want PUBACK 7, got type %d body % x", p.h>>4, p.body)
	}
	if d := p.at.Sub(sent); d < pubackDelay/2 {
		t.Errorf("PUBACK after %s: it was not held back", d)
	}
	// 2. The device publishes right after handling a message: the PUBACK goes first, with it.
	h, body = mqttPublish{qos: 1, topic: "down", id: 8, payload: []byte("ack")}.encode()
	broker.Write(encodePacket(h, body))
	<-msgs
	h, body = mqttPublish{qos: 0, topic: "up", payload: []byte("report")}.encode()
	if err := c.write(h, body); err != nil {
		t.Fatal(err)
	}
	if p := next(); p.h>>4 != pktPuback {
		t.Fatalf("first packet after the report is type %d, want the held PUBACK", p.h>>4)
	} else if id, _, _ := parseAck(p.h, p.body); id != 8 {
		t.Fatalf("PUBACK id %d, want 8", id)
	}
	if p := next(); p.h>>4 != pktPublish {
		t.Fatalf("want the report after the PUBACK, got type %d", p.h>>4)
	}
	// 3. Messages arriving faster than the delay do not push their PUBACKs back forever:
	// the first one's deadline carries them all.
	sent = time.Now()
	for id := uint16(20); id < 40; id++ {
		h, body = mqttPublish{qos: 1, topic: "down", id: id, payload: []byte("ack")}.encode()
		broker.Write(encodePacket(h, body))
		<-msgs
		time.Sleep(pubackDelay / 4)
	}
	for id := uint16(20); id < 40; id++ {
		p := next()
		if got, _, ok := parseAck(p.h, p.body); !ok || got != id {
			t.Fatalf("want PUBACK %d, got type %d id %d", id, p.h>>4, got)
		}
		if id == 20 && p.at.Sub(sent) > 3*pubackDelay {
			t.Errorf("the first PUBACK of a stream came after %s: later messages postponed it", p.at.Sub(sent))
		}
	}
}
