package keycloak

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestOpenIDClientDecodeDropsSecret(t *testing.T) {
	answer := `{"id":"u1","clientId":"python-client","clientAuthenticatorType":"client-x509",
		"secret":"kc-generated","attributes":{"x509.subjectdn":"CN=python-client"}}`
	var c OpenIDClient
	if err := json.Unmarshal([]byte(answer), &c); err != nil {
		t.Fatal(err)
	}
	if c.Secret != nil {
		t.Fatalf("decoded secret %q, want none", *c.Secret)
	}
	if c.ID != "u1" || c.ClientAuthenticatorType != "client-x509" || c.Attributes["x509.subjectdn"] != "CN=python-client" {
		t.Fatalf("other fields not decoded: %+v", c)
	}

	// Sending still carries a secret when one is set.
	s := "s3cr3t"
	out, err := json.Marshal(&OpenIDClient{ClientID: "api", Secret: &s})
	if err != nil || !strings.Contains(string(out), `"secret":"s3cr3t"`) {
		t.Fatalf("encoded %s, %v", out, err)
	}
	out, _ = json.Marshal(&OpenIDClient{ClientID: "wl", ClientAuthenticatorType: "client-x509"})
	if strings.Contains(string(out), `"secret"`) {
		t.Fatalf("encoded a secret without one: %s", out)
	}
}
