package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// A minimal MQTT 3.1.1 client: exactly what a device needs (connect with credentials,
// subscribe to its downlink topic, publish reports at QoS 1, keepalive) and nothing else.
// Written here rather than imported to keep the agent's trusted base small and to let a
// simulated town hold thousands of connections cheaply (one reader goroutine each).

const (
	pktConnect    = 1
	pktConnack    = 2
	pktPublish    = 3
	pktPuback     = 4
	pktSubscribe  = 8
	pktSuback     = 9
	pktPingreq    = 12
	pktPingresp   = 13
	pktDisconnect = 14
)

// maxPacket bounds what the client reads: an ack is far below 16 KiB.
const maxPacket = 64 << 10

type mqttConn struct {
	conn    net.Conn
	wmu     sync.Mutex
	bw      *bufio.Writer
	nextID  uint16
	idmu    sync.Mutex
	waiters map[uint16]chan byte // packet id → puback/suback
	onMsg   func(topic string, payload []byte)
	done    chan struct{}
	err     error
	errOnce sync.Once
}

type mqttParams struct {
	addr, clientID, user, pass string
	keepAlive                  time.Duration
	tls                        *tls.Config
}

func mqttDial(ctx context.Context, p mqttParams, onMsg func(string, []byte)) (*mqttConn, error) {
	d := net.Dialer{}
	var conn net.Conn
	var err error
	if p.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: p.tls}
		conn, err = td.DialContext(ctx, "tcp", p.addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", p.addr)
	}
	if err != nil {
		return nil, err
	}
	c := &mqttConn{conn: conn, bw: bufio.NewWriterSize(conn, 512), waiters: map[uint16]chan byte{}, onMsg: onMsg, done: make(chan struct{})}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// CONNECT: protocol name, level 4, flags (user, password, clean session), keepalive.
	var vh []byte
	vh = appendStr(vh, "MQTT")
	vh = append(vh, 4, 0xC2)
	vh = binary.BigEndian.AppendUint16(vh, uint16(p.keepAlive/time.Second))
	vh = appendStr(vh, p.clientID)
	vh = appendStr(vh, p.user)
	vh = appendStr(vh, p.pass)
	if err := c.write(pktConnect<<4, vh); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 1024)
	typ, body, err := readPacket(br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("mqtt connack: %w", err)
	}
	if typ>>4 != pktConnack || len(body) != 2 {
		conn.Close()
		return nil, fmt.Errorf("mqtt: expected CONNACK, got packet type %d", typ>>4)
	}
	if body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("mqtt: connection refused, return code %d (%s)", body[1], connackReason(body[1]))
	}
	conn.SetDeadline(time.Time{})
	go c.readLoop(br)
	if p.keepAlive > 0 {
		go c.pingLoop(p.keepAlive)
	}
	return c, nil
}

func connackReason(code byte) string {
	switch code {
	case 1:
		return "protocol version"
	case 2:
		return "client id rejected"
	case 3:
		return "server unavailable"
	case 4:
		return "bad user name or password"
	case 5:
		return "not authorized"
	}
	return "unknown"
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (c *mqttConn) write(header byte, body []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.bw.WriteByte(header)
	n := len(body)
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		c.bw.WriteByte(b)
		if n == 0 {
			break
		}
	}
	c.bw.Write(body)
	return c.bw.Flush()
}

func readPacket(r *bufio.Reader) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		mul *= 128
		if i == 3 {
			return 0, nil, errors.New("mqtt: malformed remaining length")
		}
	}
	if n > maxPacket {
		return 0, nil, fmt.Errorf("mqtt: %d-byte packet over the %d limit", n, maxPacket)
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return h, body, err
}

func (c *mqttConn) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.done)
		c.conn.Close()
	})
}

func (c *mqttConn) readLoop(r *bufio.Reader) {
	for {
		h, body, err := readPacket(r)
		if err != nil {
			c.fail(err)
			return
		}
		switch h >> 4 {
		case pktPublish:
			if len(body) < 2 {
				c.fail(errors.New("mqtt: short publish"))
				return
			}
			tl := int(binary.BigEndian.Uint16(body))
			if len(body) < 2+tl {
				c.fail(errors.New("mqtt: short publish"))
				return
			}
			topic := string(body[2 : 2+tl])
			rest := body[2+tl:]
			if qos := (h >> 1) & 3; qos > 0 {
				if len(rest) < 2 {
					c.fail(errors.New("mqtt: short publish"))
					return
				}
				id := rest[:2]
				rest = rest[2:]
				if err := c.write(pktPuback<<4, append([]byte(nil), id...)); err != nil {
					c.fail(err)
					return
				}
			}
			if c.onMsg != nil {
				c.onMsg(topic, rest)
			}
		case pktPuback, pktSuback:
			if len(body) < 2 {
				continue
			}
			id := binary.BigEndian.Uint16(body)
			code := byte(0)
			if h>>4 == pktSuback && len(body) > 2 {
				code = body[2]
			}
			c.idmu.Lock()
			ch := c.waiters[id]
			delete(c.waiters, id)
			c.idmu.Unlock()
			if ch != nil {
				ch <- code
			}
		case pktPingresp:
		default:
			c.fail(fmt.Errorf("mqtt: unexpected packet type %d", h>>4))
			return
		}
	}
}

func (c *mqttConn) pingLoop(ka time.Duration) {
	t := time.NewTicker(ka / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.write(pktPingreq<<4, nil); err != nil {
				c.fail(err)
				return
			}
		}
	}
}

func (c *mqttConn) newID() (uint16, chan byte) {
	c.idmu.Lock()
	defer c.idmu.Unlock()
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	ch := make(chan byte, 1)
	c.waiters[c.nextID] = ch
	return c.nextID, ch
}

func (c *mqttConn) forget(id uint16) {
	c.idmu.Lock()
	delete(c.waiters, id)
	c.idmu.Unlock()
}

func (c *mqttConn) await(ctx context.Context, id uint16, ch chan byte) (byte, error) {
	select {
	case code := <-ch:
		return code, nil
	case <-c.done:
		c.forget(id)
		return 0, c.err
	case <-ctx.Done():
		c.forget(id)
		return 0, ctx.Err()
	}
}

func (c *mqttConn) subscribe(ctx context.Context, topic string) error {
	id, ch := c.newID()
	body := binary.BigEndian.AppendUint16(nil, id)
	body = appendStr(body, topic)
	body = append(body, 1)
	if err := c.write(pktSubscribe<<4|2, body); err != nil {
		c.forget(id)
		return err
	}
	code, err := c.await(ctx, id, ch)
	if err != nil {
		return err
	}
	if code == 0x80 {
		return fmt.Errorf("mqtt: subscription to %s refused", topic)
	}
	return nil
}

// publish sends at QoS 1 and waits for the PUBACK: the broker has taken the message.
func (c *mqttConn) publish(ctx context.Context, topic string, payload []byte) error {
	id, ch := c.newID()
	body := appendStr(make([]byte, 0, 2+len(topic)+2+len(payload)), topic)
	body = binary.BigEndian.AppendUint16(body, id)
	body = append(body, payload...)
	if err := c.write(pktPublish<<4|2, body); err != nil {
		c.forget(id)
		return err
	}
	_, err := c.await(ctx, id, ch)
	return err
}

func (c *mqttConn) close() {
	c.write(pktDisconnect<<4, nil)
	c.fail(errors.New("closed"))
}
