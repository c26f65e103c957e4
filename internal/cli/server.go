package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/dashboard"
	"github.com/fieldseal/fieldseal/server/serve"
	"github.com/fieldseal/fieldseal/store/storeurl"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "server", summary: "run the fleet server: MQTT and HTTP ingest, verification, alerts, API (zero setup)", run: runServer})
}

// serverFile is the TOML configuration (--config). Flags given on the command line win.
type serverFile struct {
	Data         string   `toml:"data"`
	Store        string   `toml:"store"`
	HTTP         string   `toml:"http"`
	MQTT         string   `toml:"mqtt"`
	MQTTBroker   string   `toml:"mqtt_broker"`
	MQTTShare    string   `toml:"mqtt_share_group"`
	TopicRoot    string   `toml:"topic_root"`
	VendorKeys   []string `toml:"vendor_keys"`
	Webhooks     []string `toml:"webhooks"`
	SilentAfter  int      `toml:"silent_after"`
	ReceiptInt   string   `toml:"receipt_interval"`
	BalanceEvery string   `toml:"balance_every"`
	LogLevel     string   `toml:"log_level"`
	HTTPTLS      tlsFile  `toml:"http_tls"`
	MQTTTLS      tlsFile  `toml:"mqtt_tls"`
	// LoRaWAN: [[lorawan]] tables, one per network server integration (docs/OPERATIONS.md).
	LoRaWAN []lorawanFile `toml:"lorawan"`
}

// lorawanFile is one [[lorawan]] table: server.LoRaWAN, with devices as DevEUI = "id".
type lorawanFile struct {
	Kind        string            `toml:"kind"`
	Broker      string            `toml:"broker"`
	Username    string            `toml:"username"`
	Password    string            `toml:"password"`
	Application string            `toml:"application"`
	Tenant      string            `toml:"tenant"`
	FPort       uint8             `toml:"fport"`
	Devices     map[string]string `toml:"devices"`
}

type tlsFile struct {
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

func (t tlsFile) load(what string) (*tls.Config, error) {
	if t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	c, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("%s TLS: %w", what, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runServer(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "server", "[--data DIR] [--http ADDR] [--mqtt ADDR] [--mqtt-broker URL] [--config FILE] [--vendor-key FILE]...")
	data := fs.String("data", server.DefaultDataDir, "data folder: SQLite database, server key, admin token")
	httpAddr := fs.String("http", server.DefaultHTTPAddr, `HTTP API and report ingest address ("off" to disable)`)
	mqttAddr := fs.String("mqtt", server.DefaultMQTTAddr, `embedded MQTT broker address ("off" to disable)`)
	broker := fs.String("mqtt-broker", "", "consume reports from this external MQTT broker (tcp://host:port) instead of the embedded one")
	shared := fs.String("mqtt-share-group", "", `with --mqtt-broker: subscribe as shared-subscription group NAME ($share/NAME/<root>/+/up) so several servers split the load; "fieldseal" is customary`)
	topicRoot := fs.String("topic-root", wire.DefaultTopicRoot, "root of the MQTT topics (<root>/<device>/up and /down): give two fleets on one broker two roots")
	storeURL := fs.String("store", "", storeurl.Usage)
	config := fs.String("config", "", "TOML configuration file (flags given here win)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	silentAfter := fs.Int("silent-after", 3, "report intervals a device may miss before it is silent")
	receiptInterval := fs.Duration("receipt-interval", time.Hour, "how old a device's anchor receipt may get before an accepted report earns a fresh one (tamper evidence, a state change or a new boot always do; negative: sign on every report that moves the anchor)")
	balanceEvery := fs.Duration("balance-every", time.Hour, "how often the districts' water balance and inspection lists are recomputed (also once at start; 0: only at start, and a district created later when first asked for)")
	var vendorKeys, webhooks multiFlag
	fs.Var(&vendorKeys, "vendor-key", "vendor public key allowed to sign manifests (repeatable)")
	fs.Var(&webhooks, "webhook", "URL that receives alerts as JSON POSTs (repeatable)")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var file serverFile
	if *config != "" {
		md, err := toml.DecodeFile(*config, &file)
		if err != nil {
			return fail(env, "server", fmt.Errorf("config %s: %w", *config, err))
		}
		// A misspelt key would otherwise be ignored and its setting silently left at the default.
		if unknown := md.Undecoded(); len(unknown) > 0 {
			return fail(env, "server", fmt.Errorf("config %s: unknown key %q (see docs/OPERATIONS.md for the keys)", *config, unknown[0].String()))
		}
		pick := func(flagName string, dst *string, v string) {
			if !set[flagName] && v != "" {
				*dst = v
			}
		}
		pick("data", data, file.Data)
		pick("store", storeURL, file.Store)
		pick("http", httpAddr, file.HTTP)
		pick("mqtt", mqttAddr, file.MQTT)
		pick("mqtt-broker", broker, file.MQTTBroker)
		pick("log-level", logLevel, file.LogLevel)
		pick("mqtt-share-group", shared, file.MQTTShare)
		pick("topic-root", topicRoot, file.TopicRoot)
		if !set["silent-after"] && file.SilentAfter > 0 {
			*silentAfter = file.SilentAfter
		}
		if !set["receipt-interval"] && file.ReceiptInt != "" {
			d, err := time.ParseDuration(file.ReceiptInt)
			if err != nil {
				return fail(env, "server", fmt.Errorf("config %s: receipt_interval: %w", *config, err))
			}
			*receiptInterval = d
		}
		if !set["balance-every"] && file.BalanceEvery != "" {
			d, err := time.ParseDuration(file.BalanceEvery)
			if err != nil {
				return fail(env, "server", fmt.Errorf("config %s: balance_every: %w", *config, err))
			}
			*balanceEvery = d
		}
		if !set["vendor-key"] {
			vendorKeys = file.VendorKeys
		}
		if !set["webhook"] {
			webhooks = file.Webhooks
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fail(env, "server", fmt.Errorf("--log-level: %w", err))
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := server.Config{DataDir: *data, HTTPAddr: *httpAddr, MQTTAddr: *mqttAddr, MQTTBroker: *broker,
		SilentAfter: *silentAfter, ReceiptInterval: *receiptInterval, Logger: log, Webhooks: webhooks, MQTTShareGroup: *shared,
		TopicRoot: *topicRoot}
	switch {
	case *balanceEvery < 0:
		return fail(env, "server", fmt.Errorf("--balance-every %s: want a positive duration such as 1h, or 0 for only at start", *balanceEvery))
	case *balanceEvery == 0:
		cfg.Balance.Every = -1
	default:
		cfg.Balance.Every = *balanceEvery
	}
	if *broker != "" && !set["mqtt"] {
		cfg.MQTTAddr = "off"
	}
	for _, l := range file.LoRaWAN {
		lw := server.LoRaWAN{Kind: l.Kind, Broker: l.Broker, Username: l.Username, Password: l.Password,
			Application: l.Application, Tenant: l.Tenant, FPort: l.FPort, Devices: l.Devices}
		if err := lw.Check(); err != nil {
			return fail(env, "server", fmt.Errorf("config %s: [[lorawan]]: %w", *config, err))
		}
		cfg.LoRaWAN = append(cfg.LoRaWAN, lw)
	}
	for _, p := range vendorKeys {
		pub, err := keys.LoadPublicOnly(p)
		if errors.Is(err, keys.ErrPrivateGiven) {
			return usageError(env, fs, "--vendor-key %s is the vendor's private signing key: a fleet server needs only the public key (%s%s), and must never hold the key that signs firmware; give that, and keep the private key offline", p, strings.TrimSuffix(p, keys.PubSuffix), keys.PubSuffix)
		}
		if err != nil {
			return fail(env, "server", fmt.Errorf("--vendor-key: %w", err))
		}
		cfg.VendorKeys = append(cfg.VendorKeys, ed25519.PublicKey(pub))
	}
	var err error
	if cfg.HTTPTLS, err = file.HTTPTLS.load("HTTP"); err != nil {
		return fail(env, "server", err)
	}
	if cfg.MQTTTLS, err = file.MQTTTLS.load("MQTT"); err != nil {
		return fail(env, "server", err)
	}
	if !wire.ValidTopicRoot(*topicRoot) {
		return usageError(env, fs, "--topic-root %q: %s", *topicRoot, wire.TopicRootRule)
	}
	// A first start that fails (a port in use, a bad store) leaves no half-made data folder
	// behind: the next try would otherwise find a server key and an admin token that
	// belong to no running server.
	_, statErr := os.Stat(*data)
	created := errors.Is(statErr, os.ErrNotExist)
	closeStore := func() {}
	defer func() { closeStore() }()
	failStart := func(err error) int {
		closeStore()
		closeStore = func() {}
		if created {
			os.RemoveAll(*data)
		}
		if errors.Is(err, server.ErrAddrInUse) {
			fmt.Fprintf(env.Stderr, "fieldseal server: %v\n  another MQTT broker or server has the port; for example: fieldseal server --mqtt 127.0.0.1:1884 --http 127.0.0.1:8081 (devices then report to those), or --mqtt off to take reports over HTTP only, or --mqtt-broker tcp://HOST:1883 to consume from that broker\n", err)
			return ExitError
		}
		return fail(env, "server", err)
	}
	// The composition root: the store the URL names (SQLite in the data folder by
	// default), handed to the server; the console is mounted on the server below.
	st, err := storeurl.Open(ctx, *storeURL, *data)
	if err != nil {
		return failStart(err)
	}
	closeStore = func() { st.Close() }
	cfg.Store = st
	if os.Getenv("GOGC") == "" {
		// Ingest allocates short-lived buffers at a high rate; a larger heap target trades a
		// little memory for less GC CPU.
		debug.SetGCPercent(300)
	}
	s, err := serve.New(cfg)
	if err != nil {
		return failStart(err)
	}
	// The operator's console at / and /ui/ (it needs the server: mounted after New).
	s.SetDashboard(dashboard.ForServer(s))
	if err := s.Start(ctx); err != nil { // Start closed what it had opened
		return failStart(err)
	}
	if addr := os.Getenv("FIELDSEAL_PPROF"); addr != "" {
		// Profiling for benchmarks, on its own listener (loopback address expected).
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.ListenAndServe(addr, mux)
	}
	abs, _ := filepath.Abs(*data)
	storeDesc := filepath.Join(abs, "fieldseal.db") + " (SQLite)"
	if *storeURL != "" {
		storeDesc = storeurl.Redact(*storeURL)
	}
	fmt.Fprintf(env.Stdout, "fieldseal server running\n  data        %s\n  store       %s\n  server key  %s (public key in server.key.pub)\n  admin token %s\n",
		abs, storeDesc, filepath.Join(abs, "server.key"), filepath.Join(abs, "admin.token"))
	if a := s.HTTPAddr(); a != "" {
		scheme := "http"
		if cfg.HTTPTLS != nil {
			scheme = "https"
		}
		fmt.Fprintf(env.Stdout, "  HTTP        %s://%s  (API /api/v1, reports /v1/reports, metrics /metrics, health /healthz)\n", scheme, a)
		fmt.Fprintf(env.Stdout, "  console     %s://%s/  (sign in with an API token: the admin token above, or one per person)\n", scheme, a)
	}
	if a := s.MQTTAddr(); a != "" {
		topics := wire.Topics{Root: *topicRoot}
		fmt.Fprintf(env.Stdout, "  MQTT        %s  (devices: %s, acks on %s)\n", a, topics.Up("<id>"), topics.Down("<id>"))
	}
	if len(cfg.VendorKeys) == 0 {
		fmt.Fprintln(env.Stdout, "  note: no --vendor-key given: manifests cannot be registered, so devices can be provisioned only for products registered earlier")
	}
	<-ctx.Done()
	fmt.Fprintln(env.Stdout, "shutting down: draining reports in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return fail(env, "server", err)
	}
	return ExitOK
}
