package devicecli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fieldseal/fieldseal/agent"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "agent", summary: "guard a Linux device: check its app, watch its cover, keep the evidence log, report", run: runAgent})
}

func runAgent(ctx context.Context, env *Env, args []string) int {
	fs := newFlags(env, "agent", "--bundle BUNDLE --dir APPDIR --manifest M --server URL [--data DIR] [--once] [--tamper-file F | --gpio CHIP:LINE]")
	bundlePath := fs.String("bundle", "", "device bundle from provisioning (JSON)")
	dir := fs.String("dir", "", "the application folder the manifest seals")
	manPath := fs.String("manifest", "", "signed manifest (manifest.cose from 'fieldseal build')")
	vendorKey := fs.String("vendor-key", "", "vendor public key to check the manifest's signature (recommended; the server checks what the device enforces either way)")
	serverURL := fs.String("server", "", "where to report: mqtt://, mqtts://, http:// or https:// (default: the bundle's MQTT, else HTTP address)")
	data := fs.String("data", "fieldseal-agent-data", "folder for the evidence log, the device state and the agent's own copy of the bundle (keep it on the device's internal storage)")
	once := fs.Bool("once", false, "one check and one report; exit 0 when the report was acknowledged")
	tamperFile := fs.String("tamper-file", "", "cover switch as a file: content \"1\" or \"open\" means open")
	gpio := fs.String("gpio", "", "cover switch on a GPIO line, CHIP:LINE (e.g. gpiochip0:17), high = open")
	gpioLow := fs.Bool("gpio-active-low", false, "the GPIO line reads low when the cover is open")
	quiet := fs.Bool("quiet", false, "log only problems")
	topicRoot := fs.String("topic-root", "", "root of the MQTT topics, as the server's --topic-root (default: the bundle's, else "+wire.DefaultTopicRoot+")")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "bundle", "dir", "manifest"); !ok {
		return code
	}
	if *tamperFile != "" && *gpio != "" {
		return usageError(env, fs, "--tamper-file and --gpio are exclusive: the cover switch is one or the other")
	}
	if *topicRoot != "" && !wire.ValidTopicRoot(*topicRoot) {
		return usageError(env, fs, "--topic-root %q: %s", *topicRoot, wire.TopicRootRule)
	}
	// A typo is a usage error before anything is logged or reported, never a tamper alarm.
	if err := agent.CheckAppDir(*dir); err != nil {
		return fail(env, "agent", err)
	}
	raw, err := readLimited(*bundlePath, 1<<20)
	if err != nil {
		return fail(env, "agent", fmt.Errorf("--bundle: %w", err))
	}
	var b wire.Bundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return fail(env, "agent", badInput(*bundlePath, "a device bundle (the JSON file 'fieldseal provision' wrote)", err))
	}
	if err := b.Check(); err != nil {
		return fail(env, "agent", fmt.Errorf("bundle %s: %w", *bundlePath, err))
	}
	signed, err := readLimited(*manPath, wire.MaxManifestSize)
	if err != nil {
		return fail(env, "agent", fmt.Errorf("--manifest: %w", err))
	}
	m, err := openAgentManifest(signed, *vendorKey)
	if err != nil {
		what := "a signed manifest (DIST/manifest.cose from 'fieldseal build')"
		if *vendorKey != "" {
			what = "a manifest signed by --vendor-key " + *vendorKey
		}
		return fail(env, "agent", badInput(*manPath, what, err))
	}
	if *vendorKey == "" {
		fmt.Fprintln(env.Stderr, "fieldseal agent: manifest signature not checked here (no --vendor-key); the server still refuses a device enforcing a manifest it did not register")
	}
	url := *serverURL
	if url == "" {
		url = b.MQTT
		if url == "" {
			url = b.HTTP
		}
	}
	if url == "" {
		return fail(env, "agent", errors.New("no --server and the bundle names none"))
	}
	cfg := agent.RunConfig{Bundle: &b, Manifest: m, AppDir: *dir, DataDir: *data, Server: url, Once: *once,
		BundlePath: *bundlePath,
		Dial:       agent.DialOptions{TopicRoot: *topicRoot},
		Logf: func(format string, a ...any) {
			if !*quiet {
				fmt.Fprintf(env.Stderr, "fieldseal agent: "+format+"\n", a...)
			}
		}}
	switch {
	case *tamperFile != "":
		cfg.Cover = &agent.FileCover{Path: *tamperFile}
	case *gpio != "":
		g, err := agent.ParseGPIO(*gpio)
		if err != nil {
			return fail(env, "agent", err)
		}
		g.ActiveLow = *gpioLow
		cfg.Cover = g
	}
	var firstCheck string
	cfg.FirstCheck = func(bad []wire.Finding) {
		firstCheck = describeFindings(bad)
		if !*once && !*quiet {
			fmt.Fprintf(env.Stderr, "fieldseal agent: guarding %s: %s against %s version %d (%d files): %s; reporting to %s, evidence log in %s; Ctrl-C to stop\n",
				b.Device, *dir, m.Product, m.Version, len(m.Files), firstCheck, url, *data)
		}
	}
	if err := agent.Run(ctx, cfg); err != nil {
		if *once && (errors.Is(err, agent.ErrRejected) || errors.Is(err, agent.ErrBadDownlink)) {
			fmt.Fprintf(env.Stderr, "fieldseal agent: report not acknowledged: %v\n", err)
			return ExitFound
		}
		return fail(env, "agent", err)
	}
	if *once {
		fmt.Fprintf(env.Stdout, "%s: checked %s against %s version %d (%d files): %s; report acknowledged by %s\n", b.Device, *dir, m.Product, m.Version, len(m.Files), firstCheck, url)
	}
	return ExitOK
}

// describeFindings says what a check found, in a few words.
func describeFindings(bad []wire.Finding) string {
	if len(bad) == 0 {
		return "every file matches"
	}
	var parts []string
	for i, f := range bad {
		if i == 3 {
			parts = append(parts, fmt.Sprintf("and %d more", len(bad)-3))
			break
		}
		parts = append(parts, f.Path+" "+f.Kind)
	}
	return fmt.Sprintf("%d problem(s): %s", len(bad), strings.Join(parts, ", "))
}

// openAgentManifest checks the manifest's signature when a vendor key is given, and its
// structure always.
func openAgentManifest(signed []byte, vendorKey string) (*wire.Manifest, error) {
	if vendorKey != "" {
		pub, err := keys.LoadPublic(vendorKey)
		if err != nil {
			return nil, err
		}
		return wire.OpenManifest(signed, pub)
	}
	return wire.ParseManifestUnverified(signed)
}
