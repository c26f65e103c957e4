package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"testing"
)

// A known path asked with a method it does not serve answers 405 with an Allow header,
// before any token check; an unknown path without a token is still 401.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	cases := []struct{ method, path, allow string }{
		{"DELETE", "/api/v1/devices", "GET, HEAD, POST"},
		{"PUT", "/api/v1/manifests", "GET, HEAD, POST"},
		{"GET", "/v1/reports", "POST"},
		{"POST", "/api/openapi.json", "GET, HEAD"},
		{"GET", "/api/v1/tokens/someone", "DELETE"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, e.base+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q, want 405 Allow %q (%s)", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), tc.allow, body)
		}
		var apiErr struct{ Error string }
		if json.Unmarshal(body, &apiErr) != nil || apiErr.Error != "method-not-allowed" {
			t.Errorf("%s %s: body %s", tc.method, tc.path, body)
		}
	}
	if code := e.api("GET", "/api/v1/nothing-here", "", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("unknown path without a token: %d, want 401", code)
	}
}

// Standard OpenAPI tooling fetches the document without a token and generates a client
// from it: every operation has a unique operationId.
func TestOpenAPIOpenAndOperationIDs(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if code := e.api("GET", "/api/openapi.json", "", nil, &doc); code != http.StatusOK {
		t.Fatalf("openapi.json without a token: %d", code)
	}
	seen := map[string]string{}
	ops := 0
	for path, methods := range doc.Paths {
		for m, op := range methods {
			ops++
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", m, path)
			} else if prev, dup := seen[op.OperationID]; dup {
				t.Errorf("operationId %s used by %s and %s %s", op.OperationID, prev, m, path)
			}
			seen[op.OperationID] = m + " " + path
		}
	}
	if ops < 20 {
		t.Fatalf("only %d operations in the document", ops)
	}
}

// Histogram bucket bounds print as people write them: le="0.00039", not
// le="0.00039199999999999994".
func TestMetricsBucketBoundsHaveNoFloatNoise(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("GET", e.base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+e.s.AdminToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	les := regexp.MustCompile(`fieldseal_[a-z_]+_bucket\{le="([^"]+)"\}`).FindAllStringSubmatch(string(body), -1)
	if len(les) < 30 {
		t.Fatalf("only %d bucket lines in /metrics", len(les))
	}
	noise := regexp.MustCompile(`[1-9]\d{5,}`) // six significant digits or more: 0.00039199999999999994
	for _, m := range les {
		if noise.MatchString(m[1]) {
			t.Errorf("bucket bound %s carries float noise", m[1])
		}
	}
}
