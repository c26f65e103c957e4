package agent

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
)

// discardConn is the broker side of a fuzzed connection: the client's answers (PUBACKs)
// go nowhere. Only Write and Close are called by the read loop.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
func (discardConn) Close() error                { return nil }

// mqttSeeds are packets a broker may send a device, honest and broken. They are small on
// purpose: the fuzzer minimizes every new input, and a 16 KiB one takes it a minute
// (TestMQTTPacketLengthCap reads a packet at the limit).
func mqttSeeds() [][]byte {
	down := "fieldseal/v1/dev-1/down"
	pub := func(p mqttPublish) []byte { return encodePacket(p.encode()) }
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	ack := bytes.Repeat([]byte{0xa5}, 200)
	return [][]byte{
		encodePacket(pktConnack<<4, []byte{0, 0}),                  // accepted
		encodePacket(pktConnack<<4, []byte{0, 5}),                  // not authorized
		encodePacket(pktConnack<<4, []byte{0}),                     // short
		encodePacket(pktPuback<<4, []byte{0, 1}),                   // ack of packet 1
		encodePacket(pktSuback<<4, []byte{0, 1, 1}),                // granted QoS 1
		encodePacket(pktSuback<<4, []byte{0, 1, 0x80}),             // refused
		encodePacket(pktPingresp<<4, nil),                          //
		pub(mqttPublish{qos: 1, topic: down, id: 7, payload: ack}), // an ack downlink
		pub(mqttPublish{qos: 0, topic: down, payload: ack}),
		pub(mqttPublish{qos: 2, dup: true, retain: true, topic: "other/topic", id: 0xffff}),
		cat(encodePacket(pktConnack<<4, []byte{0, 0}), encodePacket(pktSuback<<4, []byte{0, 1, 1}),
			pub(mqttPublish{qos: 1, topic: down, id: 2, payload: ack}), encodePacket(pktPingresp<<4, nil)),
		{pktPublish<<4 | 6, 4, 0, 1, 'x', 0},         // QoS 3
		{pktPublish<<4 | 2, 3, 0, 1, 'x'},            // no packet id
		{pktPublish << 4, 2, 0xff, 0xff},             // topic longer than the packet
		{pktPublish << 4, 0xff, 0xff, 0xff, 0x7f},    // declares 256 MiB
		{pktPublish << 4, 0x81, 0x81, 0x01},          // declares just over the limit
		{pktPublish << 4, 0xff, 0xff, 0xff, 0xff, 1}, // five length bytes
		{pktPuback << 4, 0x80, 0x00},                 // non-minimal length 0
		{pktPuback << 4, 2, 0},                       // truncated body
		{pktPingresp << 4},                           // truncated length
		{0xf0, 0},                                    // reserved packet type
		{},
	}
}

// FuzzMQTTPacket feeds arbitrary bytes from the broker to the agent's MQTT decoder:
// readPacket, the PUBLISH/PUBACK/SUBACK/CONNACK parsers and the client's read loop. It
// must never panic, never return (or allocate) a body over maxPacket whatever remaining
// length the bytes declare, and every packet it decodes must round-trip through the
// client's encoders.
func FuzzMQTTPacket(f *testing.F) {
	for _, s := range mqttSeeds() {
		f.Add(s)
	}
	f.Fuzz(checkMQTTPacket)
}

func checkMQTTPacket(t *testing.T, data []byte) {
	if len(data) > 2*maxPacket+64 {
		// Room for a packet over the limit and a second packet; longer inputs only repeat
		// packets, and cost the fuzzer seconds each to minimize.
		t.Skip("input over the fuzzed size")
	}
	{
		r := bytes.NewReader(data)
		consumed := func() int { return len(data) - r.Len() }
		for {
			start := consumed()
			h, body, err := readPacket(r)
			if err != nil {
				if err == io.EOF && start != len(data) {
					t.Fatalf("clean EOF inside a packet at %d of %d bytes", start, len(data))
				}
				break
			}
			if len(body) > maxPacket {
				t.Fatalf("body of %d bytes over the %d limit", len(body), maxPacket)
			}
			raw := data[start:consumed()]
			enc := encodePacket(h, body)
			// The encoder writes the shortest length; the decoder also takes longer ones.
			if len(raw) < len(enc) || len(raw) == len(enc) && !bytes.Equal(raw, enc) || !bytes.Equal(raw[len(raw)-len(body):], body) {
				t.Fatalf("packet %x re-encodes as %x", raw, enc)
			}
			h2, body2, err := readPacket(bytes.NewReader(enc))
			if err != nil || h2 != h || !bytes.Equal(body2, body) {
				t.Fatalf("re-encoded packet %x decodes as %#x %x, %v", enc, h2, body2, err)
			}
			switch h >> 4 {
			case pktPublish:
				p, err := parsePublish(h, body)
				if err != nil {
					break
				}
				if p.qos > 2 || len(p.payload) > len(body) {
					t.Fatalf("publish %+v from %x", p, body)
				}
				if h2, b2 := p.encode(); h2 != h || !bytes.Equal(b2, body) {
					t.Fatalf("publish %#x %x re-encodes as %#x %x", h, body, h2, b2)
				}
			case pktPuback, pktSuback:
				id, _, ok := parseAck(h, body)
				if ok != (len(body) >= 2) || ok && id != uint16(body[0])<<8|uint16(body[1]) {
					t.Fatalf("ack %#x %x: id %d ok %v", h, body, id, ok)
				}
			case pktConnack:
				if err := parseConnack(h, body); err == nil && (len(body) != 2 || body[1] != 0) {
					t.Fatalf("connack %x accepted", body)
				}
			}
		}

		// The whole read loop, as a connected client runs it, with acks awaited.
		c := &mqttConn{conn: discardConn{}, bw: bufio.NewWriter(discardConn{}), waiters: map[uint16]chan byte{},
			done: make(chan struct{})}
		c.onMsg = func(topic string, payload []byte) {
			if len(topic)+len(payload) > maxPacket {
				t.Fatalf("message of %d bytes over the limit", len(topic)+len(payload))
			}
		}
		for range 3 {
			c.newID()
		}
		c.readLoop(bytes.NewReader(data))
		select {
		case <-c.done:
		default:
			t.Fatal("read loop returned without failing the connection")
		}
		if c.err == nil {
			t.Fatal("read loop failed with no error")
		}

		// The bytes as a downlink payload: what the client's encoder writes, it reads back.
		if len(data) <= maxPacket-100 {
			want := mqttPublish{qos: 1, topic: "fieldseal/v1/dev-1/down", id: 42, payload: data}
			h, body, err := readPacket(bytes.NewReader(encodePacket(want.encode())))
			if err != nil {
				t.Fatal(err)
			}
			got, err := parsePublish(h, body)
			if err != nil || got.topic != want.topic || got.id != want.id || got.qos != 1 || !bytes.Equal(got.payload, data) {
				t.Fatalf("publish round trip: %+v, %v", got, err)
			}
		}
	}
}

// A declared remaining length over the limit is refused before the body is allocated:
// reading a stream that declares (and carries) 1 MiB allocates far less than that.
func TestMQTTPacketLengthCap(t *testing.T) {
	for _, n := range []int{maxPacket + 1, 1 << 20, 268435455} {
		hdr := appendFixedHeader(nil, pktPublish<<4, n)
		stream := io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeroReader{}, 1<<20))
		r := bufio.NewReaderSize(stream, 64)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, body, err := readPacket(r)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, errPacketTooLarge) || body != nil {
			t.Fatalf("remaining length %d: body %d bytes, err %v", n, len(body), err)
		}
		if a := after.TotalAlloc - before.TotalAlloc; a > 4096 {
			t.Errorf("remaining length %d: %d bytes allocated before refusing", n, a)
		}
	}
	// Exactly the limit is read.
	p := encodePacket(pktPuback<<4, make([]byte, maxPacket))
	if _, body, err := readPacket(bufio.NewReader(bytes.NewReader(p))); err != nil || len(body) != maxPacket {
		t.Fatalf("packet at the limit: %d bytes, %v", len(body), err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }
