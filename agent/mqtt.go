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

	"github.com/fieldseal/fieldseal/wire"
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

// maxPacket bounds the remaining length of a packet the client reads: the largest packet a
// fieldseal server sends a device is a PUBLISH of one message (at most wire.MaxMessageSize,
// 16 KiB) plus its topic (at most 2+82 bytes for a 64-character device id) and packet id.
// readPacket allocates the body only after checking the declared length against it, so a
// broker (or anyone on the path) announcing a 256 MiB packet costs the device nothing.
const maxPacket = wire.MaxMessageSize + 512

// errPacketTooLarge is returned for a declared remaining length over maxPacket.
var errPacketTooLarge = errors.New("mqtt: packet too large")

type mqttConn struct {
	conn    net.Conn
	wmu     sync.Mutex
	bw      *bufio.Writer
	ackSoon *time.Timer // flushes PUBACKs held back by ackLater
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
	c := &mqttConn{conn: conn, bw: bufio.NewWriterSize(conn, 2048), waiters: map[uint16]chan byte{}, onMsg: onMsg, done: make(chan struct{})}
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
	if err := parseConnack(typ, body); err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	go c.readLoop(br)
	if p.keepAlive > 0 {
		go c.pingLoop(p.keepAlive)
	}
	return c, nil
}

// parseConnack checks that a packet is a CONNACK accepting the connection.
func parseConnack(h byte, body []byte) error {
	if h>>4 != pktConnack || len(body) != 2 {
		return fmt.Errorf("mqtt: expected CONNACK, got packet type %d", h>>4)
	}
	if body[1] != 0 {
		return fmt.Errorf("mqtt: connection refused, return code %d (%s)", body[1], connackReason(body[1]))
	}
	return nil
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
	var hdr [5]byte
	c.bw.Write(appendFixedHeader(hdr[:0], header, len(body)))
	c.bw.Write(body)
	return c.bw.Flush()
}

// pubackDelay bounds how long ackLater holds a PUBACK back.
const pubackDelay = 20 * time.Millisecond

// ackLater queues the PUBACK for a message the server sent, to leave with the next packet
// the device writes (typically its next report, moments after it has handled the ack) or
// within pubackDelay: one TCP segment and one wakeup on the server fewer per report. MQTT
// sets no deadline for a PUBACK; the broker only keeps the message in flight meanwhile.
func (c *mqttConn) ackLater(id uint16) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	first := c.bw.Buffered() == 0 // every other write flushes: nothing else is held
	var b [4]byte
	if _, err := c.bw.Write(append(appendFixedHeader(b[:0], pktPuback<<4, 2), byte(id>>8), byte(id))); err != nil {
		return err
	}
	if !first {
		return nil // the timer armed for the first held PUBACK carries this one too
	}
	if c.ackSoon == nil {
		c.ackSoon = time.AfterFunc(pubackDelay, c.flushHeld)
	} else {
		c.ackSoon.Reset(pubackDelay)
	}
	return nil
}

// flushHeld sends PUBACKs that no other write has carried out yet.
func (c *mqttConn) flushHeld() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.bw.Buffered() > 0 {
		if err := c.bw.Flush(); err != nil {
			c.fail(err)
		}
	}
}

// appendFixedHeader appends the header byte and the remaining length n in MQTT's
// variable-length encoding (7 bits per byte, least significant first, at most 4 bytes).
func appendFixedHeader(b []byte, header byte, n int) []byte {
	b = append(b, header)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

// encodePacket is a whole packet as write sends it.
func encodePacket(header byte, body []byte) []byte {
	return append(appendFixedHeader(make([]byte, 0, 5+len(body)), header, len(body)), body...)
}

// readPacket reads one packet: its header byte and body. The declared remaining length is
// checked against maxPacket before anything is allocated for the body.
func readPacket(r packetReader) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, noEOF(err)
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
		return 0, nil, fmt.Errorf("%w: remaining length %d over the %d-byte limit", errPacketTooLarge, n, maxPacket)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, noEOF(err)
	}
	return h, body, nil
}

// packetReader is what readPacket reads from: a *bufio.Reader on a connection.
type packetReader interface {
	io.Reader
	io.ByteReader
}

// noEOF turns an end of stream inside a packet into io.ErrUnexpectedEOF: only a stream
// ending between packets is a clean io.EOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// mqttPublish is a decoded PUBLISH packet.
type mqttPublish struct {
	dup, retain bool
	qos         byte
	topic       string
	id          uint16 // only for qos > 0
	payload     []byte
}

var errShortPublish = errors.New("mqtt: short publish")

// parsePublish decodes a PUBLISH packet's header byte and body. The payload aliases body.
func parsePublish(h byte, body []byte) (mqttPublish, error) {
	p := mqttPublish{dup: h&8 != 0, qos: (h >> 1) & 3, retain: h&1 != 0}
	if h>>4 != pktPublish {
		return p, fmt.Errorf("mqtt: packet type %d is not PUBLISH", h>>4)
	}
	if p.qos == 3 {
		return p, errors.New("mqtt: publish with QoS 3")
	}
	if len(body) < 2 {
		return p, errShortPublish
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl {
		return p, errShortPublish
	}
	p.topic = string(body[2 : 2+tl])
	rest := body[2+tl:]
	if p.qos > 0 {
		if len(rest) < 2 {
			return p, errShortPublish
		}
		p.id = binary.BigEndian.Uint16(rest)
		rest = rest[2:]
	}
	p.payload = rest
	return p, nil
}

// encode returns the header byte and body of the PUBLISH packet p.
func (p mqttPublish) encode() (byte, []byte) {
	h := byte(pktPublish<<4) | p.qos<<1
	if p.dup {
		h |= 8
	}
	if p.retain {
		h |= 1
	}
	body := appendStr(make([]byte, 0, 2+len(p.topic)+2+len(p.payload)), p.topic)
	if p.qos > 0 {
		body = binary.BigEndian.AppendUint16(body, p.id)
	}
	return h, append(body, p.payload...)
}

// parseAck decodes a PUBACK or SUBACK: the packet id, and for a SUBACK the first return
// code (0x80: refused). ok is false for any other packet or one too short to carry an id.
func parseAck(h byte, body []byte) (id uint16, code byte, ok bool) {
	if t := h >> 4; (t != pktPuback && t != pktSuback) || len(body) < 2 {
		return 0, 0, false
	}
	id = binary.BigEndian.Uint16(body)
	if h>>4 == pktSuback && len(body) > 2 {
		code = body[2]
	}
	return id, code, true
}

func (c *mqttConn) fail(err error) {
	c.errOnce.Do(func() {
		c.err = err
		close(c.done)
		c.conn.Close()
	})
}

func (c *mqttConn) readLoop(r packetReader) {
	for {
		h, body, err := readPacket(r)
		if err != nil {
			c.fail(err)
			return
		}
		switch h >> 4 {
		case pktPublish:
			p, err := parsePublish(h, body)
			if err != nil {
				c.fail(err)
				return
			}
			if p.qos > 0 {
				if err := c.ackLater(p.id); err != nil {
					c.fail(err)
					return
				}
			}
			if c.onMsg != nil {
				c.onMsg(p.topic, p.payload)
			}
		case pktPuback, pktSuback:
			id, code, ok := parseAck(h, body)
			if !ok {
				continue
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
	if err := c.write(mqttPublish{qos: 1, topic: topic, id: id, payload: payload}.encode()); err != nil {
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
