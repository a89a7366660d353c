// Package keycloak is a small client for the Keycloak admin REST API: it
// logs in with the password or client_credentials grant, keeps the admin
// token fresh and turns non-2xx answers into errors that carry the HTTP
// status and Keycloak's error body.
package keycloak

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config holds what the provider block supplies.
type Config struct {
	URL                   string
	BasePath              string
	Realm                 string
	ClientID              string
	ClientSecret          string
	Username              string
	Password              string
	RootCACertificate     string // PEM; when set it is the only trust root
	TLSInsecureSkipVerify bool
	Timeout               time.Duration
	UserAgent             string
}

// Client talks to one Keycloak server. It is safe for concurrent use.
type Client struct {
	cfg     Config
	baseURL string
	http    *http.Client

	mu        sync.Mutex
	token     string
	expiresAt time.Time
}

// APIError is returned for any non-2xx answer from Keycloak.
type APIError struct {
	Method string
	Path   string
	Status int
	Body   string
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("keycloak: %s %s: HTTP %d %s", e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// IsNotFound reports whether err is a Keycloak 404.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}

// NewClient validates cfg and builds the HTTP client. It does not log in:
// the first API call does, so a provider block may point at a Keycloak that
// does not exist yet at plan time.
func NewClient(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("keycloak: url is required")
	}
	if cfg.ClientID == "" {
		return nil, errors.New("keycloak: client_id is required")
	}
	if cfg.Username == "" && cfg.ClientSecret == "" {
		return nil, errors.New("keycloak: set username and password (password grant) or client_secret (client_credentials grant)")
	}
	if cfg.Username != "" && cfg.Password == "" {
		return nil, errors.New("keycloak: password is required when username is set")
	}
	if cfg.Realm == "" {
		cfg.Realm = "master"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}

	tlsConfig := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: cfg.TLSInsecureSkipVerify, //nolint:gosec // opt-in, documented as dangerous
	}
	if cfg.RootCACertificate != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(cfg.RootCACertificate)) {
			return nil, errors.New("keycloak: root_ca_certificate holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig

	base := strings.TrimRight(cfg.URL, "/")
	if cfg.BasePath != "" {
		base += "/" + strings.Trim(cfg.BasePath, "/")
	}
	return &Client{
		cfg:     cfg,
		baseURL: base,
		http:    &http.Client{Transport: transport, Timeout: cfg.Timeout},
	}, nil
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// accessToken returns a valid admin token, logging in again when the
// current one is missing or about to expire.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.expiresAt) {
		return c.token, nil
	}

	form := url.Values{"client_id": {c.cfg.ClientID}}
	who := "client " + c.cfg.ClientID
	if c.cfg.Username != "" {
		form.Set("grant_type", "password")
		form.Set("username", c.cfg.Username)
		form.Set("password", c.cfg.Password)
		who = "user " + c.cfg.Username
	} else {
		form.Set("grant_type", "client_credentials")
	}
	if c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret)
	}

	path := "/realms/" + url.PathEscape(c.cfg.Realm) + "/protocol/openid-connect/token"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	c.setUserAgent(req)

	started := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("keycloak: login as %s to realm %q: %w", who, c.cfg.Realm, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("keycloak: login as %s to realm %q failed: POST %s: HTTP %d %s: %s", who, c.cfg.Realm,
			path, resp.StatusCode, http.StatusText(resp.StatusCode), trimBody(body))
	}
	var tok tokenResponse
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("keycloak: login as %s to realm %q: token endpoint answered without an access_token", who, c.cfg.Realm)
	}

	// Renew a little before Keycloak would reject the token.
	lifetime := time.Duration(tok.ExpiresIn) * time.Second
	margin := min(lifetime/5, 15*time.Second)
	c.token = tok.AccessToken
	c.expiresAt = started.Add(lifetime - margin)
	return c.token, nil
}

func (c *Client) forgetToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

func (c *Client) setUserAgent(req *http.Request) {
	if c.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", c.cfg.UserAgent)
	}
}

// do sends one admin API request. body (if not nil) is sent as JSON, a JSON
// answer is decoded into out (if not nil). A 401 triggers one fresh login
// and one retry.
func (c *Client) do(ctx context.Context, method, path string, body, out any) (http.Header, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("keycloak: encoding %s %s: %w", method, path, err)
		}
	}

	for attempt := 0; ; attempt++ {
		token, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", "application/json")
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		c.setUserAgent(req)

		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("keycloak: %s %s: %w", method, path, err)
		}
		respBody, readErr := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
		resp.Body.Close()
		if readErr != nil {
			return nil, fmt.Errorf("keycloak: %s %s: reading answer: %w", method, path, readErr)
		}

		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			c.forgetToken(token)
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return nil, &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: trimBody(respBody)}
		}
		if out != nil && len(respBody) > 0 {
			if err := json.Unmarshal(respBody, out); err != nil {
				return nil, fmt.Errorf("keycloak: %s %s: decoding answer: %w", method, path, err)
			}
		}
		return resp.Header, nil
	}
}

// Get decodes the JSON answer of GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	_, err := c.do(ctx, http.MethodGet, path, nil, out)
	return err
}

// Post sends body and returns the last segment of the Location header
// (the new object's id), which is empty when Keycloak sent none.
func (c *Client) Post(ctx context.Context, path string, body any) (string, error) {
	header, err := c.do(ctx, http.MethodPost, path, body, nil)
	if err != nil {
		return "", err
	}
	loc := header.Get("Location")
	if loc == "" {
		return "", nil
	}
	id := loc[strings.LastIndex(loc, "/")+1:]
	if unescaped, err := url.PathUnescape(id); err == nil {
		id = unescaped
	}
	return id, nil
}

// Put sends body with PUT.
func (c *Client) Put(ctx context.Context, path string, body any) error {
	_, err := c.do(ctx, http.MethodPut, path, body, nil)
	return err
}

// Delete sends DELETE, with an optional JSON body (role mappings need one).
func (c *Client) Delete(ctx context.Context, path string, body any) error {
	_, err := c.do(ctx, http.MethodDelete, path, body, nil)
	return err
}

// Path builds an admin API path from raw segments, escaping each one:
// Path("realms", "r", "clients") == "/admin/realms/r/clients".
func Path(segments ...string) string {
	var b strings.Builder
	b.WriteString("/admin")
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func trimBody(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > 2048 {
		s = s[:2048] + "…"
	}
	return s
}
