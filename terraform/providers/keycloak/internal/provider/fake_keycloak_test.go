package provider

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

// fakeSecret is what the fake Keycloak generates for every confidential
// client, and includes in each GET of the client as Keycloak does.
const fakeSecret = "kc-generated-secret-value"

type recordedRequest struct {
	Method string
	Path   string
	Body   map[string]any
}

// fakeKeycloak is a minimal, recording admin API for clients: the token
// endpoint, POST/GET/PUT of clients (attributes merged, "" removes one,
// Keycloak's own attributes added on create), .../client-secret and
// .../service-account-user.
type fakeKeycloak struct {
	t        *testing.T
	server   *httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
	clients  map[string]map[string]any
}

// keycloakOwnAttributes are attributes Keycloak sets on a new client by itself.
var keycloakOwnAttributes = map[string]string{
	"client.secret.creation.time":               "1733097600",
	"backchannel.logout.session.required":       "true",
	"oauth2.device.authorization.grant.enabled": "false",
}

func newFakeKeycloak(t *testing.T) (*fakeKeycloak, *keycloak.Client) {
	t.Helper()
	f := &fakeKeycloak{t: t, clients: map[string]map[string]any{}}
	f.server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.server.Close)
	c, err := keycloak.NewClient(keycloak.Config{URL: f.server.URL, ClientID: "admin-cli", Username: "admin", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

func (f *fakeKeycloak) serve(w http.ResponseWriter, req *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := io.ReadAll(req.Body)
	rec := recordedRequest{Method: req.Method, Path: req.URL.EscapedPath()}
	if len(raw) > 0 && strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &rec.Body); err != nil {
			f.t.Errorf("%s %s: body is not a JSON object: %v", req.Method, req.URL.Path, err)
		}
	}
	if !strings.Contains(rec.Path, "/protocol/openid-connect/token") {
		f.requests = append(f.requests, rec)
	}

	parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/protocol/openid-connect/token"):
		reply(map[string]any{"access_token": "admin-token", "expires_in": 300})
	case len(parts) == 4 && parts[0] == "admin" && parts[3] == "clients" && req.Method == http.MethodPost:
		id := "uuid-" + rec.Body["clientId"].(string)
		c := map[string]any{"id": id}
		for k, v := range rec.Body {
			c[k] = v
		}
		if _, ok := c["secret"]; !ok {
			c["secret"] = fakeSecret
		}
		attrs := map[string]any{}
		for k, v := range keycloakOwnAttributes {
			attrs[k] = v
		}
		mergeAttributes(attrs, rec.Body["attributes"])
		c["attributes"] = attrs
		f.clients[id] = c
		w.Header().Set("Location", f.server.URL+"/admin/realms/"+parts[2]+"/clients/"+id)
		w.WriteHeader(http.StatusCreated)
	case len(parts) >= 5 && parts[3] == "clients":
		c, ok := f.clients[parts[4]]
		if !ok {
			http.Error(w, `{"error":"Could not find client"}`, http.StatusNotFound)
			return
		}
		switch {
		case len(parts) == 5 && req.Method == http.MethodGet:
			reply(c)
		case len(parts) == 5 && req.Method == http.MethodPut:
			for k, v := range rec.Body {
				if k != "attributes" {
					c[k] = v
				}
			}
			mergeAttributes(c["attributes"].(map[string]any), rec.Body["attributes"])
			w.WriteHeader(http.StatusNoContent)
		case len(parts) == 6 && parts[5] == "client-secret" && req.Method == http.MethodGet:
			reply(map[string]any{"type": "secret", "value": c["secret"]})
		case len(parts) == 6 && parts[5] == "service-account-user" && req.Method == http.MethodGet:
			reply(map[string]any{"id": "user-" + parts[4], "username": "service-account-" + c["clientId"].(string)})
		default:
			http.Error(w, "not implemented in the fake", http.StatusNotImplemented)
		}
	default:
		http.Error(w, "not implemented in the fake", http.StatusNotImplemented)
	}
}

// mergeAttributes applies sent attributes the way Keycloak does: a blank
// value removes the attribute, others are set, absent keys stay.
func mergeAttributes(dst map[string]any, sent any) {
	m, _ := sent.(map[string]any)
	for k, v := range m {
		if s, _ := v.(string); strings.TrimSpace(s) == "" {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

// paths lists the recorded requests as "METHOD path".
func (f *fakeKeycloak) paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.requests))
	for i, r := range f.requests {
		out[i] = r.Method + " " + r.Path
	}
	return out
}

// last returns the last recorded request with this method.
func (f *fakeKeycloak) last(method string) recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if f.requests[i].Method == method {
			return f.requests[i]
		}
	}
	f.t.Fatalf("no %s request was recorded", method)
	return recordedRequest{}
}

func (f *fakeKeycloak) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = nil
}

// attributes returns the stored attributes of a client.
func (f *fakeKeycloak) attributes(id string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clients[id]["attributes"].(map[string]any)
}
