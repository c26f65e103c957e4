package server_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"mime"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/server/httpapi"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// --- a validator for the JSON Schema subset the OpenAPI document uses ---

// apiDoc is the OpenAPI document with a validator for its schemas. The validator knows
// $ref, type, properties, required, additionalProperties, items, enum, nullable, format
// (date-time, byte), pattern and minimum, plus the annotations description and title; a
// schema using any other keyword is an error, so the document cannot rely on a rule the
// test does not check. It also records which schemas and properties real answers used.
type apiDoc struct {
	root map[string]any

	usedSchemas map[string]bool            // component schema name → validated against
	declared    map[string][]string        // object schema pointer → its properties
	seen        map[string]map[string]bool // object schema pointer → properties present in an answer
}

func parseDoc(t *testing.T, data []byte) *apiDoc {
	t.Helper()
	var root map[string]any
	if err := decodeJSON(data, &root); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return &apiDoc{root: root, usedSchemas: map[string]bool{}, declared: map[string][]string{}, seen: map[string]map[string]bool{}}
}

// decodeJSON decodes exactly one JSON value, numbers as json.Number.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}

// resolve follows a local reference "#/a/b".
func (d *apiDoc) resolve(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q: %q is not in an object", ref, part)
		}
		if cur, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
			return nil, fmt.Errorf("reference %q: no %q", ref, part)
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("reference %q is not an object", ref)
	}
	return m, nil
}

// deref resolves obj if it is a {"$ref": …}.
func (d *apiDoc) deref(obj map[string]any) (map[string]any, string, error) {
	ref, ok := obj["$ref"].(string)
	if !ok {
		return obj, "", nil
	}
	m, err := d.resolve(ref)
	return m, ref, err
}

var schemaKeywords = map[string]bool{"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "nullable": true, "format": true, "pattern": true, "minimum": true, "description": true, "title": true}

// validate checks v against the schema at ptr (a JSON pointer into the document, used to
// name the schema in errors and coverage) and returns what is wrong, each prefixed with
// the place in v.
func (d *apiDoc) validate(v any, schema any, ptr, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema %s is not an object", at, ptr)}
	}
	for k := range s {
		if !schemaKeywords[k] {
			return []string{fmt.Sprintf("%s: schema %s uses %q, which this validator does not implement", at, ptr, k)}
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		if len(s) != 1 {
			return []string{fmt.Sprintf("%s: schema %s has keywords beside $ref (ignored by OpenAPI 3.0)", at, ptr)}
		}
		target, err := d.resolve(ref)
		if err != nil {
			return []string{fmt.Sprintf("%s: %v", at, err)}
		}
		if name, ok := strings.CutPrefix(ref, "#/components/schemas/"); ok {
			d.usedSchemas[name] = true
		}
		return d.validate(v, target, ref, at)
	}
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{fmt.Sprintf("%s: null, schema %s is not nullable", at, ptr)}
	}
	var errs []string
	bad := func(format string, args ...any) []string {
		return append(errs, at+": "+fmt.Sprintf(format, args...)+" (schema "+ptr+")")
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("%s, want an object", jsonKind(v))
		}
		props, _ := s["properties"].(map[string]any)
		if _, ok := d.declared[ptr]; !ok && len(props) > 0 {
			d.declared[ptr] = slices.Sorted(mapKeys(props))
			d.seen[ptr] = map[string]bool{}
		}
		req, _ := s["required"].([]any)
		for _, r := range req {
			name, _ := r.(string)
			if _, ok := props[name]; !ok {
				errs = bad("schema requires %q but does not declare it", name)
			}
			if _, ok := m[name]; !ok {
				errs = bad("required field %q is missing", name)
			}
		}
		for _, k := range slices.Sorted(mapKeys(m)) {
			if ps, ok := props[k]; ok {
				d.seen[ptr][k] = true
				errs = append(errs, d.validate(m[k], ps, ptr+"/properties/"+k, at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case bool:
				if !ap {
					errs = bad("field %q is not in the schema (a closed object)", k)
				}
			case map[string]any:
				errs = append(errs, d.validate(m[k], ap, ptr+"/additionalProperties", at+"."+k)...)
			case nil:
			default:
				errs = bad("additionalProperties is %T", ap)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return bad("%s, want an array", jsonKind(v))
		}
		items, ok := s["items"]
		if !ok {
			return bad("array schema without items")
		}
		for i, x := range a {
			errs = append(errs, d.validate(x, items, ptr+"/items", fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return bad("%s, want a string", jsonKind(v))
		}
		switch f, _ := s["format"].(string); f {
		case "":
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				errs = bad("%q is not a date-time", str)
			}
		case "byte":
			if _, err := base64.StdEncoding.DecodeString(str); err != nil {
				errs = bad("%q is not base64", str)
			}
		default:
			errs = bad("string format %q: this validator does not check it", f)
		}
		if p, ok := s["pattern"].(string); ok {
			re, err := regexp.Compile(p)
			if err != nil {
				return bad("pattern %q: %v", p, err)
			}
			if !re.MatchString(str) {
				errs = bad("%q does not match %s", str, p)
			}
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			return bad("%s, want a number", jsonKind(v))
		}
		f, ok := new(big.Float).SetString(n.String())
		if !ok {
			return bad("%q is not a number", n)
		}
		if typ == "integer" && (!f.IsInt() || strings.ContainsAny(n.String(), ".eE")) {
			errs = bad("%s is not an integer", n)
		}
		if m, ok := s["minimum"].(json.Number); ok {
			if min, _ := new(big.Float).SetString(m.String()); min == nil || f.Cmp(min) < 0 {
				errs = bad("%s is below the minimum %s", n, m)
			}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad("%s, want a boolean", jsonKind(v))
		}
	default:
		return bad("type %q: this validator does not know it (every schema must have a type or be a $ref)", typ)
	}
	if enum, ok := s["enum"].([]any); ok {
		if !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
			errs = bad("%v is not one of %v", v, enum)
		}
	}
	return errs
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// validateAs validates a Go value, encoded as the server encodes it, against a component schema.
func (d *apiDoc) validateAs(v any, name string) []string {
	b, err := json.Marshal(v)
	if err != nil {
		return []string{err.Error()}
	}
	var x any
	if err := decodeJSON(b, &x); err != nil {
		return []string{err.Error()}
	}
	return d.validate(x, map[string]any{"$ref": "#/components/schemas/" + name}, "", name)
}

// --- the document itself ---

// operations lists "METHOD /path" → operation object.
func (d *apiDoc) operations() map[string]map[string]any {
	ops := map[string]map[string]any{}
	paths, _ := d.root["paths"].(map[string]any)
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			ops[strings.ToUpper(method)+" "+p] = op.(map[string]any)
		}
	}
	return ops
}

// Static rules: every JSON body an operation may answer has a schema, error statuses
// answer the Error schema, authenticated operations document 401 (and 403 when some role
// is not admitted), every schema in components uses only what the validator implements,
// and object schemas with properties are closed (but the document's own).
func checkDocRules(t *testing.T, d *apiDoc, routes []httpapi.Route) {
	t.Helper()
	ops := d.operations()
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		op, ok := ops[key]
		if !ok {
			t.Errorf("%s is not documented", key)
			continue
		}
		rs, _ := op["responses"].(map[string]any)
		success := false
		for code, r := range rs {
			resp, _, err := d.deref(r.(map[string]any))
			if err != nil {
				t.Errorf("%s %s: %v", key, code, err)
				continue
			}
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status code (no defaults: each status is listed)", key, code)
				continue
			}
			success = success || n < 300
			content, _ := resp["content"].(map[string]any)
			if n == 204 && len(content) > 0 {
				t.Errorf("%s 204 declares a body", key)
			}
			for ct, media := range content {
				schema, _ := media.(map[string]any)["schema"].(map[string]any)
				if schema == nil {
					t.Errorf("%s %s %s: no schema", key, code, ct)
					continue
				}
				if mt, _, _ := mime.ParseMediaType(ct); mt == "application/json" && n >= 400 && schema["$ref"] != "#/components/schemas/Error" {
					t.Errorf("%s %s: error answers must be the Error schema, not %v", key, code, schema)
				}
			}
		}
		if !success {
			t.Errorf("%s documents no success answer", key)
		}
		if !rt.Open {
			if _, ok := rs["401"]; !ok {
				t.Errorf("%s does not document 401", key)
			}
			_, has403 := rs["403"]
			if can403 := len(rt.Roles) < len(server.Roles); has403 != can403 {
				t.Errorf("%s: documents 403 = %v, but a role may be refused = %v", key, has403, can403)
			}
		}
	}
	schemas, _ := d.root["components"].(map[string]any)["schemas"].(map[string]any)
	if len(schemas) == 0 {
		t.Fatal("no components/schemas")
	}
	var walk func(s any, ptr string)
	walk = func(s any, ptr string) {
		m, ok := s.(map[string]any)
		if !ok {
			t.Errorf("%s is not a schema object", ptr)
			return
		}
		for k := range m {
			if !schemaKeywords[k] {
				t.Errorf("%s uses %q, which the validator does not implement", ptr, k)
			}
		}
		if ref, ok := m["$ref"].(string); ok {
			if _, err := d.resolve(ref); err != nil {
				t.Errorf("%s: %v", ptr, err)
			}
			return
		}
		if _, ok := m["type"].(string); !ok {
			t.Errorf("%s has no type", ptr)
		}
		if props, ok := m["properties"].(map[string]any); ok {
			if m["additionalProperties"] != false && ptr != "#/components/schemas/OpenAPIDocument" {
				t.Errorf("%s lists properties but is not closed (additionalProperties: false)", ptr)
			}
			for k, p := range props {
				walk(p, ptr+"/properties/"+k)
			}
		}
		if it, ok := m["items"]; ok {
			walk(it, ptr+"/items")
		}
	}
	for name, s := range schemas {
		walk(s, "#/components/schemas/"+name)
	}
}

// --- driving the API ---

// apiChecker sends requests to the running server and validates every answer against
// what the document declares for the operation (found with a ServeMux built from the
// document's paths, as the server routes) and the status code.
type apiChecker struct {
	t         *testing.T
	doc       *apiDoc
	base      string
	mux       *http.ServeMux
	exercised map[string]bool // "METHOD /path status media-type"
}

func newChecker(t *testing.T, doc *apiDoc, base string) *apiChecker {
	c := &apiChecker{t: t, doc: doc, base: base, mux: http.NewServeMux(), exercised: map[string]bool{}}
	for key := range doc.operations() {
		c.mux.HandleFunc(key, func(http.ResponseWriter, *http.Request) {})
	}
	return c
}

// do sends a request (body: []byte as is, anything else as JSON), checks the status is
// want and the answer is what the document declares, and returns the answer's body.
func (c *apiChecker) do(method, path, token, ctype string, body any, want int) []byte {
	c.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	default:
		raw, _ = json.Marshal(b)
		if ctype == "" {
			ctype = "application/json"
		}
	}
	req, _ := http.NewRequest(method, c.base+path, bytes.NewReader(raw))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: %d, want %d: %.300s", method, path, resp.StatusCode, want, data)
	}
	_, pattern := c.mux.Handler(req)
	op := c.doc.operations()[pattern]
	if op == nil {
		c.t.Fatalf("%s %s: no documented operation", method, path)
	}
	where := fmt.Sprintf("%s (%s %s → %d)", pattern, method, path, resp.StatusCode)
	r, ok := op["responses"].(map[string]any)[strconv.Itoa(resp.StatusCode)].(map[string]any)
	if !ok {
		c.t.Errorf("%s: status %d is not documented", where, resp.StatusCode)
		return data
	}
	r, _, err = c.doc.deref(r)
	if err != nil {
		c.t.Fatal(err)
	}
	content, _ := r["content"].(map[string]any)
	if len(content) == 0 {
		if len(data) != 0 {
			c.t.Errorf("%s: the document declares no body, got %.200q", where, data)
		}
		c.exercised[fmt.Sprintf("%s %d", pattern, resp.StatusCode)] = true
		return data
	}
	got, gotParams, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		c.t.Errorf("%s: Content-Type %q: %v", where, resp.Header.Get("Content-Type"), err)
		return data
	}
	for ct, media := range content {
		mt, params, _ := mime.ParseMediaType(ct)
		if mt != got || !paramsIn(params, gotParams) {
			continue
		}
		c.exercised[fmt.Sprintf("%s %d %s", pattern, resp.StatusCode, ct)] = true
		if mt != "application/json" {
			return data
		}
		var v any
		if err := decodeJSON(data, &v); err != nil {
			c.t.Errorf("%s: not JSON: %v: %.200q", where, err, data)
			return data
		}
		for _, e := range c.doc.validate(v, media.(map[string]any)["schema"], "#/paths/"+pattern, "body") {
			c.t.Errorf("%s: %s", where, e)
		}
		return data
	}
	c.t.Errorf("%s: Content-Type %q is not one the document declares (%v)", where, resp.Header.Get("Content-Type"), slices.Sorted(mapKeys(content)))
	return data
}

func paramsIn(want, got map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// doJSON is do, decoding the answer into out.
func (c *apiChecker) doJSON(method, path, token string, body any, want int, out any) {
	c.t.Helper()
	data := c.do(method, path, token, "", body, want)
	if err := json.Unmarshal(data, out); err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
}

const coseType = `application/cose; cose-type="cose-mac0"`

// report posts a report over HTTP and, when the answer is an ack, lets the device take it.
func (c *apiChecker) report(d *device, data []byte, want int) *wire.Ack {
	c.t.Helper()
	body := c.do("POST", "/v1/reports", "", coseType, data, want)
	if _, err := wire.OpenAck(body, d.b.Device, d.b.DownlinkKey); err == nil {
		return d.accept(body)
	} else if want == 200 {
		c.t.Fatalf("accepted report's answer is no ack: %v", err)
	}
	return nil
}

// Every documented route, driven with real data (devices, reports over HTTP, tamper,
// service visits, alerts, manifests, tokens, and the error answers), answers bodies that
// validate against the schema the document declares for the status code. Every
// documented status is exercised but the few listed in notDriven, every component
// schema is used, and every property a schema declares appears in some answer (so the
// optional fields are exercised too, and the schemas declare nothing the server does not
// send).
func TestOpenAPIResponseSchemas(t *testing.T) {
	// a topic root of its own, so the bundles carry topic_root (the default root is left unsaid)
	e := newEnv(t, func(c *server.Config) { c.TopicRoot = "openapi/meters" })
	admin := e.s.AdminToken()
	raw, err := os.ReadFile("httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, raw)
	checkDocRules(t, doc, httpapi.New(e.s).Routes())
	c := newChecker(t, doc, e.base)
	if served := c.do("GET", "/api/openapi.json", admin, "", nil, 200); !bytes.Equal(served, raw) {
		t.Fatal("the server does not serve openapi.json as it is on disk")
	}
	c.do("GET", "/api/openapi.json", "", "", nil, 200)
	c.do("GET", "/healthz", "", "", nil, 200)
	c.do("GET", "/metrics", admin, "", nil, 200)
	c.do("GET", "/metrics", "wrong", "", nil, 401)

	// API tokens
	var created struct{ Token string }
	tok := map[string]string{"admin": admin}
	for _, role := range []string{"viewer", "operator", "technician"} {
		c.doJSON("POST", "/api/v1/tokens", admin, map[string]string{"name": "t-" + role, "role": role}, 201, &created)
		tok[role] = created.Token
	}
	c.do("POST", "/api/v1/tokens", admin, "", map[string]string{"name": "t-viewer", "role": "viewer"}, 409)
	c.do("POST", "/api/v1/tokens", admin, "", map[string]string{"name": "x", "role": "root"}, 400)
	c.do("POST", "/api/v1/tokens", admin, "", []byte(`{"name":`), 400)
	c.do("POST", "/api/v1/tokens", tok["operator"], "", map[string]string{"name": "x", "role": "admin"}, 403)
	c.do("POST", "/api/v1/tokens", "", "", map[string]string{"name": "x", "role": "admin"}, 401)
	c.do("POST", "/api/v1/tokens", admin, "", map[string]string{"name": "temp", "role": "viewer"}, 201)
	c.do("GET", "/api/v1/tokens", admin, "", nil, 200)
	c.do("GET", "/api/v1/tokens", tok["viewer"], "", nil, 403)
	c.do("GET", "/api/v1/tokens", "", "", nil, 401)
	c.do("DELETE", "/api/v1/tokens/temp", admin, "", nil, 204)
	c.do("DELETE", "/api/v1/tokens/temp", admin, "", nil, 404)
	c.do("DELETE", "/api/v1/tokens/t-viewer", tok["technician"], "", nil, 403)
	c.do("DELETE", "/api/v1/tokens/t-viewer", "", "", nil, 401)
	c.do("GET", "/api/v1/whoami", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/whoami", "", "", nil, 401)

	// manifests
	v1, m1 := e.manifest("watermeter", 1, "v1", nil)
	c.do("POST", "/api/v1/manifests", admin, "application/cose", v1, 201)
	c.do("POST", "/api/v1/manifests", admin, "application/cose", v1, 200) // the same bytes again: already registered
	v1again, _ := e.manifest("watermeter", 1, "v1 rebuilt", nil)
	c.do("POST", "/api/v1/manifests", admin, "application/cose", v1again, 409) // other bytes, same version: downgrade
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	v2bad, _ := e.manifest("watermeter", 2, "v2", other)
	c.do("POST", "/api/v1/manifests", admin, "application/cose", v2bad, 400) // unknown-key
	c.do("POST", "/api/v1/manifests", admin, "application/cose", make([]byte, wire.MaxManifestSize+1), 413)
	c.do("POST", "/api/v1/manifests", tok["operator"], "application/cose", v1, 403)
	c.do("POST", "/api/v1/manifests", "", "application/cose", v1, 401)
	c.do("GET", "/api/v1/manifests", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/manifests", "", "", nil, 401)

	// devices: m1 follows the current manifest, m2 is pinned to version 1
	var b1, b2 wire.Bundle
	c.doJSON("POST", "/api/v1/devices", admin, map[string]any{"device": "m1", "product": "watermeter"}, 201, &b1)
	c.doJSON("POST", "/api/v1/devices", admin, map[string]any{"device": "m2", "product": "watermeter", "manifest": 1, "dev_eui": "70B3D57ED0000001"}, 201, &b2)
	c.do("POST", "/api/v1/devices", admin, "", map[string]any{"device": "m3", "product": "watermeter", "dev_eui": "70b3d57ed0000001"}, 409)
	c.do("POST", "/api/v1/devices", admin, "", map[string]any{"device": "m3", "product": "watermeter", "dev_eui": "70b3d57ed00000"}, 400)
	c.do("POST", "/api/v1/devices", admin, "", map[string]any{"device": "bad id!", "product": "watermeter"}, 400)
	c.do("POST", "/api/v1/devices", admin, "", map[string]any{"device": "m3", "product": "watermeter", "extra": 1}, 400)
	c.do("POST", "/api/v1/devices", tok["operator"], "", map[string]any{"device": "m3", "product": "watermeter"}, 403)
	c.do("POST", "/api/v1/devices", "", "", map[string]any{"device": "m3", "product": "watermeter"}, 401)
	d1, d2 := e.newDevice(&b1), e.newDevice(&b2)
	for _, d := range []*device{d1, d2} {
		d.man = wire.ManifestRef{Product: "watermeter", Version: 1, Root: m1.Root}
		d.log(wire.EntryRegister, &wire.RegisterPayload{Litres: 10})
		c.report(d, d.report(nil), 200)
	}

	// device ingest: the error answers
	c.report(d2, d2.report(func(r *wire.Report) { r.RSeq = 1 }), 409)  // replay: an ack carrying the reason
	c.report(d2, d2.report(func(r *wire.Report) { r.Epoch = 9 }), 409) // wrong-epoch: JSON
	forged := e.newDevice(&wire.Bundle{Device: "m1", Epoch: b1.Epoch, ChainKey: b1.ChainKey, UplinkKey: bytes.Repeat([]byte{1}, 32), DownlinkKey: b1.DownlinkKey})
	c.report(forged, forged.report(nil), 401)
	ghost := e.newDevice(&wire.Bundle{Device: "ghost", Epoch: 1, ChainKey: bytes.Repeat([]byte{2}, 32), UplinkKey: bytes.Repeat([]byte{3}, 32), DownlinkKey: bytes.Repeat([]byte{4}, 32)})
	c.report(ghost, ghost.report(nil), 404)
	c.do("POST", "/v1/reports", "", coseType, []byte{0xff, 0x00}, 400)
	c.do("POST", "/v1/reports", "", coseType, make([]byte, wire.MaxMessageSize+2), 413)
	c.do("POST", "/v1/reports", "", "application/json", []byte("{}"), 415)
	d1.log(wire.EntryCheckOK, nil)
	batch, err := wire.Marshal([][]byte{d1.report(nil), {0xff}})
	if err != nil {
		t.Fatal(err)
	}
	var results []httpapi.BatchResult
	if err := wire.Unmarshal(c.do("POST", "/v1/reports:batch", "", "application/cbor", batch, 200), &results); err != nil || len(results) != 2 || results[0].Reject != "" {
		t.Fatalf("batch: %+v %v", results, err)
	}
	d1.accept(results[0].Ack)
	c.do("POST", "/v1/reports:batch", "", "application/cbor", []byte{0xff}, 400)
	c.do("POST", "/v1/reports:batch", "", "application/cbor", make([]byte, 256*(wire.MaxMessageSize+8)+1), 413)

	// a service visit on m1: pending token, open window, closed visit
	var visit httpapi.VisitView
	c.doJSON("POST", "/api/v1/devices/m1/visits", tok["technician"], map[string]any{"work_order": "WO-1", "technician": "tom", "window_s": 600}, 201, &visit)
	c.do("POST", "/api/v1/devices/m1/visits", tok["technician"], "", map[string]any{"technician": "tom"}, 400)
	c.do("POST", "/api/v1/devices/nope/visits", tok["technician"], "", map[string]any{"work_order": "WO-2"}, 404)
	c.do("POST", "/api/v1/devices/m1/visits", tok["viewer"], "", map[string]any{"work_order": "WO-2"}, 403)
	c.do("POST", "/api/v1/devices/m1/visits", "", "", map[string]any{"work_order": "WO-2"}, 401)
	c.do("GET", "/api/v1/devices/m1", tok["viewer"], "", nil, 200) // pending_tokens
	a := c.report(d1, d1.report(nil), 200)
	if len(a.Commands) != 1 {
		t.Fatalf("%d commands, want the service token", len(a.Commands))
	}
	st, err := wire.OpenToken(a.Commands[0], "m1", d1.b.DownlinkKey)
	if err != nil {
		t.Fatal(err)
	}
	d1.log(wire.EntryServiceBegin, &wire.ServiceBeginPayload{TokenID: st.ID, WorkOrder: "WO-1", Technician: "tom"})
	d1.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	c.report(d1, d1.report(nil), 200)
	c.do("GET", "/api/v1/devices/m1", tok["viewer"], "", nil, 200) // window_until
	c.do("GET", "/api/v1/devices?product=watermeter", tok["viewer"], "", nil, 200)
	d1.log(wire.EntryCoverClose, nil)
	d1.log(wire.EntryServiceEnd, &wire.ServiceEndPayload{SealNumber: "S-1"})
	c.report(d1, d1.report(nil), 200)
	c.do("POST", "/api/v1/visits/"+visit.ID+"/close", tok["technician"], "", map[string]any{"seal_number": "S-1"}, 400)
	c.do("POST", "/api/v1/visits/"+visit.ID+"/close", tok["technician"], "", map[string]any{"seal_number": "S-1", "result": "ok"}, 200)
	c.do("POST", "/api/v1/visits/"+visit.ID+"/close", tok["technician"], "", map[string]any{"seal_number": "S-1", "result": "ok"}, 409)
	c.do("POST", "/api/v1/visits/v-nope/close", tok["technician"], "", map[string]any{"result": "ok"}, 404)
	c.do("POST", "/api/v1/visits/"+visit.ID+"/close", tok["viewer"], "", map[string]any{"result": "ok"}, 403)
	c.do("POST", "/api/v1/visits/"+visit.ID+"/close", "", "", map[string]any{"result": "ok"}, 401)
	c.do("GET", "/api/v1/visits", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/visits?device=m1", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/visits", "", "", nil, 401)

	// tamper on m2: events with decoded payloads, an alert, clearing
	d2.log(wire.EntryCoverOpen, &wire.CoverOpenPayload{Source: wire.CoverSourceIRQ})
	c.report(d2, d2.report(nil), 200)
	if st := e.device("m2").State; st != store.StateTampered {
		t.Fatalf("m2 is %s", st)
	}
	c.do("GET", "/api/v1/devices/m2/events", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/devices/m1/events?tamper=true&after=1&limit=50", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/devices/nope/events", tok["viewer"], "", nil, 404)
	c.do("GET", "/api/v1/devices/m2/events", "", "", nil, 401)
	c.do("GET", "/api/v1/devices", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/devices?state=tampered&product=watermeter&limit=5", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/devices?state=bogus", tok["viewer"], "", nil, 400)
	c.do("GET", "/api/v1/devices", "", "", nil, 401)
	c.do("GET", "/api/v1/devices/m2", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/devices/nope", tok["viewer"], "", nil, 404)
	c.do("GET", "/api/v1/devices/m2", "", "", nil, 401)

	var alerts struct{ Alerts []server.AlertView }
	c.doJSON("GET", "/api/v1/alerts?unacked=true", tok["viewer"], nil, 200, &alerts)
	if len(alerts.Alerts) == 0 {
		t.Fatal("no alert")
	}
	id := strconv.FormatInt(alerts.Alerts[0].ID, 10)
	c.do("POST", "/api/v1/alerts/"+id+"/ack", tok["operator"], "", nil, 200)
	c.do("POST", "/api/v1/alerts/abc/ack", tok["operator"], "", nil, 400)
	c.do("POST", "/api/v1/alerts/999999/ack", tok["operator"], "", nil, 404)
	c.do("POST", "/api/v1/alerts/"+id+"/ack", tok["technician"], "", nil, 403)
	c.do("POST", "/api/v1/alerts/"+id+"/ack", "", "", nil, 401)
	c.do("GET", "/api/v1/alerts?device=m2&limit=10", tok["viewer"], "", nil, 200) // acked_at, acked_by
	c.do("GET", "/api/v1/alerts", "", "", nil, 401)

	c.do("POST", "/api/v1/devices/m1/clear", tok["operator"], "", map[string]any{"result": "x"}, 400) // m1 is trusted
	c.do("POST", "/api/v1/devices/m2/clear", tok["operator"], "", []byte(`{"result":1}`), 400)
	c.do("POST", "/api/v1/devices/nope/clear", tok["operator"], "", map[string]any{"result": "x"}, 404)
	c.do("POST", "/api/v1/devices/m2/clear", tok["technician"], "", map[string]any{"result": "x"}, 403)
	c.do("POST", "/api/v1/devices/m2/clear", "", "", map[string]any{"result": "x"}, 401)
	c.do("POST", "/api/v1/devices/m2/clear", tok["operator"], "", map[string]any{"result": "seal intact"}, 200)

	c.do("GET", "/api/v1/audit", tok["operator"], "", nil, 200)
	c.do("GET", "/api/v1/audit?device=m2&limit=3", tok["operator"], "", nil, 200)
	c.do("GET", "/api/v1/audit", tok["viewer"], "", nil, 403)
	c.do("GET", "/api/v1/audit", "", "", nil, 401)

	// districts: configuration, members import, balance and inspection
	c.do("GET", "/api/v1/districts", tok["viewer"], "", nil, 200) // none yet
	c.do("GET", "/api/v1/districts", "", "", nil, 401)
	c.do("PUT", "/api/v1/districts/north", admin, "", map[string]any{"name": "North", "config": map[string]any{"nrw_target_pct": 20}}, 200)
	c.do("PUT", "/api/v1/districts/north", admin, "", map[string]any{"config": map[string]any{"tanks": []any{}}, "x": 1}, 400)
	c.do("PUT", "/api/v1/districts/north", tok["operator"], "", map[string]any{}, 403)
	c.do("PUT", "/api/v1/districts/north", "", "", map[string]any{}, 401)
	c.do("PUT", "/api/v1/districts/west", admin, "", map[string]any{"config": map[string]any{}}, 200)
	c.do("POST", "/api/v1/district-members", admin, "text/csv", membersCSV(), 200)
	c.do("POST", "/api/v1/district-members", admin, "text/csv", []byte("device,district,role\nc1,west,customer\n"), 200)
	c.do("POST", "/api/v1/district-members", admin, "text/csv", []byte("device,district\n"), 400)
	c.do("POST", "/api/v1/district-members", admin, "text/csv", []byte("device,district,role\nc1,east,customer\n"), 404)
	c.do("POST", "/api/v1/district-members", admin, "text/csv", bytes.Repeat([]byte("x"), 8<<20+1), 413)
	c.do("POST", "/api/v1/district-members", tok["operator"], "text/csv", membersCSV(), 403)
	c.do("POST", "/api/v1/district-members", "", "text/csv", membersCSV(), 401)
	e.man = m1 // the town's meters report the registered manifest
	newTown(e).run(30, func(int) bool { return false }, 10)
	c.do("GET", "/api/v1/districts", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/districts/north", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/districts/nope", tok["viewer"], "", nil, 404)
	c.do("GET", "/api/v1/districts/north", "", "", nil, 401)
	c.do("GET", "/api/v1/districts/north/inspection", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/districts/west/inspection", tok["viewer"], "", nil, 200) // error: no inlet
	c.do("GET", "/api/v1/districts/nope/inspection", tok["viewer"], "", nil, 404)
	c.do("GET", "/api/v1/districts/north/inspection", "", "", nil, 401)
	c.do("GET", "/api/v1/districts/north/balance", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/districts/north/balance?format=csv", tok["viewer"], "", nil, 200)
	c.do("GET", "/api/v1/districts/north/balance?format=xml", tok["viewer"], "", nil, 400)
	c.do("GET", "/api/v1/districts/nope/balance", tok["viewer"], "", nil, 404)
	c.do("GET", "/api/v1/districts/north/balance", "", "", nil, 401)

	// What was not driven, and why. Anything else the document declares must have been.
	notDriven := map[string]string{
		"GET /healthz 503 application/json":                            "needs a failing store",
		"POST /v1/reports 503 application/json":                        "needs a failing store",
		`POST /v1/reports 503 application/cose; cose-type="cose-mac0"`: "needs a failing store",
		"POST /api/v1/devices 409 application/json":                    "needs a provisioning race",
		"POST /api/v1/devices/{id}/visits 409 application/json":        "needs a commit race",
		"POST /api/v1/devices/{id}/clear 409 application/json":         "needs a commit race",
	}
	var missing []string
	for key, op := range doc.operations() {
		for code, r := range op["responses"].(map[string]any) {
			resp, _, _ := doc.deref(r.(map[string]any))
			content, _ := resp["content"].(map[string]any)
			var keys []string
			if len(content) == 0 {
				keys = []string{key + " " + code}
			}
			for ct := range content {
				keys = append(keys, key+" "+code+" "+ct)
			}
			for _, k := range keys {
				if code != "500" && !c.exercised[k] && notDriven[k] == "" {
					missing = append(missing, k)
				}
			}
		}
	}
	sort.Strings(missing)
	for _, k := range missing {
		t.Errorf("documented but never exercised: %s", k)
	}
	for name := range doc.root["components"].(map[string]any)["schemas"].(map[string]any) {
		if !doc.usedSchemas[name] {
			t.Errorf("schema %s was never used by an answer", name)
		}
	}
	for _, ptr := range slices.Sorted(mapKeys(doc.declared)) {
		for _, p := range doc.declared[ptr] {
			if !doc.seen[ptr][p] {
				t.Errorf("%s declares %q, which no answer carried", ptr, p)
			}
		}
	}
}

// The Go types the handlers encode, with every field set, validate against their schemas:
// a field added to a type (tagged for JSON) fails here even before any data carries it.
func TestOpenAPISchemasCoverGoTypes(t *testing.T) {
	raw, err := os.ReadFile("httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, raw)
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v      any
		schema string
		fix    func(v any)
	}{
		{&httpapi.DeviceView{}, "Device", func(v any) {
			d := v.(*httpapi.DeviceView)
			d.State, d.ID, d.PendingTokens, d.DevEUI = store.StateTampered, "m-1", nil, "70b3d57ed0000001"
		}},
		{&httpapi.EventView{}, "Event", nil},
		{&httpapi.VisitView{}, "Visit", nil},
		{&server.AlertView{}, "Alert", nil},
		{&httpapi.AuditView{}, "Audit", nil},
		{&httpapi.ManifestInfo{}, "Manifest", nil},
		{&httpapi.DistrictView{}, "District", func(v any) {
			d := v.(*httpapi.DistrictView)
			d.Config, d.Members = []byte(`{"nrw_target_pct":12}`), []httpapi.MemberView{{Device: "m-1", Role: "inlet"}}
		}},
		{&server.BalancePoint{}, "BalancePoint", nil},
		{&httpapi.APITokenView{}, "APIToken", func(v any) { v.(*httpapi.APITokenView).Role = server.RoleOperator }},
		{&wire.Bundle{}, "Bundle", func(v any) { v.(*wire.Bundle).Device = "m-1" }},
	} {
		fill(reflect.ValueOf(c.v).Elem(), now)
		if c.fix != nil {
			c.fix(c.v)
		}
		for _, e := range doc.validateAs(c.v, c.schema) {
			t.Errorf("%T: %s", c.v, e)
		}
	}
}

// fill sets every exported field of a struct to a non-zero value.
func fill(v reflect.Value, now time.Time) {
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch {
		case f.Type() == reflect.TypeOf(time.Time{}):
			f.Set(reflect.ValueOf(now))
		case f.Type() == reflect.TypeOf(json.RawMessage{}):
			f.SetBytes([]byte(`{"rseq":7}`))
		case f.Kind() == reflect.String:
			f.SetString("x")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(7)
		case f.CanUint():
			f.SetUint(7)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			f.SetBytes([]byte{1, 2, 3})
		}
	}
}

// The validator is what makes the test above mean something: it refuses an undeclared
// field in a closed object (at any depth), a missing required field, a wrong type, a
// value outside an enum, a null, a malformed date-time or base64 string, a non-integer,
// and a schema keyword it does not implement.
func TestOpenAPIValidatorRejects(t *testing.T) {
	raw, err := os.ReadFile("httpapi/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := parseDoc(t, raw)
	dev := map[string]any{"id": "m-1", "product": "p", "epoch": json.Number("1"), "state": "trusted", "state_since": "2026-11-25T12:00:00Z",
		"anchor_n": json.Number("3"), "anchor_head": "AQID", "last_rseq": json.Number("3"), "last_seen": "2026-11-25T12:00:00Z",
		"report_interval": json.Number("60"), "rejections": json.Number("0"), "created": "2026-11-25T12:00:00Z"}
	check := func(name string, v any, schema string, wantErr bool) {
		t.Helper()
		errs := doc.validate(v, map[string]any{"$ref": "#/components/schemas/" + schema}, "", "body")
		if wantErr && len(errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
		if !wantErr && len(errs) != 0 {
			t.Errorf("%s: %v", name, errs)
		}
	}
	with := func(k string, v any) map[string]any {
		m := cloneMap(dev)
		m[k] = v
		return m
	}
	without := func(k string) map[string]any {
		m := cloneMap(dev)
		delete(m, k)
		return m
	}
	check("valid device", dev, "Device", false)
	check("valid list", map[string]any{"devices": []any{dev}}, "DeviceList", false)
	check("undeclared field", with("secret", "x"), "Device", true)
	check("undeclared field in a list item", map[string]any{"devices": []any{dev, with("uplink_key", "AA==")}}, "DeviceList", true)
	check("undeclared field beside the list", map[string]any{"devices": []any{}, "next": "x"}, "DeviceList", true)
	check("pending tokens are not a Device field", with("pending_tokens", []any{}), "Device", true)
	check("missing required field", without("anchor_n"), "Device", true)
	check("missing list", map[string]any{}, "DeviceList", true)
	check("string for integer", with("epoch", "1"), "Device", true)
	check("fraction for integer", with("epoch", json.Number("1.5")), "Device", true)
	check("negative for unsigned", with("epoch", json.Number("-1")), "Device", true)
	check("integer for string", with("product", json.Number("1")), "Device", true)
	check("object for array", map[string]any{"devices": dev}, "DeviceList", true)
	check("state outside the enum", with("state", "broken"), "Device", true)
	check("null", with("anchor_head", nil), "Device", true)
	check("bad date-time", with("created", "yesterday"), "Device", true)
	check("bad base64", with("anchor_head", "!!"), "Device", true)
	check("bad device id", with("id", "a b"), "Device", true)
	check("boolean for string", map[string]any{"error": true, "detail": "x"}, "Error", true)
	check("error without detail", map[string]any{"error": "x"}, "Error", true)
	if errs := doc.validate("x", map[string]any{"type": "string", "maxLength": json.Number("3")}, "inline", "body"); len(errs) == 0 {
		t.Error("a keyword the validator does not implement was accepted")
	}
	if errs := doc.validate("x", map[string]any{"oneOf": []any{}}, "inline", "body"); len(errs) == 0 {
		t.Error("a schema without a type was accepted")
	}
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
