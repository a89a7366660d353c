package keycloak

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestPathEscapesSegments(t *testing.T) {
	got := Path("realms", "my realm", "roles", "a/b")
	if want := "/admin/realms/my%20realm/roles/a%2Fb"; got != want {
		t.Fatalf("Path() = %q, want %q", got, want)
	}
}

func TestNewClientValidation(t *testing.T) {
	base := Config{URL: "https://kc.example", ClientID: "admin-cli", Username: "admin", Password: "pw"}
	if _, err := NewClient(base); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	for name, mutate := range map[string]func(*Config){
		"no url":             func(c *Config) { c.URL = "" },
		"no credentials":     func(c *Config) { c.Username, c.Password = "", "" },
		"username only":      func(c *Config) { c.Password = "" },
		"root CA is not PEM": func(c *Config) { c.RootCACertificate = "not a certificate" },
	} {
		cfg := base
		mutate(&cfg)
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

// TestAgainstKeycloak runs against a real Keycloak when KEYCLOAK_URL,
// KEYCLOAK_USER and KEYCLOAK_PASSWORD are set (password grant, admin-cli,
// master realm). With KEYCLOAK_TEST_TOKEN_EXPIRY=1 it also waits for the
// admin token to expire (about a minute with Keycloak's defaults).
func TestAgainstKeycloak(t *testing.T) {
	url, user, password := os.Getenv("KEYCLOAK_URL"), os.Getenv("KEYCLOAK_USER"), os.Getenv("KEYCLOAK_PASSWORD")
	if url == "" || user == "" || password == "" {
		t.Skip("KEYCLOAK_URL, KEYCLOAK_USER and KEYCLOAK_PASSWORD are not set")
	}
	ctx := context.Background()
	c, err := NewClient(Config{URL: url, ClientID: "admin-cli", Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	var realm Realm
	if err := c.Get(ctx, Path("realms", "master"), &realm); err != nil || realm.Realm != "master" {
		t.Fatalf("GET master realm: %v (%q)", err, realm.Realm)
	}

	err = c.Get(ctx, Path("realms", "no-such-realm-for-this-test"), &realm)
	if !IsNotFound(err) {
		t.Fatalf("expected a 404 APIError, got %v", err)
	}

	// A token Keycloak rejects is replaced after one 401.
	c.mu.Lock()
	c.token = "not-a-valid-token"
	c.expiresAt = time.Now().Add(time.Hour)
	c.mu.Unlock()
	if err := c.Get(ctx, Path("realms", "master"), &realm); err != nil {
		t.Fatalf("request after a rejected token: %v", err)
	}

	bad, _ := NewClient(Config{URL: url, ClientID: "admin-cli", Username: user, Password: password + "-wrong"})
	err = bad.Get(ctx, Path("realms", "master"), &realm)
	if err == nil || !strings.Contains(err.Error(), "HTTP 401") || strings.Contains(err.Error(), password) {
		t.Fatalf("wrong password: want an HTTP 401 error without the password, got %v", err)
	}

	if os.Getenv("KEYCLOAK_TEST_TOKEN_EXPIRY") == "" {
		return
	}
	c.mu.Lock()
	first, renewAt := c.token, c.expiresAt
	c.mu.Unlock()
	t.Logf("waiting %s for the admin token to expire", time.Until(renewAt).Round(time.Second))
	time.Sleep(time.Until(renewAt) + time.Second)
	if err := c.Get(ctx, Path("realms", "master"), &realm); err != nil {
		t.Fatalf("request after token expiry: %v", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == first {
		t.Fatal("token was not renewed")
	}
}
