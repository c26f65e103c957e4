package devicecli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/fschain"
	"github.com/fieldseal/fieldseal/internal/keys"
	"github.com/fieldseal/fieldseal/wire"
)

func init() {
	register(verb{name: "log", summary: "check-in of an exported evidence log: verify, show, export (exit 1 on tamper)", run: runLog})
}

func runLog(ctx context.Context, env *Env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "verify":
			return runLogVerify(env, args[1:])
		case "show":
			return runLogShow(env, args[1:])
		case "export":
			return runLogExport(env, args[1:])
		}
	}
	fmt.Fprintln(env.Stderr, "Usage: fieldseal log verify|show|export [flags]; 'fieldseal log VERB -h' for its flags.")
	fmt.Fprintln(env.Stderr, "  verify  check an exported log, its receipts and (with K_1) every tag and the seal")
	fmt.Fprintln(env.Stderr, "  show    list the entries of an exported log")
	fmt.Fprintln(env.Stderr, "  export  write the log kept in a device storage folder as an export file")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		return ExitOK
	}
	return ExitError
}

// receiptList collects a repeatable flag.
type receiptList []string

func (l *receiptList) String() string     { return strings.Join(*l, ",") }
func (l *receiptList) Set(v string) error { *l = append(*l, v); return nil }

// logVerdict is the --json output of `log verify`.
type logVerdict struct {
	Verdict   string          `json:"verdict"` // clean | tamper | failed
	Message   string          `json:"message"` // the first line of the text output
	Dev       string          `json:"dev"`
	Epoch     uint32          `json:"epoch"`
	BaseN     uint64          `json:"base_n"`
	N         uint64          `json:"n"`
	Entries   int             `json:"entries"`
	Checked   logChecked      `json:"checked"`
	Error     *logError       `json:"error"`
	Tamper    []logTamperJSON `json:"tamper"`
	Receipts  []logReceipt    `json:"receipts"`
	Unchecked int             `json:"receipts_unchecked"`
	Latched   *logLatched     `json:"latched"` // the device's latched tamper summary, null if none
}

type logLatched struct {
	FirstN    uint64            `json:"first_n"`
	FirstType string            `json:"first_type"`
	FirstT    uint64            `json:"first_t"`
	FirstWhat string            `json:"first_what"`
	Counts    map[string]uint32 `json:"counts"`
}

// receiptCovering is the newest checked receipt that vouches for entry n, or nil.
func receiptCovering(res *fschain.CheckResult, n uint64) *fschain.ReceiptCheck {
	var best *fschain.ReceiptCheck
	for i := range res.Receipts {
		r := &res.Receipts[i]
		if r.N >= n && (best == nil || r.Time > best.Time) {
			best = r
		}
	}
	return best
}

func sortedTypes(m map[uint16]uint32) []uint16 {
	out := make([]uint16, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

type logChecked struct {
	Heads        bool   `json:"heads"`
	TagsAndSeal  bool   `json:"tags_and_seal"`
	Receipts     int    `json:"receipts"`
	ServerVerify uint64 `json:"server_verified_to"`
}

type logError struct {
	Name   string `json:"name"`
	Seq    uint64 `json:"seq"`
	Detail string `json:"detail"`
}

type logTamperJSON struct {
	N       uint64 `json:"n"`
	T       uint64 `json:"t"`
	Type    string `json:"type"`
	Summary string `json:"summary"`
	LaterOK bool   `json:"later_ok"`
	Cleared bool   `json:"cleared"`
}

type logReceipt struct {
	N      uint64 `json:"n"`
	Time   uint64 `json:"time"`
	Pruned bool   `json:"pruned"`
}

// Plain-language meaning of each failure, for the clerk reading the verdict.
var failureMeaning = map[string]string{
	fschain.NameGap:          "entries are missing from the log",
	fschain.NameReorder:      "entries are out of order",
	fschain.NameRollback:     "the log is older than what the server already saw: entries were cut off or the device was restored from a copy",
	fschain.NameFork:         "the log differs from what the server verified: its history was rewritten",
	fschain.NameForgedEntry:  "an entry was altered or inserted after it was written",
	fschain.NameHeadMismatch: "the log does not end where it claims to",
	fschain.NameBadSeal:      "the newest entries were cut off or the end of the log was altered",
	fschain.NameBadReceipt:   "a receipt is not signed by this server or is about another device",
}

func runLogVerify(env *Env, args []string) int {
	fs := newFlags(env, "log verify", "--log EXPORT [--receipts R]... [--server-pub KEY.pub] [--chain-key K1] [--json]")
	logPath := fs.String("log", "", "exported log (CBOR or JSON, from 'fieldseal log export', the agent or the guard)")
	var receiptPaths receiptList
	fs.Var(&receiptPaths, "receipts", "file of anchor receipts (one COSE_Sign1, a CBOR array of them, or hex lines); repeatable")
	pubPath := fs.String("server-pub", "", "the server's public key (PEM PKIX, the .pub of 'fieldseal keygen'): checks receipts")
	chainKey := fs.String("chain-key", "", "K_1 as 64 hex digits, or a file holding them (or a device bundle): checks every tag and the seal")
	asJSON := fs.Bool("json", false, "print the verdict as JSON on stdout")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := exportArg(env, fs, pos, logPath); !ok {
		return code
	}
	var opt fschain.CheckOptions
	var err error
	if *pubPath != "" {
		if opt.ServerPub, err = keys.LoadPublic(*pubPath); err != nil {
			return fail(env, "log verify", fmt.Errorf("--server-pub: %w", err))
		}
	}
	if *chainKey != "" {
		k, err := parseChainKey(*chainKey)
		if err != nil {
			return fail(env, "log verify", fmt.Errorf("--chain-key: %w", err))
		}
		opt.ChainKey = &k
	}
	for _, p := range receiptPaths {
		rs, err := readReceipts(p)
		if err != nil {
			return fail(env, "log verify", fmt.Errorf("--receipts %s: %w", p, err))
		}
		opt.Receipts = append(opt.Receipts, rs...)
	}
	x, err := readExport(*logPath)
	if err != nil {
		return fail(env, "log verify", err)
	}
	if *chainKey != "" {
		if b := bundleOf(*chainKey); b != nil && (b.Device != x.Dev || b.Epoch != x.Epoch) {
			return fail(env, "log verify", fmt.Errorf("--chain-key: this key does not belong to this log: the bundle is %s epoch %d, the log is %s epoch %d; use the operator's bundle of %s", b.Device, b.Epoch, x.Dev, x.Epoch, x.Dev))
		}
	}
	res, err := fschain.CheckExport(x, opt)
	if err != nil {
		return fail(env, "log verify", err)
	}
	if res.KeyMismatch {
		// An operator's mistake, never a tamper verdict.
		return fail(env, "log verify", fmt.Errorf("--chain-key: this key does not belong to this log: no entry's tag and not the seal verify under it, while the log's head chain holds; use K_1 of %s epoch %d (the operator's copy of its bundle). If that is the key you gave, every entry and the seal were made without any of the device's keys: check the log against the server's receipts (--server-pub) and its records", x.Dev, x.Epoch))
	}
	lines, v := verdict(x, res, opt)
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			return fail(env, "log verify", err)
		}
	} else {
		for _, l := range lines {
			fmt.Fprintln(env.Stdout, l)
		}
	}
	if v.Verdict == "clean" {
		return ExitOK
	}
	return ExitFound
}

func deviceTime(t uint64) string {
	return time.Unix(int64(t), 0).UTC().Format("2006-01-02 15:04") + " device time"
}

// verdict turns a check result into the text a rental clerk reads (first line: the answer)
// and the JSON form.
func verdict(x *fschain.Export, res *fschain.CheckResult, opt fschain.CheckOptions) ([]string, *logVerdict) {
	v := &logVerdict{Dev: x.Dev, Epoch: x.Epoch, BaseN: x.BaseN, N: x.N, Entries: res.Entries,
		Checked: logChecked{Heads: res.HeadsOK, TagsAndSeal: res.TagsChecked, Receipts: len(res.Receipts), ServerVerify: res.Covered},
		Tamper:  []logTamperJSON{}, Receipts: []logReceipt{}, Unchecked: res.Unchecked}
	for _, r := range res.Receipts {
		v.Receipts = append(v.Receipts, logReceipt{N: r.N, Time: r.Time, Pruned: r.Pruned})
	}
	var lines []string
	if e := res.Err; e != nil {
		v.Verdict = "failed"
		v.Error = &logError{Name: e.Name, Seq: e.Seq, Detail: e.Detail}
		lines = append(lines, fmt.Sprintf("TAMPER: the log fails verification: %s at entry %d — %s", e.Name, e.Seq, failureMeaning[e.Name]))
		if e.Detail != "" {
			lines = append(lines, "  detail: "+e.Detail)
		}
		if opt.ChainKey != nil && (e.Name == fschain.NameForgedEntry || e.Name == fschain.NameBadSeal) && e.Seq <= x.BaseN+1 {
			lines = append(lines, fmt.Sprintf("  (the first check already fails: make sure --chain-key is K_1 of %s, epoch %d)", x.Dev, x.Epoch))
		}
	}
	for _, ev := range res.Tamper {
		e := ev.Entry
		s := strings.Replace(ev.Summary, ": ", " ", 1)
		line := fmt.Sprintf("TAMPER: %s at entry %d (%s)", s, e.N, deviceTime(e.T))
		switch {
		case ev.LaterOK && e.Type == wire.EntryCheckFail:
			line += ", later entries show the file restored"
		case ev.LaterOK:
			line += ", later entries show the files matching again"
		}
		if ev.Cleared {
			line += "; a later tamper-cleared entry records an inspection"
		}
		lines = append(lines, line)
		v.Tamper = append(v.Tamper, logTamperJSON{N: e.N, T: e.T, Type: wire.EntryName(e.Type), Summary: ev.Summary, LaterOK: ev.LaterOK, Cleared: ev.Cleared})
	}
	if m := x.Summary; m != nil {
		// The device's latched summary: tamper seen since the last clear token, even when its
		// entries were acknowledged and pruned (not in this export any more).
		line := fmt.Sprintf("TAMPER latched since entry %d (%s", m.FirstN, wire.EntryName(m.FirstType))
		if m.FirstWhat != "" {
			line += " " + m.FirstWhat
		}
		line += ", " + deviceTime(m.FirstT) + ")"
		switch ack := receiptCovering(res, m.FirstN); {
		case ack != nil:
			line += fmt.Sprintf(", acknowledged by the server (receipt of %s)", time.Unix(int64(ack.Time), 0).UTC().Format("2006-01-02 15:04 MST"))
		case m.FirstN <= x.BaseN:
			line += ", acknowledged by the server (the entry was pruned after its ack; no receipt checked here)"
		default:
			line += ", not yet acknowledged by the server"
		}
		var counts []string
		for _, t := range sortedTypes(m.Counts) {
			counts = append(counts, fmt.Sprintf("%s ×%d", wire.EntryName(t), m.Counts[t]))
		}
		if res.Err == nil {
			lines = append([]string{line}, lines...)
		} else {
			lines = append(lines, "  the device also says: "+line)
		}
		if len(counts) > 0 {
			lines = append(lines, "  latched since then: "+strings.Join(counts, ", ")+" (cleared only by a clear token)")
		}
		v.Latched = &logLatched{FirstN: m.FirstN, FirstType: wire.EntryName(m.FirstType), FirstT: m.FirstT, FirstWhat: m.FirstWhat, Counts: map[string]uint32{}}
		for t, c := range m.Counts {
			v.Latched.Counts[wire.EntryName(t)] = c
		}
	}
	if v.Verdict == "" {
		v.Verdict = "clean"
		if len(res.Tamper) > 0 || v.Latched != nil {
			v.Verdict = "tamper"
		}
		state := "sealed"
		if !res.TagsChecked {
			state = "intact"
		}
		summary := fmt.Sprintf("%s, %d entries, no tamper events", state, res.Entries)
		if len(res.Tamper) > 0 {
			summary = fmt.Sprintf("%s, %d entries, %d tamper event(s)", state, res.Entries, len(res.Tamper))
		}
		if v.Verdict == "clean" {
			lines = append([]string{summary}, lines...)
		} else {
			lines = append(lines, "  log: "+summary)
		}
	}
	// What was checked, so nobody over-reads a clean verdict.
	from := "from the start"
	if x.BaseN > 0 {
		from = fmt.Sprintf("entries 1..%d pruned after the server acknowledged them", x.BaseN)
	}
	lines = append(lines, fmt.Sprintf("  device %s, epoch %d, entries %d..%d (%s)", x.Dev, x.Epoch, x.BaseN+1, x.N, from))
	switch {
	case res.TagsChecked:
		lines = append(lines, "  head chain, every tag and the seal verified with K_1")
	case res.HeadsOK && opt.ChainKey == nil:
		lines = append(lines, "  head chain verified; tags and seal not checked (no --chain-key)")
	}
	switch {
	case len(res.Receipts) > 0:
		lines = append(lines, fmt.Sprintf("  %d receipt(s) signed by the server agree with the log; the server verified it up to entry %d", len(res.Receipts), res.Covered))
	case res.Unchecked > 0:
		lines = append(lines, fmt.Sprintf("  %d receipt(s) not checked (no --server-pub)", res.Unchecked))
	case res.Err == nil:
		lines = append(lines, "  no server receipts checked")
	}
	// What an export can and cannot prove, so nobody over-reads it either way.
	stored := fmt.Sprintf("entries %d..%d are the device's own and in order (the head chain", x.BaseN+1, x.N)
	if x.N == x.BaseN {
		stored = fmt.Sprintf("the log ends at entry %d (the base head", x.N)
	}
	lines = append(lines, "  an export proves: "+stored+"; with --chain-key every tag and the seal: nothing cut off the end), and, with --server-pub, what the server verified (receipts)")
	lines = append(lines, "  it cannot prove: what happened in entries pruned after the server acknowledged them (ask the server: its events list keeps them), nor that the latched summary is complete (it is the device's own account, not signed by the server)")
	v.Message = lines[0]
	return lines, v
}

func readExport(path string) (*fschain.Export, error) {
	b, err := readLimited(path, fschain.MaxExportSize)
	if err != nil {
		return nil, err
	}
	x, err := fschain.DecodeExport(b)
	if err != nil {
		return nil, badInput(path, "an exported evidence log (the CBOR or JSON file of 'fieldseal log export', the agent or the guard)", err)
	}
	return x, nil
}

// parseChainKey accepts K_1 as 64 hex digits, a file holding them, or a device bundle
// (JSON with chain_key).
func parseChainKey(s string) (fschain.Key, error) {
	var k fschain.Key
	text := strings.TrimSpace(s)
	if _, err := hex.DecodeString(text); len(text) != 64 || err != nil { // else a file (a 64-character path too)
		b, err := readLimited(s, 1<<20)
		if err != nil {
			return k, err
		}
		text = strings.TrimSpace(string(b))
		if strings.HasPrefix(text, "{") {
			var bundle wire.Bundle
			if err := json.Unmarshal(b, &bundle); err != nil {
				return k, badInput(s, "a device bundle", err)
			}
			if len(bundle.ChainKey) == 0 {
				return k, errors.New("device bundle holds no chain_key: the agent erases K_1 from the device's copy once its log exists; use the operator's copy of the bundle")
			}
			if len(bundle.ChainKey) != 32 {
				return k, errors.New("device bundle has no 32-byte chain_key")
			}
			return fschain.Key(bundle.ChainKey), nil
		}
	}
	b, err := hex.DecodeString(text)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("%q: want K_1 as 64 hex digits (32 bytes), a file holding them, or the operator's copy of the device bundle", s)
	}
	return fschain.Key(b), nil
}

// bundleOf returns the device bundle a --chain-key file holds, or nil (hex key, or not a bundle).
func bundleOf(s string) *wire.Bundle {
	text := strings.TrimSpace(s)
	if _, err := hex.DecodeString(text); len(text) == 64 && err == nil {
		return nil
	}
	b, err := readLimited(s, 1<<20)
	if err != nil || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		return nil
	}
	var bundle wire.Bundle
	if json.Unmarshal(b, &bundle) != nil || bundle.Device == "" {
		return nil
	}
	return &bundle
}

// readReceipts reads one COSE_Sign1 receipt, a CBOR array of them, or hex, one per line.
func readReceipts(path string) ([][]byte, error) {
	b, err := readLimited(path, wire.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	switch {
	case b[0] == 0xd2: // CBOR tag 18: a single COSE_Sign1
		return [][]byte{b}, nil
	case b[0]&0xe0 == 0x80: // CBOR array
		var rs [][]byte
		if err := wire.Unmarshal(b, &rs); err != nil {
			return nil, badInput(path, "a list of receipts", err)
		}
		return rs, nil
	}
	var rs [][]byte
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := hex.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: not hex", i+1)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func runLogShow(env *Env, args []string) int {
	fs := newFlags(env, "log show", "--log EXPORT")
	logPath := fs.String("log", "", "exported log")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := exportArg(env, fs, pos, logPath); !ok {
		return code
	}
	x, err := readExport(*logPath)
	if err != nil {
		return fail(env, "log show", err)
	}
	fmt.Fprintf(env.Stdout, "device %s, epoch %d, entries %d..%d, head %x\n", x.Dev, x.Epoch, x.BaseN+1, x.N, x.Head)
	for _, e := range x.Entries {
		mark := " "
		if wire.IsTamper(e.Type) {
			mark = "!"
		}
		fmt.Fprintf(env.Stdout, "%s %6d  %s  %s\n", mark, e.N, time.Unix(int64(e.T), 0).UTC().Format("2006-01-02 15:04:05"), fschain.Summary(e))
	}
	return ExitOK
}

func runLogExport(env *Env, args []string) int {
	fs := newFlags(env, "log export", "--storage DIR --out FILE [--receipts R]... [--json]")
	dir := fs.String("storage", "", "the device's evidence-log storage folder (log, slot-a, slot-b)")
	out := fs.String("out", "", "export file to write")
	var receiptPaths receiptList
	fs.Var(&receiptPaths, "receipts", "receipts to include in the export; repeatable")
	asJSON := fs.Bool("json", false, "write JSON (hex bytes) instead of CBOR")
	pos, code, ok := parseFlags(fs, args)
	if !ok {
		return code
	}
	if code, ok := requireArgs(env, fs, pos); !ok {
		return code
	}
	if code, ok := requireFlags(env, fs, "storage", "out"); !ok {
		return code
	}
	if _, err := os.Stat(*dir); err != nil {
		return fail(env, "log export", err)
	}
	st, err := fschain.NewFileStorage(*dir)
	if err != nil {
		return fail(env, "log export", err)
	}
	x, err := fschain.ReadExport(st)
	if err != nil {
		return fail(env, "log export", err)
	}
	// The guard keeps its latest receipt beside the log (the agent in its state slot).
	if rc, err := os.ReadFile(filepath.Join(*dir, "receipt")); err == nil && len(rc) > 0 {
		x.Receipts = append(x.Receipts, rc)
	}
	for _, p := range receiptPaths {
		rs, err := readReceipts(p)
		if err != nil {
			return fail(env, "log export", fmt.Errorf("--receipts %s: %w", p, err))
		}
		x.Receipts = append(x.Receipts, rs...)
	}
	var b []byte
	if *asJSON {
		b, err = x.EncodeJSON()
	} else {
		b, err = x.EncodeCBOR()
	}
	if err != nil {
		return fail(env, "log export", err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return fail(env, "log export", err)
	}
	fmt.Fprintf(env.Stdout, "exported entries %d..%d of %s to %s\n", x.BaseN+1, x.N, x.Dev, *out)
	return ExitOK
}

// exportArg takes the exported log from --log or as the one positional argument, and
// names --log when neither is given.
func exportArg(env *Env, fs *flag.FlagSet, pos []string, logPath *string) (int, bool) {
	if len(pos) == 1 && *logPath == "" {
		*logPath = pos[0]
	} else if code, ok := requireArgs(env, fs, pos); !ok {
		return code, false
	}
	return requireFlags(env, fs, "log")
}
