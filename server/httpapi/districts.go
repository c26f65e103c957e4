package httpapi

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fieldseal/fieldseal/analytics"
	"github.com/fieldseal/fieldseal/analytics/districts"
	"github.com/fieldseal/fieldseal/server"
	"github.com/fieldseal/fieldseal/store"
	"github.com/fieldseal/fieldseal/wire"
)

// DistrictView is a district as the API shows it.
type DistrictView struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Config  json.RawMessage `json:"config"`
	Updated time.Time       `json:"updated"`
	Members []MemberView    `json:"members"`
}

// MemberView is one meter's role in a district.
type MemberView struct {
	Device string `json:"device"`
	Role   string `json:"role"`
}

type districtReq struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
}

// maxMembersCSV bounds a members import (about 200,000 rows).
const maxMembersCSV = 8 << 20

func (a *API) districtView(r *http.Request, d *store.District) (*DistrictView, error) {
	ms, err := a.st.ListDistrictMembers(r.Context(), d.ID)
	if err != nil {
		return nil, err
	}
	v := &DistrictView{ID: d.ID, Name: d.Name, Config: json.RawMessage(d.Config), Updated: d.Updated, Members: []MemberView{}}
	for _, m := range ms {
		v.Members = append(v.Members, MemberView{Device: m.Dev, Role: m.Role})
	}
	return v, nil
}

func (a *API) listDistricts(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	ds, err := a.st.ListDistricts(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	out := []*DistrictView{}
	for i := range ds {
		v, err := a.districtView(r, &ds[i])
		if err != nil {
			storeError(w, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"districts": out})
}

func (a *API) getDistrict(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	d, err := a.st.GetDistrict(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	v, err := a.districtView(r, d)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// putDistrict creates or replaces a district's name and configuration (its members stay).
func (a *API) putDistrict(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "district id: "+err.Error())
		return
	}
	var req districtReq
	if !decodeBody(w, r, &req) {
		return
	}
	if len(req.Config) == 0 || string(req.Config) == "null" {
		req.Config = json.RawMessage("{}")
	}
	if _, err := districts.ParseConfig(id, req.Config); err != nil {
		storeError(w, err)
		return
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, req.Config); err != nil {
		apiError(w, http.StatusBadRequest, "invalid", "config: "+err.Error())
		return
	}
	if req.Name == "" {
		req.Name = id
	}
	d := store.District{ID: id, Name: req.Name, Config: compact.Bytes(), Updated: a.s.Now().UTC()}
	if err := a.st.PutDistrict(r.Context(), d); err != nil {
		storeError(w, err)
		return
	}
	a.s.AuditAdmin(r.Context(), who.Name, "district", "", "configured", map[string]any{"district": id, "config": json.RawMessage(d.Config)})
	v, err := a.districtView(r, &d)
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// ParseMembersCSV reads a members import: the header device,district,role then one row
// per meter; role is inlet, outlet, customer, or remove (take the device out of that
// district). Errors name the line.
func ParseMembersCSV(rd io.Reader) (set, remove []store.DistrictMember, err error) {
	cr := csv.NewReader(rd)
	cr.FieldsPerRecord = 3
	cr.TrimLeadingSpace = true
	head, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: members CSV: %v (want the header device,district,role)", server.ErrInput, err)
	}
	if strings.Join(head, ",") != "device,district,role" {
		return nil, nil, fmt.Errorf("%w: members CSV: header %q, want device,district,role", server.ErrInput, strings.Join(head, ","))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: members CSV: %v", server.ErrInput, err)
		}
		line, _ := cr.FieldPos(0)
		m := store.DistrictMember{Dev: strings.TrimSpace(rec[0]), District: strings.TrimSpace(rec[1]), Role: strings.TrimSpace(rec[2])}
		if err := checkID(m.Dev); err != nil {
			return nil, nil, fmt.Errorf("%w: members CSV line %d: device: %v", server.ErrInput, line, err)
		}
		if m.District == "" {
			return nil, nil, fmt.Errorf("%w: members CSV line %d: empty district", server.ErrInput, line)
		}
		if m.Role == "remove" {
			remove = append(remove, m)
			continue
		}
		if err := store.CheckRole(m.Role); err != nil {
			return nil, nil, fmt.Errorf("%w: members CSV line %d: %v (or remove)", server.ErrInput, line, err)
		}
		set = append(set, m)
	}
	return set, remove, nil
}

// importMembers applies a members CSV: every row is checked before any is applied.
func (a *API) importMembers(w http.ResponseWriter, r *http.Request, who *store.APIToken) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMembersCSV))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, server.ReasonOversize, fmt.Sprintf("members CSV: larger than %d bytes: split it", maxMembersCSV))
		return
	}
	set, remove, err := ParseMembersCSV(bytes.NewReader(body))
	if err != nil {
		storeError(w, err)
		return
	}
	for _, m := range append(set, remove...) {
		if _, err := a.st.GetDistrict(r.Context(), m.District); err != nil {
			storeError(w, fmt.Errorf("%w: create district %q first (PUT /api/v1/districts/%s)", err, m.District, m.District))
			return
		}
	}
	if err := a.st.SetDistrictMembers(r.Context(), set); err != nil {
		storeError(w, err)
		return
	}
	removed := 0
	for _, m := range remove {
		if err := a.st.RemoveDistrictMember(r.Context(), m.District, m.Dev); err == nil {
			removed++
		} else if !errors.Is(err, store.ErrNotFound) {
			storeError(w, err)
			return
		}
	}
	a.s.AuditAdmin(r.Context(), who.Name, "district-members", "", "imported", map[string]any{"set": len(set), "removed": removed})
	writeJSON(w, http.StatusOK, map[string]int{"set": len(set), "removed": removed})
}

func parseTimeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, fmt.Errorf("%w: %s=%q: want RFC 3339, e.g. 2026-11-01T00:00:00Z", server.ErrInput, name, v)
	}
	return t, nil
}

// getBalance answers a district's IWA balance over ?from=&to= (RFC 3339; default the
// latest refresh's period), as JSON or, with ?format=csv, the IWA table.
func (a *API) getBalance(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	from, err := parseTimeParam(r, "from")
	if err != nil {
		storeError(w, err)
		return
	}
	to, err := parseTimeParam(r, "to")
	if err != nil {
		storeError(w, err)
		return
	}
	if (from.IsZero()) != (to.IsZero()) || (!from.IsZero() && !to.After(from)) {
		apiError(w, http.StatusBadRequest, "invalid", "give both from and to, with to after from (or neither, for the latest refresh's period)")
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		apiError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("format=%q: want json or csv", format))
		return
	}
	b, err := a.s.DistrictBalance(r.Context(), r.PathValue("id"), from, to)
	if err != nil {
		storeError(w, err)
		return
	}
	if format == "csv" {
		var buf bytes.Buffer
		if err := analytics.WriteCSV(&buf, b); err != nil {
			storeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="balance-%s.csv"`, b.District))
		w.Write(buf.Bytes())
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// getInspection answers a district's latest refresh: inspection list, alarms, balance and
// the plot's series.
func (a *API) getInspection(w http.ResponseWriter, r *http.Request, _ *store.APIToken) {
	res, err := a.s.DistrictResult(r.Context(), r.PathValue("id"))
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// checkID accepts the ids fschain.md allows for devices (districts use the same rule, so
// they are safe in URLs and CSV): 1–64 of [A-Za-z0-9._:-].
func checkID(id string) error {
	if !wire.ValidDeviceID(id) {
		return fmt.Errorf("%q: 1–64 of [A-Za-z0-9._:-]", id)
	}
	return nil
}
