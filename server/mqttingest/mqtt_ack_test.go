package mqttingest

import (
	"bytes"
	"net"
	"sync"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldseal/fieldseal/wire"
)

// appendPublish311 must produce exactly what the broker's own encoder does, across the
// remaining-length boundaries (1, 2 and 3 length bytes) and both QoS levels.
func TestAppendPublish311MatchesBrokerEncoder(t *testing.T) {
	topic := wire.DefaultTopics.Down("meter-0001")
	for _, size := range []int{0, 1, 100, 127 - 2 - len(topic) - 2, 128, 16383 - 2 - len(topic) - 2, 16384, 70000} {
		for _, qos := range []byte{0, 1} {
			payload := bytes.Repeat([]byte{0xa5}, max(0, size))
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}, TopicName: topic, Payload: payload, ProtocolVersion: 4}
			if qos > 0 {
				pk.PacketID = 0x1234
			}
			var want bytes.Buffer
			if err := pk.PublishEncode(&want); err != nil {
				t.Fatal(err)
			}
			got := appendPublish311(nil, qos, pk.PacketID, topic, payload)
			if !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("size %d qos %d: got % x…, broker encodes % x…", size, qos, got[:min(8, len(got))], want.Bytes()[:min(8, want.Len())])
			}
		}
	}
}

// countingConn records each Write as one chunk.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

// A stashed ack goes out in the same Write as the next packet, in front of it; writes with
// nothing stashed pass through unchanged.
func TestAckConnSendsStashedAckWithNextWrite(t *testing.T) {
	under := &countingConn{}
	c := &ackConn{Conn: under}
	if n, err := c.Write([]byte("ping")); n != 4 || err != nil {
		t.Fatalf("plain write: %d, %v", n, err)
	}
	c.stash([]byte("ACK"))
	if len(under.writes) != 1 {
		t.Fatalf("stash wrote to the connection")
	}
	n, err := c.Write([]byte("PUBACK"))
	if err != nil || n != len("PUBACK") {
		t.Fatalf("write after stash: n=%d err=%v (n must count only the caller's bytes)", n, err)
	}
	if len(under.writes) != 2 || string(under.writes[1]) != "ACKPUBACK" {
		t.Fatalf("writes = %q, want the stashed ack and the PUBACK in one write", under.writes)
	}
	c.Write([]byte("next"))
	if string(under.writes[2]) != "next" {
		t.Fatalf("the stash was sent twice: %q", under.writes)
	}
}
