// Package server is the fieldseal fleet server: it ingests device reports over MQTT
// (embedded broker or an external one) and HTTP, verifies them (MAC, counters, nonce,
// manifest, FS-chain segment), moves devices through their state machine, stores
// everything durably before it acks, raises alerts and serves the operator API.
//
// Every report, whatever its transport, goes through HandleReport; every rejection has a
// stable reason name (reasons.go) used in logs, metrics, audit records and API answers.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fieldseal/fieldseal/analytics/districts"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// Defaults of a zero-setup start.
const (
	DefaultDataDir  = "fieldseal-data"
	DefaultHTTPAddr = "127.0.0.1:8080"
	DefaultMQTTAddr = "127.0.0.1:1883"
)

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	DataDir    string // holds server.key and admin.token; default ./fieldseal-data
	HTTPAddr   string // default 127.0.0.1:8080; "off" disables HTTP
	MQTTAddr   string // embedded broker; default 127.0.0.1:1883; "off" disables it
	MQTTBroker string // tcp://host:port of an external broker to consume from instead of the embedded one
	// MQTTShareGroup, when set, subscribes to the external broker with the shared
	// subscription $share/<group>/<root>/+/up, so the replicas of one group split the
	// load (the broker must support shared subscriptions: MQTT 5 brokers, and Mosquitto
	// also for 3.1.1 clients). "fieldseal" is the customary group.
	MQTTShareGroup string
	// TopicRoot is the root of the MQTT topics (default wire.DefaultTopicRoot,
	// "fieldseal/v1"): two fleets can share one broker under two roots.
	TopicRoot string

	VendorKeys []ed25519.PublicKey // keys that may sign manifests
	// Store is where everything durable lives (required; the caller opens it, e.g. with
	// store/storeurl, and closes it after Shutdown). The server imports no backend.
	Store store.Store
	Now   func() time.Time // optional clock (the demo runs compressed time)
	// SilentAfter is how many report intervals a device may miss before it is silent (default 3).
	SilentAfter int
	// SilentCheck is how often the silence timer runs (default 1 minute; 0 keeps the default).
	SilentCheck time.Duration
	// ReceiptInterval is how old (server time) a device's latest anchor receipt may get
	// before an accepted report that moves its anchor gets a fresh one; tamper evidence,
	// a state change or a new boot always get one (docs/PROTOCOL.md, "Anchor receipt").
	// Default 1 hour; negative signs a receipt whenever the anchor moves.
	ReceiptInterval time.Duration
	Logger          *slog.Logger
	Webhooks        []string // alert webhooks: POST JSON, retried with backoff
	// Dashboard is the operator's console (server/dashboard), mounted at / and /ui/; it
	// signs people in itself. The composition root builds it on the server's Console (it
	// needs the server, so SetDashboard may set it after New).
	Dashboard http.Handler

	HTTPTLS *tls.Config // optional TLS for the HTTP listener
	MQTTTLS *tls.Config // optional TLS for the embedded MQTT listener

	// MaxBatch bounds how many changes one group commit writes (default 1024).
	MaxBatch int
	// DeviceCache bounds the devices kept in memory (default 200,000).
	DeviceCache int

	// LoRaWAN are the network server integrations server/lorawan ingests LPWAN frames from.
	LoRaWAN []LoRaWAN

	// Balance schedules the districts' water balance and inspection lists (analytics/districts).
	Balance BalanceConfig
}

// Server is a running fleet server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	st     store.Store
	priv   ed25519.PrivateKey
	admin  string
	devs   *deviceCache
	mans   *manifestCache
	euis   euiCache // LoRaWAN DevEUI → device (deveui.go)
	commit *committer
	met    *metrics
	alerts *alerter

	recordLimit *rateLimit // audit records of unauthenticated rejections
	topics      wire.Topics
	transports  []Transport // attached before Start, started in order
	started     int         // how many of them Start has started

	bal *districts.Refresher

	inflight sync.WaitGroup
	mu       sync.Mutex // guards closing and once
	closing  bool
	once     map[string]onceCode // one-time console sign-in codes (ConsoleLink)
	stopBg   context.CancelFunc
	bgDone   sync.WaitGroup
}

// New prepares a server on cfg.Store: it creates, on first start, the server's
// Ed25519 key (DIR/server.key) and an admin API token (DIR/admin.token, mode 0600).
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = DefaultHTTPAddr
	}
	if cfg.MQTTAddr == "" && cfg.MQTTBroker == "" {
		cfg.MQTTAddr = DefaultMQTTAddr
	}
	if cfg.SilentAfter <= 0 {
		cfg.SilentAfter = 3
	}
	if cfg.ReceiptInterval == 0 {
		cfg.ReceiptInterval = time.Hour
	}
	if cfg.SilentCheck <= 0 {
		cfg.SilentCheck = time.Minute
	}
	if cfg.Balance.Every == 0 {
		cfg.Balance.Every = time.Hour
	}
	if cfg.Balance.History <= 0 {
		cfg.Balance.History = 60 * 24 * time.Hour
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 1024
	}
	if cfg.TopicRoot == "" {
		cfg.TopicRoot = wire.DefaultTopicRoot
	}
	if !wire.ValidTopicRoot(cfg.TopicRoot) {
		return nil, fmt.Errorf("topic root %q: %s", cfg.TopicRoot, wire.TopicRootRule)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, topics: wire.Topics{Root: cfg.TopicRoot}, once: map[string]onceCode{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data folder: %w", err)
	}
	if err := s.loadKey(); err != nil {
		return nil, err
	}
	s.st = cfg.Store
	if s.st == nil {
		return nil, errors.New("server: no store: open one with store/storeurl (SQLite in the data folder by default) and set Config.Store")
	}
	if err := s.loadAdminToken(); err != nil {
		return nil, err
	}
	s.recordLimit = newRateLimit(unauthRecordsPerSecond, s.now)
	s.met = newMetrics(s)
	s.devs = newDeviceCache(s.st)
	if cfg.DeviceCache > 0 {
		s.devs.max = cfg.DeviceCache
	}
	s.mans = newManifestCache(s.st)
	s.commit = newCommitter(s.st, cfg.MaxBatch, s.met)
	s.alerts = newAlerter(s.log, cfg.Webhooks)
	s.bal = districts.New(cfg.Store, cfg.Balance, s.now, s.log)
	return s, nil
}

func (s *Server) loadKey() error {
	path := filepath.Join(s.cfg.DataDir, "server.key")
	priv, err := keys.LoadPrivate(path)
	if err == nil {
		s.priv = priv
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("server key: %w", err)
	}
	priv, err = keys.Generate()
	if err != nil {
		return err
	}
	if err := keys.WritePair(path, priv, false); err != nil {
		return fmt.Errorf("server key: %w", err)
	}
	s.priv = priv
	s.logInfo("created server key", "path", path)
	return nil
}

func (s *Server) logInfo(msg string, args ...any) { s.log.Info(msg, args...) }

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func newSecret(prefix string) string {
	b := make([]byte, 24)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (s *Server) loadAdminToken() error {
	path := filepath.Join(s.cfg.DataDir, "admin.token")
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		s.admin = strings.TrimSpace(string(data))
	case errors.Is(err, os.ErrNotExist):
		s.admin = newSecret("fsa_")
		if err := os.WriteFile(path, []byte(s.admin+"\n"), 0o600); err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		s.logInfo("created admin API token", "path", path)
	default:
		return fmt.Errorf("admin token: %w", err)
	}
	ctx := context.Background()
	if _, err := s.st.GetAPIToken(ctx, hashToken(s.admin)); errors.Is(err, store.ErrNotFound) {
		name := "admin"
		if err := s.st.PutAPIToken(ctx, store.APIToken{Hash: hashToken(s.admin), Name: name, Role: RoleAdmin, Created: s.now()}); errors.Is(err, store.ErrConflict) {
			// The token file was replaced by hand: keep the new one, under a new name.
			name = "admin-" + s.now().UTC().Format("20060102T150405")
			err = s.st.PutAPIToken(ctx, store.APIToken{Hash: hashToken(s.admin), Name: name, Role: RoleAdmin, Created: s.now()})
			if err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return nil
}

// A Transport carries reports to HandleReport (and operator requests to the server's
// operations) over one medium: server/httpapi, server/mqttingest, server/lorawan. The
// server starts the attached transports after its own background work and shuts them down
// before it drains the reports in flight; server/serve attaches the standard set.
type Transport interface {
	Name() string // "http", "mqtt", "lorawan": HTTPAddr and MQTTAddr find theirs by it
	Start(ctx context.Context) error
	Addr() string // where it listens once started, "" when it does not listen
	Shutdown(ctx context.Context) error
}

// Attach adds transports; call it before Start.
func (s *Server) Attach(ts ...Transport) { s.transports = append(s.transports, ts...) }

// Transport is the attached transport of that name, or nil.
func (s *Server) Transport(name string) Transport {
	for _, t := range s.transports {
		if t.Name() == name {
			return t
		}
	}
	return nil
}

// Start starts the background work (group commit, silence timer, webhooks, water balance)
// and then the attached transports; it returns once they are up. A port already in use is
// an error that names the port and the flag to change.
func (s *Server) Start(ctx context.Context) error {
	bg, cancel := context.WithCancel(context.Background())
	s.stopBg = cancel
	s.commit.start()
	s.alerts.start(bg)
	for _, t := range s.transports {
		if err := t.Start(ctx); err != nil {
			s.abortStart()
			return err
		}
		s.started++
	}
	s.bgDone.Add(2)
	go func() { defer s.bgDone.Done(); s.bal.Run(bg) }()
	go func() {
		defer s.bgDone.Done()
		t := time.NewTicker(s.cfg.SilentCheck)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				if err := s.CheckSilent(bg); err != nil && bg.Err() == nil {
					s.log.Warn("silence check", "err", err)
				}
			}
		}
	}()
	return nil
}

// ErrAddrInUse says a listen address is taken by another process; the error names the
// address and the flag that sets it.
var ErrAddrInUse = errors.New("address in use")

// AddrInUse is an ErrAddrInUse that says msg.
type AddrInUse string

func (e AddrInUse) Error() string        { return string(e) }
func (e AddrInUse) Is(target error) bool { return target == ErrAddrInUse }

// Listen listens on addr for a transport; the error names the flag that sets addr.
func Listen(addr, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use") {
			return nil, AddrInUse(fmt.Sprintf("%s is already in use (another process listens on that port): choose another address with %s", addr, flag))
		}
		return nil, fmt.Errorf("listen on %s (%s): %w", addr, flag, err)
	}
	return ln, nil
}

// Shutdown stops accepting work, drains reports in flight (each is committed and acked or
// answered with an error), then closes the store. ctx bounds the wait.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.mu.Unlock()
	var errs []error
	for _, t := range s.transports[:s.started] {
		errs = append(errs, t.Shutdown(ctx))
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("shutdown: reports still in flight: %w", ctx.Err()))
	}
	s.stopAll()
	return errors.Join(errs...)
}

// abortStart undoes a Start that failed half-way.
func (s *Server) abortStart() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, t := range s.transports[:s.started] {
		t.Shutdown(ctx)
	}
	s.stopAll()
}

func (s *Server) stopAll() {
	if s.stopBg != nil {
		s.stopBg()
	}
	s.bgDone.Wait()
	s.commit.stop()
	s.alerts.stop()
}

// enter registers a report in flight; false once shutting down.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.inflight.Add(1)
	return true
}

// HTTPAddr is the address the HTTP API listens on (after Start).
func (s *Server) HTTPAddr() string { return s.addrOf("http") }

// MQTTAddr is the address of the embedded broker (after Start), or the external broker URL.
func (s *Server) MQTTAddr() string {
	if s.cfg.MQTTBroker != "" {
		return s.cfg.MQTTBroker
	}
	return s.addrOf("mqtt")
}

func (s *Server) addrOf(name string) string {
	if t := s.Transport(name); t != nil {
		return t.Addr()
	}
	return ""
}

// Config is the server's configuration, defaults filled in: the transports read theirs.
func (s *Server) Config() Config { return s.cfg }

// Logger is the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// Now is the fleet's clock (the demo's is compressed).
func (s *Server) Now() time.Time { return s.now() }

// Topics are the fleet's MQTT topics (under Config.TopicRoot).
func (s *Server) Topics() wire.Topics { return s.topics }

// AdminToken is the bootstrap admin API token (also in DIR/admin.token).
func (s *Server) AdminToken() string { return s.admin }

// Store is the server's store.
func (s *Server) Store() store.Store { return s.st }

// PublicKey is the server's Ed25519 key: it verifies anchor receipts.
func (s *Server) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// DataDir is the data folder.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// unauthRecordsPerSecond bounds how many rejections of unauthenticated input become audit
// records (S8): beyond it they are only counted (fieldseal_rejections_unrecorded_total).
const unauthRecordsPerSecond = 200

// rateLimit is a token bucket of rate tokens per second, burst rate.
type rateLimit struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newRateLimit(rate float64, _ func() time.Time) *rateLimit {
	// Real time, not the configured clock: this protects the machine, not the fleet logic.
	return &rateLimit{rate: rate, tokens: rate, now: time.Now}
}

func (r *rateLimit) Allow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.last.IsZero() {
		r.tokens = min(r.rate, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
