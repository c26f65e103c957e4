// Package mqttingest is the fleet server's MQTT transport: an embedded broker (mochi) that
// authenticates devices by the password derived from their uplink key, confines each to
// its own topics and feeds uplink publishes to server.HandleReport before it acks them;
// or, with Config.MQTTBroker, a subscription on an external broker (shared among
// replicas with Config.MQTTShareGroup).
package mqttingest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/wire"
)

// Ingest is the MQTT transport of one server (a server.Transport named "mqtt").
type Ingest struct {
	s       *server.Server
	log     *slog.Logger
	topics  wire.Topics
	lorawan []server.LoRaWAN // the integrations, some maybe on the embedded broker (embedded.go)
	broker  *mqtt.Server
	addr    string
	ext     *externalBroker
}

// New is the MQTT transport of s; attach it with s.Attach before s.Start.
func New(s *server.Server) *Ingest {
	return &Ingest{s: s, log: s.Logger(), topics: s.Topics(), lorawan: s.Config().LoRaWAN}
}

// Name is "mqtt".
func (m *Ingest) Name() string { return "mqtt" }

// Start subscribes to the external broker (Config.MQTTBroker) or starts the embedded one
// on Config.MQTTAddr (nothing when it is "off").
func (m *Ingest) Start(ctx context.Context) error {
	cfg := m.s.Config()
	if cfg.MQTTBroker != "" {
		ext, err := m.connectExternal(ctx, cfg)
		if err != nil {
			return err
		}
		m.ext = ext
		return nil
	}
	if cfg.MQTTAddr == "off" {
		return nil
	}
	return m.startBroker(cfg)
}

// Addr is the embedded broker's address ("" before Start, when off or external).
func (m *Ingest) Addr() string { return m.addr }

// Shutdown disconnects from the external broker or closes the embedded one.
func (m *Ingest) Shutdown(context.Context) error {
	if m.ext != nil {
		m.ext.close()
	}
	if m.broker != nil {
		m.broker.Close()
	}
	return nil
}

func (m *Ingest) startBroker(cfg server.Config) error {
	ln, err := server.Listen(cfg.MQTTAddr, "--mqtt")
	if err != nil {
		if errors.Is(err, server.ErrAddrInUse) {
			return server.AddrInUse(fmt.Sprintf("%s is already in use (another MQTT broker?): choose another address with --mqtt, or consume from that broker with --mqtt-broker tcp://%s", cfg.MQTTAddr, cfg.MQTTAddr))
		}
		return err
	}
	// mochi serves on our listener: no window between probing the port and listening on it,
	// and "127.0.0.1:0" works (tests and the demo take whatever port is free).
	addr := ln.Addr().String()
	if cfg.MQTTTLS != nil {
		ln = tls.NewListener(ln, cfg.MQTTTLS)
	}
	opts := &mqtt.Options{InlineClient: true, Logger: m.log.With("component", "mqtt")}
	if !m.log.Enabled(context.Background(), slog.LevelDebug) {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = 64 << 10
	caps.MaximumMessageExpiryInterval = 24 * 3600
	opts.Capabilities = caps
	b := mqtt.New(opts)
	if err := b.AddHook(&brokerHook{m: m}, nil); err != nil {
		ln.Close()
		return err
	}
	if err := b.AddListener(listeners.NewNet("fieldseal", ackListener{ln})); err != nil {
		ln.Close()
		return fmt.Errorf("MQTT listener on %s (--mqtt): %w", cfg.MQTTAddr, err)
	}
	if err := b.Serve(); err != nil {
		return err
	}
	m.broker = b
	m.addr = addr
	m.log.Info("MQTT broker listening", "addr", m.addr)
	return nil
}

// Retained is the number of messages the embedded broker retains (none, unless a client
// other than a device sets retain): for health checks and tests.
func (m *Ingest) Retained() int64 {
	if m.broker == nil {
		return 0
	}
	return atomic.LoadInt64(&m.broker.Info.Retained)
}

// brokerHook authenticates devices, confines each to its own topics, and feeds uplink
// publishes through the pipeline before the broker acks them.
type brokerHook struct {
	mqtt.HookBase
	m *Ingest
}

func (h *brokerHook) ID() string { return "fieldseal" }

// Provides is asked for every hook call on every packet: no allocation here.
func (h *brokerHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish:
		return true
	}
	return false
}

func (h *brokerHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if ns := h.m.embeddedNS(pk.Connect.Username); ns != nil {
		return nsAuthenticate(ns, pk) // a LoRaWAN network server (embedded.go)
	}
	dev := string(pk.Connect.Username)
	if !wire.ValidDeviceID(dev) {
		return false
	}
	// No wills: the broker publishes a will on the client's behalf without any ACL check,
	// so a will would let a device put (and retain) a message on another device's downlink
	// (threat S11). Neither fieldseal client sets one.
	if pk.Connect.WillFlag {
		h.m.log.Info("mqtt connect refused: a will is set", "dev", dev)
		return false
	}
	// The client id is the device id (or "<dev>/<suffix>"): a device cannot take over
	// another's session by connecting under its client id.
	if cid := pk.Connect.ClientIdentifier; cid != dev && !strings.HasPrefix(cid, dev+"/") {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.m.s.AuthenticateDevice(ctx, dev, pk.Connect.Password)
}

func (h *brokerHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true // the server's own client
	}
	if ns := h.m.embeddedNS(cl.Properties.Username); ns != nil {
		return nsMay(ns, topic, write)
	}
	dev := string(cl.Properties.Username)
	if write {
		return topic == h.m.topics.Up(dev)
	}
	return topic == h.m.topics.Down(dev)
}

func (h *brokerHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	if h.m.embeddedNS(cl.Properties.Username) != nil {
		if pk.FixedHeader.Retain {
			return pk, packets.ErrRejectPacket // as for devices (S11)
		}
		return pk, nil // to the LoRaWAN integration's subscription (its ACL checked the topic)
	}
	dev, ok := h.m.topics.DeviceOfUp(pk.TopicName)
	if !ok || dev != string(cl.Properties.Username) {
		return pk, packets.ErrRejectPacket
	}
	if pk.FixedHeader.Retain {
		// Devices never retain: a retained report would be replayed to every new uplink
		// subscriber (S11). Dropped unprocessed, without a PUBACK.
		h.m.log.Info("mqtt publish refused: retain set", "dev", dev)
		return pk, packets.ErrRejectPacket
	}
	// Runs before the broker sends PUBACK: the MQTT-level ack follows the durable commit.
	ack, err := h.m.s.HandleReport(context.Background(), pk.Payload)
	if ack != nil && !h.stashAck(cl, pk, dev, ack) {
		if perr := h.m.broker.Publish(h.m.topics.Down(dev), ack, false, 1); perr != nil {
			h.m.log.Warn("publishing ack", "dev", dev, "err", perr)
		}
	}
	if err != nil {
		h.m.log.Debug("mqtt report rejected", "dev", dev, "reason", server.Reason(err))
	}
	return pk, packets.CodeSuccessIgnore // handled: not forwarded to subscribers
}

// stashAck hands the ack to the reporting connection itself, to go out in the same write
// as the PUBACK the broker sends when this hook returns: one TCP segment and one wakeup
// on the device instead of two, and no trip through the broker's topic index and write
// queue. It applies only where that is exactly what the broker would have done: an MQTT
// 3.1.1 connection that is subscribed to its downlink and sent the report at QoS 1 (so a
// PUBACK follows). Anything else is published the ordinary way. The ack is registered as
// in flight under a fresh packet id, so the device's PUBACK for it is matched as usual.
// (Other connections of the same device, "<dev>/<suffix>", then do not get a copy: the
// ack answers the connection that sent the report.)
func (h *brokerHook) stashAck(cl *mqtt.Client, pk packets.Packet, dev string, ack []byte) bool {
	conn, ok := cl.Net.Conn.(*ackConn)
	if !ok || pk.FixedHeader.Qos != 1 || cl.Properties.ProtocolVersion >= 5 || cl.Closed() {
		return false
	}
	topic := h.m.topics.Down(dev)
	sub, ok := cl.State.Subscriptions.Get(topic)
	if !ok || cl.State.Inflight.Len() >= int(h.m.broker.Options.Capabilities.MaximumInflight) {
		return false
	}
	out := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: min(sub.Qos, 1)},
		TopicName: topic, Payload: ack, Created: time.Now().Unix(), ProtocolVersion: cl.Properties.ProtocolVersion}
	if out.FixedHeader.Qos > 0 {
		id, err := cl.NextPacketID()
		if err == nil && uint16(id) == pk.PacketID {
			// The broker parks its PUBACK under the report's id while sending it: keep clear.
			id, err = cl.NextPacketID()
		}
		if err != nil {
			return false
		}
		out.PacketID = uint16(id)
		if cl.State.Inflight.Set(out) {
			atomic.AddInt64(&h.m.broker.Info.Inflight, 1)
			cl.State.Inflight.DecreaseSendQuota()
		}
	}
	conn.stash(appendPublish311(conn.scratch[:0], out.FixedHeader.Qos, out.PacketID, topic, ack))
	return true
}

// appendPublish311 appends an MQTT 3.1.1 PUBLISH packet.
func appendPublish311(b []byte, qos byte, id uint16, topic string, payload []byte) []byte {
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	b = append(b, 0x30|qos<<1)
	for { // remaining length, 7 bits at a time
		c := byte(n & 0x7f)
		n >>= 7
		if n > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if n == 0 {
			break
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	return append(b, payload...)
}

// ackListener hands the broker ackConns.
type ackListener struct{ net.Listener }

func (l ackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &ackConn{Conn: c}, nil
}

// ackConn is a device connection that can hold back one ack until the broker's next
// write (the PUBACK of the report it answers) and send both in one Write.
type ackConn struct {
	net.Conn
	mu      sync.Mutex // held across writes: whatever is stashed goes out first, in order
	pending []byte
	scratch []byte
}

func (c *ackConn) stash(b []byte) {
	c.mu.Lock()
	c.pending = append(c.pending, b...)
	c.scratch = b
	c.mu.Unlock()
}

func (c *ackConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		return c.Conn.Write(b)
	}
	held := len(c.pending)
	c.pending = append(c.pending, b...)
	n, err := c.Conn.Write(c.pending)
	c.pending = c.pending[:0]
	return max(0, n-held), err
}

// externalBroker consumes uplinks from an external broker with paho (MQTT 3.1.1).
type externalBroker struct {
	cl paho.Client
}

func (m *Ingest) connectExternal(ctx context.Context, cfg server.Config) (*externalBroker, error) {
	id := make([]byte, 6)
	rand.Read(id)
	opts := paho.NewClientOptions().AddBroker(cfg.MQTTBroker).SetClientID("fieldseal-server-" + hex.EncodeToString(id)).
		SetCleanSession(true).SetAutoReconnect(true).SetOrderMatters(false).SetConnectTimeout(10 * time.Second).
		SetMaxReconnectInterval(10 * time.Second)
	topic := m.topics.UplinkFilter()
	if g := cfg.MQTTShareGroup; g != "" {
		topic = m.topics.SharedUplinkFilter(g)
	}
	var cl paho.Client
	handler := func(_ paho.Client, msg paho.Message) {
		dev, ok := m.topics.DeviceOfUp(msg.Topic())
		if !ok {
			return
		}
		ack, _ := m.s.HandleReport(context.Background(), msg.Payload())
		if ack != nil {
			cl.Publish(m.topics.Down(dev), 1, false, ack)
		}
	}
	opts.SetOnConnectHandler(func(c paho.Client) {
		if t := c.Subscribe(topic, 1, handler); t.WaitTimeout(10*time.Second) && t.Error() != nil {
			m.log.Error("subscribe", "broker", cfg.MQTTBroker, "err", t.Error())
		}
	})
	cl = paho.NewClient(opts)
	t := cl.Connect()
	if !t.WaitTimeout(15*time.Second) || t.Error() != nil {
		return nil, fmt.Errorf("connect to MQTT broker %s (--mqtt-broker): %v", cfg.MQTTBroker, t.Error())
	}
	m.log.Info("consuming from external MQTT broker", "broker", cfg.MQTTBroker, "topic", topic)
	return &externalBroker{cl: cl}, nil
}

func (e *externalBroker) close() { e.cl.Disconnect(2000) }
