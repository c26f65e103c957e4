package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/fieldseal/fieldseal/wire"
)

// Transport carries reports to the server and its answers back.
type Transport interface {
	// Send delivers one report and returns the server's answer (an ack, possibly with
	// Reject set). An error means the report may not have arrived: keep the entries and
	// send them again with the next report.
	Send(ctx context.Context, report []byte) (ack []byte, err error)
	Close() error
}

// ErrNoAck is returned when a report left but no answer came in time.
var ErrNoAck = errors.New("no ack")

// DialOptions tunes a transport.
type DialOptions struct {
	Timeout   time.Duration // per report; default 10 s
	TLS       *tls.Config   // for mqtts:// and https://
	HTTP      *http.Client  // shared client for http(s); default one per transport
	KeepAlive time.Duration // MQTT keepalive; default 60 s
	TopicRoot string        // MQTT topic root, over the bundle's; default the bundle's (absent there: wire.DefaultTopicRoot)
}

// Dial returns the transport for a server URL: mqtt://, mqtts://, http:// or https://.
func Dial(ctx context.Context, server string, b *wire.Bundle, o DialOptions) (Transport, error) {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	switch u.Scheme {
	case "http", "https":
		c := o.HTTP
		if c == nil {
			c = &http.Client{Transport: &http.Transport{TLSClientConfig: o.TLS, MaxIdleConnsPerHost: 2}}
		}
		return &httpTransport{url: strings.TrimSuffix(server, "/") + "/v1/reports", c: c, timeout: o.Timeout}, nil
	case "mqtt", "mqtts", "tcp", "ssl", "tls":
		return dialMQTT(ctx, u, b, o)
	}
	return nil, fmt.Errorf("server URL %q: scheme must be mqtt, mqtts, http or https", server)
}

type httpTransport struct {
	url     string
	c       *http.Client
	timeout time.Duration
}

func (t *httpTransport) Send(ctx context.Context, report []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(report))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", wire.ReportMediaType)
	resp, err := t.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, wire.MaxMessageSize+1))
	if err != nil {
		return nil, err
	}
	// A refused but authenticated report is answered with an ack carrying Reject, whatever
	// the status: hand it to the device, which checks it like any ack.
	if _, perr := wire.ParseMac0(body, wire.MaxMessageSize); perr == nil {
		return body, nil
	}
	return nil, fmt.Errorf("server answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
}

func (t *httpTransport) Close() error {
	t.c.CloseIdleConnections()
	return nil
}

type mqttTransport struct {
	p        mqttParams
	up, down string
	timeout  time.Duration
	mu       sync.Mutex // one report in flight at a time: answers are matched by order
	c        *mqttConn
	acks     chan []byte
}

func dialMQTT(ctx context.Context, u *url.URL, b *wire.Bundle, o DialOptions) (Transport, error) {
	topics := b.Topics()
	if o.TopicRoot != "" {
		topics = wire.Topics{Root: o.TopicRoot}
	}
	if !wire.ValidTopicRoot(topics.Root) && topics.Root != "" {
		return nil, fmt.Errorf("topic root %q: %s", topics.Root, wire.TopicRootRule)
	}
	up, down := topics.Up(b.Device), topics.Down(b.Device)
	ka := o.KeepAlive
	if ka == 0 {
		ka = 60 * time.Second
	}
	p := mqttParams{addr: u.Host, clientID: b.Device, user: b.Device, pass: wire.MQTTPassword(b.UplinkKey), keepAlive: ka}
	if u.Scheme == "mqtts" || u.Scheme == "ssl" || u.Scheme == "tls" {
		p.tls = o.TLS
		if p.tls == nil {
			p.tls = &tls.Config{ServerName: u.Hostname()}
		}
	}
	t := &mqttTransport{p: p, up: up, down: down, timeout: o.Timeout, acks: make(chan []byte, 8)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.connect(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// connect (re)establishes the session: the session is clean, so subscribe every time.
func (t *mqttTransport) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	c, err := mqttDial(ctx, t.p, func(topic string, payload []byte) {
		if topic != t.down {
			return
		}
		p := append([]byte(nil), payload...)
		select {
		case t.acks <- p:
		default: // nobody is waiting and the queue is full: the next report asks again
		}
	})
	if err != nil {
		return fmt.Errorf("mqtt connect %s: %w", t.p.addr, err)
	}
	if err := c.subscribe(ctx, t.down); err != nil {
		c.close()
		return fmt.Errorf("mqtt subscribe: %w", err)
	}
	t.c = c
	return nil
}

func (t *mqttTransport) Send(ctx context.Context, report []byte) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		select {
		case <-t.c.done:
			t.c = nil
		default:
		}
	}
	if t.c == nil {
		if err := t.connect(ctx); err != nil {
			return nil, err
		}
	}
drain: // answers to earlier reports that came too late are superseded by this one's
	for {
		select {
		case <-t.acks:
		default:
			break drain
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if err := t.c.publish(ctx, t.up, report); err != nil {
		return nil, fmt.Errorf("%w: publish: %v", ErrNoAck, err)
	}
	select {
	case a := <-t.acks:
		return a, nil
	case <-t.c.done:
		return nil, fmt.Errorf("%w: connection lost: %v", ErrNoAck, t.c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrNoAck, ctx.Err())
	}
}

// Next waits for the next message on the downlink, after Send returned one the device did
// not take (forged, or an answer to an earlier report): the ack that answers the report
// may still come (Runner.Report, PROTOCOL.md "Downlink rules").
func (t *mqttTransport) Next(ctx context.Context) ([]byte, error) {
	t.mu.Lock()
	c := t.c
	t.mu.Unlock()
	if c == nil {
		return nil, fmt.Errorf("%w: not connected", ErrNoAck)
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	select {
	case a := <-t.acks:
		return a, nil
	case <-c.done:
		return nil, fmt.Errorf("%w: connection lost: %v", ErrNoAck, c.err)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrNoAck, ctx.Err())
	}
}

func (t *mqttTransport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.c != nil {
		t.c.close()
		t.c = nil
	}
	return nil
}
