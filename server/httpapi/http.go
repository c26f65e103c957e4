// Package httpapi is the fleet server's HTTP transport: device ingest (POST /v1/reports
// and batches) in front of server.HandleReport, the operator API under /api/v1 (bearer
// tokens and roles, over the server's audited operations), /metrics, /healthz, the OpenAPI
// document, and the operator's console (Config.Dashboard) at / and /ui/.
package httpapi

import (
	"context"
	"crypto/tls"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

var (
	anyRole     = server.AnyRole
	opRoles     = server.OperatorRoles
	serviceRole = server.ServiceRoles
	adminOnly   = server.AdminOnly
)

// Route is one HTTP route: method and path pattern (net/http), the roles admitted (nil:
// open, or authenticated by the report MAC for ingest).
type Route struct {
	Method, Path string
	Roles        []string
	Open         bool // no bearer token: /healthz, and device ingest (authenticated by the COSE MAC)
	h            func(w http.ResponseWriter, r *http.Request, who *store.APIToken)
}

//go:embed openapi.json
var openAPI []byte

// maxBatch bounds /v1/reports:batch.
const maxBatch = 256

// API is the HTTP transport of one server (a server.Transport named "http").
type API struct {
	s   *server.Server
	st  store.Store
	srv *http.Server
	ln  net.Listener
}

// New is the HTTP API of s; attach it with s.Attach before s.Start.
func New(s *server.Server) *API { return &API{s: s, st: s.Store()} }

// Name is "http".
func (a *API) Name() string { return "http" }

// Start listens on Config.HTTPAddr (nothing when it is "off"), with Config.HTTPTLS if set.
func (a *API) Start(context.Context) error {
	cfg := a.s.Config()
	if cfg.HTTPAddr == "off" {
		return nil
	}
	ln, err := server.Listen(cfg.HTTPAddr, "--http")
	if err != nil {
		return err
	}
	if cfg.HTTPTLS != nil {
		ln = tls.NewListener(ln, cfg.HTTPTLS)
	}
	a.ln = ln
	a.srv = &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := a.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.s.Logger().Error("http server", "err", err)
		}
	}()
	a.s.Logger().Info("HTTP API listening", "addr", ln.Addr().String())
	return nil
}

// Addr is the address the API listens on ("" before Start or when off).
func (a *API) Addr() string {
	if a.ln == nil {
		return ""
	}
	return a.ln.Addr().String()
}

// Shutdown stops taking requests and waits for those in progress (bounded by ctx).
func (a *API) Shutdown(ctx context.Context) error {
	if a.srv == nil {
		return nil
	}
	return a.srv.Shutdown(ctx)
}

// Routes lists every route the server registers (the OpenAPI test checks each is documented).
func (a *API) Routes() []Route {
	return []Route{
		{Method: "GET", Path: "/healthz", Open: true, h: a.healthz},
		{Method: "POST", Path: "/v1/reports", Open: true, h: a.postReport},
		{Method: "POST", Path: "/v1/reports:batch", Open: true, h: a.postBatch},
		{Method: "GET", Path: "/metrics", Roles: anyRole, h: a.metricsHandler},
		{Method: "GET", Path: "/api/openapi.json", Open: true, h: a.openapi}, // tooling fetches it without a token
		{Method: "GET", Path: "/api/v1/devices", Roles: anyRole, h: a.listDevices},
		{Method: "POST", Path: "/api/v1/devices", Roles: adminOnly, h: a.postDevice},
		{Method: "GET", Path: "/api/v1/devices/{id}", Roles: anyRole, h: a.getDevice},
		{Method: "GET", Path: "/api/v1/devices/{id}/events", Roles: anyRole, h: a.listEvents},
		{Method: "POST", Path: "/api/v1/devices/{id}/visits", Roles: serviceRole, h: a.postVisit},
		{Method: "POST", Path: "/api/v1/devices/{id}/clear", Roles: opRoles, h: a.postClear},
		{Method: "GET", Path: "/api/v1/visits", Roles: anyRole, h: a.listVisits},
		{Method: "POST", Path: "/api/v1/visits/{id}/close", Roles: serviceRole, h: a.closeVisit},
		{Method: "GET", Path: "/api/v1/alerts", Roles: anyRole, h: a.listAlerts},
		{Method: "POST", Path: "/api/v1/alerts/{id}/ack", Roles: opRoles, h: a.ackAlert},
		{Method: "GET", Path: "/api/v1/audit", Roles: opRoles, h: a.listAudit},
		{Method: "GET", Path: "/api/v1/manifests", Roles: anyRole, h: a.listManifests},
		{Method: "POST", Path: "/api/v1/manifests", Roles: adminOnly, h: a.postManifest},
		{Method: "GET", Path: "/api/v1/tokens", Roles: adminOnly, h: a.listTokens},
		{Method: "POST", Path: "/api/v1/tokens", Roles: adminOnly, h: a.postToken},
		{Method: "DELETE", Path: "/api/v1/tokens/{name}", Roles: adminOnly, h: a.deleteToken},
		{Method: "GET", Path: "/api/v1/whoami", Roles: anyRole, h: a.whoami},
		{Method: "GET", Path: "/api/v1/districts", Roles: anyRole, h: a.listDistricts},
		{Method: "GET", Path: "/api/v1/districts/{id}", Roles: anyRole, h: a.getDistrict},
		{Method: "PUT", Path: "/api/v1/districts/{id}", Roles: adminOnly, h: a.putDistrict},
		{Method: "POST", Path: "/api/v1/district-members", Roles: adminOnly, h: a.importMembers},
		{Method: "GET", Path: "/api/v1/districts/{id}/balance", Roles: anyRole, h: a.getBalance},
		{Method: "GET", Path: "/api/v1/districts/{id}/inspection", Roles: anyRole, h: a.getInspection},
	}
}

// Handler is the server's HTTP handler: API, ingest, metrics and the operator's console
// (server/dashboard), which has its own sign-in and sessions.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	allow := map[string][]string{}
	for _, rt := range a.Routes() {
		mux.Handle(rt.Method+" "+rt.Path, a.guard(rt))
		allow[rt.Path] = append(allow[rt.Path], rt.Method)
		if rt.Method == http.MethodGet {
			allow[rt.Path] = append(allow[rt.Path], http.MethodHead)
		}
	}
	for path := range allow {
		mux.Handle(path, methodNotAllowed(allow, path))
	}
	if con := a.s.Config().Dashboard; con != nil {
		mux.Handle("/ui/", con)
		mux.Handle("GET /{$}", con)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.authenticate(r); !ok {
			apiError(w, http.StatusUnauthorized, "unauthorized", "a bearer token is required")
			return
		}
		apiError(w, http.StatusNotFound, "not-found", "no such route")
	})
	return mux
}

// methodNotAllowed answers a known path asked with a method it does not serve: 405 with
// the methods it does serve, before any token check (the route is public knowledge: the
// OpenAPI document lists it).
func methodNotAllowed(allow map[string][]string, path string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods := strings.Join(allow[path], ", ")
		w.Header().Set("Allow", methods)
		apiError(w, http.StatusMethodNotAllowed, "method-not-allowed", fmt.Sprintf("%s %s: this path answers %s", r.Method, path, methods))
	})
}

// guard checks the bearer token and role of a route.
func (a *API) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				a.s.Logger().Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				apiError(w, http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		if rt.Open {
			rt.h(w, r, nil)
			return
		}
		who, ok := a.authenticate(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="fieldseal"`)
			apiError(w, http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
			return
		}
		if !slices.Contains(rt.Roles, who.Role) {
			apiError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("role %s may not %s %s", who.Role, rt.Method, rt.Path))
			return
		}
		rt.h(w, r, who)
	})
}

// authenticate reads "Authorization: Bearer T" and looks the token's hash up. The API
// takes no cookie (a browser would send it cross-site) and no token in the URL; the console
// has its own session cookie with CSRF protection.
func (a *API) authenticate(r *http.Request) (*store.APIToken, bool) {
	tok := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		tok = strings.TrimSpace(h[len("Bearer "):])
	}
	if tok == "" || len(tok) > 256 {
		return nil, false
	}
	t, err := a.s.LookupAPIToken(r.Context(), tok)
	if err != nil {
		return nil, false
	}
	return t, true
}

type apiErr struct {
	Error  string `json:"error"`  // stable reason name
	Detail string `json:"detail"` // human text
}

func apiError(w http.ResponseWriter, code int, reason, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiErr{Error: reason, Detail: detail})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// storeError answers a store or operator error with the right status.
func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		apiError(w, http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, store.ErrConflict):
		apiError(w, http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, server.ErrInput):
		apiError(w, http.StatusBadRequest, "invalid", err.Error())
	default:
		apiError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "request body: "+err.Error())
		return false
	}
	return true
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := a.st.GetAPIToken(ctx, []byte("healthz")); err != nil && !errors.Is(err, store.ErrNotFound) {
		apiError(w, http.StatusServiceUnavailable, "unavailable", "store: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "protocol": wire.ProtocolVersion})
}

func (a *API) metricsHandler(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	promhttp.HandlerFor(a.s.Metrics(), promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

func (a *API) openapi(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openAPI)
}

func (a *API) whoami(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	writeJSON(w, http.StatusOK, apiTokenView(*who))
}

// --- device ingest over HTTP ---

// statusFor maps a rejection reason to an HTTP status.
func statusFor(reason string) int {
	switch reason {
	case server.ReasonMalformed, server.ReasonUnsupported:
		return http.StatusBadRequest
	case server.ReasonOversize:
		return http.StatusRequestEntityTooLarge
	case server.ReasonBadMAC:
		return http.StatusUnauthorized
	case server.ReasonUnknownDevice:
		return http.StatusNotFound
	case server.ReasonUnavailable, server.ReasonConflict:
		return http.StatusServiceUnavailable
	default:
		return http.StatusConflict // authentic but refused: the body is an ack carrying the reason
	}
}

func isCoseMac0(ct string) bool {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != wire.ReportMediaTypeBase {
		return false
	}
	t, ok := params["cose-type"]
	return !ok || t == "cose-mac0"
}

func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			apiError(w, http.StatusRequestEntityTooLarge, server.ReasonOversize, fmt.Sprintf("body over %d bytes", limit))
		} else {
			apiError(w, http.StatusBadRequest, server.ReasonMalformed, "reading body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

func (a *API) postReport(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	if !isCoseMac0(r.Header.Get("Content-Type")) {
		apiError(w, http.StatusUnsupportedMediaType, server.ReasonMalformed, "Content-Type must be "+wire.ReportMediaType)
		return
	}
	body, ok := readLimited(w, r, wire.MaxMessageSize+1)
	if !ok {
		return
	}
	ack, err := a.s.HandleReport(r.Context(), body)
	if err != nil {
		reason := server.Reason(err)
		w.Header().Set("Fieldseal-Reject", reason)
		if ack != nil {
			w.Header().Set("Content-Type", wire.ReportMediaType)
			w.WriteHeader(statusFor(reason))
			w.Write(ack)
			return
		}
		apiError(w, statusFor(reason), reason, err.Error())
		return
	}
	w.Header().Set("Content-Type", wire.ReportMediaType)
	w.Write(ack)
}

// BatchResult is one element of a /v1/reports:batch answer: the ack, or the reason.
type BatchResult struct {
	_      struct{} `cbor:",toarray"`
	Ack    []byte   // sealed ack (also for authentic rejections), or empty
	Reject string   // reason name, empty when accepted
}

func (a *API) postBatch(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	body, ok := readLimited(w, r, maxBatch*(wire.MaxMessageSize+8))
	if !ok {
		return
	}
	var reports [][]byte
	dec, _ := cbor.DecOptions{MaxArrayElements: maxBatch, MaxNestedLevels: 4, IndefLength: cbor.IndefLengthForbidden}.DecMode()
	if err := dec.Unmarshal(body, &reports); err != nil {
		apiError(w, http.StatusBadRequest, server.ReasonMalformed, "batch must be a CBOR array of at most 256 byte strings: "+err.Error())
		return
	}
	out := make([]BatchResult, len(reports))
	done := make(chan struct{}, len(reports))
	for i, rep := range reports {
		go func() {
			defer func() { done <- struct{}{} }()
			ack, err := a.s.HandleReport(r.Context(), rep)
			out[i] = BatchResult{Ack: ack, Reject: server.Reason(err)}
		}()
	}
	for range reports {
		<-done
	}
	b, _ := wire.Marshal(out)
	w.Header().Set("Content-Type", "application/cbor")
	w.Write(b)
}

// --- operator API ---

func (a *API) listDevices(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	state := r.URL.Query().Get("state")
	if state != "" && !slices.Contains(store.States, state) {
		apiError(w, http.StatusBadRequest, "invalid", "unknown state "+state)
		return
	}
	lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := a.st.ListDevices(r.Context(), store.DeviceFilter{State: state, Product: r.URL.Query().Get("product"), Limit: lim})
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": views(list, func(d *store.Device) DeviceView { return deviceView(d, nil) })})
}

func (a *API) getDevice(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	d, err := a.st.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	toks, _ := a.st.PendingTokens(r.Context(), d.ID, d.Epoch, a.s.Now())
	writeJSON(w, http.StatusOK, deviceView(d, toks))
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	id := r.PathValue("id")
	if _, err := a.st.GetDevice(r.Context(), id); err != nil {
		storeError(w, err)
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	lim, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	evs, err := a.st.ListEvents(r.Context(), store.Page{Dev: id, AfterN: after, Limit: lim})
	if err != nil {
		storeError(w, err)
		return
	}
	if r.URL.Query().Get("tamper") == "true" {
		evs = slices.DeleteFunc(evs, func(e store.Event) bool { return !e.Tamper })
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": views(evs, eventView)})
}

type provisionReq struct {
	Device   string `json:"device"`
	Product  string `json:"product"`
	Manifest uint64 `json:"manifest,omitempty"` // pin this manifest version
	DevEUI   string `json:"dev_eui,omitempty"`  // LoRaWAN DevEUI, 16 hex digits
}

func (a *API) postDevice(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	var req provisionReq
	if !decodeBody(w, r, &req) {
		return
	}
	var opts []server.ProvisionOption
	if req.DevEUI != "" {
		opts = append(opts, server.WithDevEUI(req.DevEUI))
	}
	b, err := a.s.Provision(r.Context(), req.Device, req.Product, req.Manifest, who.Name, opts...)
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, b)
}

type visitReq struct {
	WorkOrder  string `json:"work_order"`
	Technician string `json:"technician"`
	WindowS    int    `json:"window_s,omitempty"`
}

func (a *API) postVisit(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	var req visitReq
	if !decodeBody(w, r, &req) {
		return
	}
	if req.WorkOrder == "" {
		apiError(w, http.StatusBadRequest, "invalid", "work_order is required")
		return
	}
	v, err := a.s.OpenVisit(r.Context(), r.PathValue("id"), req.WorkOrder, req.Technician, time.Duration(req.WindowS)*time.Second, who.Name)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, visitView(*v))
}

type closeReq struct {
	SealNumber string `json:"seal_number"`
	Result     string `json:"result"`
}

func (a *API) closeVisit(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	var req closeReq
	if !decodeBody(w, r, &req) {
		return
	}
	v, err := a.s.CloseVisit(r.Context(), r.PathValue("id"), req.SealNumber, req.Result, who.Name)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, visitView(*v))
}

func (a *API) listVisits(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	vs, err := a.st.ListVisits(r.Context(), r.URL.Query().Get("device"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"visits": views(vs, visitView)})
}

type clearReq struct {
	Result string `json:"result"`
}

func (a *API) postClear(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	var req clearReq
	if !decodeBody(w, r, &req) {
		return
	}
	if err := a.s.ClearTamper(r.Context(), r.PathValue("id"), req.Result, who.Name); err != nil {
		storeError(w, err)
		return
	}
	d, err := a.st.GetDevice(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, deviceView(d, nil))
}

func (a *API) listAlerts(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	lim, _ := strconv.Atoi(q.Get("limit"))
	al, err := a.st.ListAlerts(r.Context(), store.Page{Dev: q.Get("device"), BeforeID: before, Limit: lim}, q.Get("unacked") == "true")
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": views(al, server.AlertViewOf)})
}

func (a *API) ackAlert(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "alert id must be a number")
		return
	}
	if err := a.s.AckAlert(r.Context(), id, who.Name); err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"acked": id})
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	lim, _ := strconv.Atoi(q.Get("limit"))
	au, err := a.st.ListAudit(r.Context(), store.Page{Dev: q.Get("device"), BeforeID: before, Limit: lim})
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"audit": views(au, auditView)})
}

func (a *API) listManifests(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	ms, err := a.st.ListManifests(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"manifests": views(ms, manifestInfo)})
}

func (a *API) postManifest(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	body, ok := readLimited(w, r, wire.MaxManifestSize)
	if !ok {
		return
	}
	m, err := a.s.RegisterManifestAs(r.Context(), body, who.Name)
	if errors.Is(err, server.ErrAlreadyRegistered) {
		writeJSON(w, http.StatusOK, map[string]any{"product": m.Product, "version": m.Version, "root": hex.EncodeToString(m.Root), "already_registered": true})
		return
	}
	if err != nil {
		reason := server.Reason(err)
		code := http.StatusBadRequest
		if reason == wire.ErrDowngrade.Error() {
			code = http.StatusConflict
		}
		apiError(w, code, reason, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"product": m.Product, "version": m.Version, "root": hex.EncodeToString(m.Root)})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	ts, err := a.st.ListAPITokens(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": views(ts, apiTokenView)})
}

type tokenReq struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

func (a *API) postToken(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	var req tokenReq
	if !decodeBody(w, r, &req) {
		return
	}
	secret, err := a.s.CreateAPIToken(r.Context(), req.Name, req.Role, who.Name)
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, map[string]any{"name": req.Name, "role": req.Role, "token": secret})
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	name := r.PathValue("name")
	if err := a.s.DeleteAPIToken(r.Context(), name, who.Name); err != nil {
		storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
