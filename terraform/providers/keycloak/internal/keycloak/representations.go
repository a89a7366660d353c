package keycloak

import "encoding/json"

// The representations below carry only the fields this provider manages.
// Keycloak's update endpoints for realms, clients and components leave
// fields that are absent (null) in the request untouched, so pointer fields
// with omitempty mean "not managed here".

// Realm is a RealmRepresentation.
type Realm struct {
	ID                          string            `json:"id,omitempty"`
	Realm                       string            `json:"realm"`
	Enabled                     *bool             `json:"enabled,omitempty"`
	DisplayName                 *string           `json:"displayName,omitempty"`
	RegistrationAllowed         *bool             `json:"registrationAllowed,omitempty"`
	SSLRequired                 *string           `json:"sslRequired,omitempty"`
	AccessTokenLifespan         *int64            `json:"accessTokenLifespan,omitempty"`
	SSOSessionIdleTimeout       *int64            `json:"ssoSessionIdleTimeout,omitempty"`
	SSOSessionMaxLifespan       *int64            `json:"ssoSessionMaxLifespan,omitempty"`
	DefaultSignatureAlgorithm   *string           `json:"defaultSignatureAlgorithm,omitempty"`
	RevokeRefreshToken          *bool             `json:"revokeRefreshToken,omitempty"`
	BruteForceProtected         *bool             `json:"bruteForceProtected,omitempty"`
	PermanentLockout            *bool             `json:"permanentLockout,omitempty"`
	FailureFactor               *int64            `json:"failureFactor,omitempty"`
	WaitIncrementSeconds        *int64            `json:"waitIncrementSeconds,omitempty"`
	QuickLoginCheckMilliSeconds *int64            `json:"quickLoginCheckMilliSeconds,omitempty"`
	MinimumQuickLoginWait       *int64            `json:"minimumQuickLoginWaitSeconds,omitempty"`
	MaxFailureWaitSeconds       *int64            `json:"maxFailureWaitSeconds,omitempty"`
	MaxDeltaTimeSeconds         *int64            `json:"maxDeltaTimeSeconds,omitempty"`
	BrowserSecurityHeaders      map[string]string `json:"browserSecurityHeaders,omitempty"`
}

// OpenIDClient is a ClientRepresentation (OpenID Connect clients only).
type OpenIDClient struct {
	ID                        string            `json:"id,omitempty"`
	ClientID                  string            `json:"clientId"`
	Name                      *string           `json:"name,omitempty"`
	Description               *string           `json:"description,omitempty"`
	Enabled                   *bool             `json:"enabled,omitempty"`
	Protocol                  string            `json:"protocol,omitempty"`
	PublicClient              *bool             `json:"publicClient,omitempty"`
	BearerOnly                *bool             `json:"bearerOnly,omitempty"`
	ClientAuthenticatorType   string            `json:"clientAuthenticatorType,omitempty"`
	Secret                    *string           `json:"secret,omitempty"`
	StandardFlowEnabled       *bool             `json:"standardFlowEnabled,omitempty"`
	ImplicitFlowEnabled       *bool             `json:"implicitFlowEnabled,omitempty"`
	DirectAccessGrantsEnabled *bool             `json:"directAccessGrantsEnabled,omitempty"`
	ServiceAccountsEnabled    *bool             `json:"serviceAccountsEnabled,omitempty"`
	RedirectURIs              []string          `json:"redirectUris"`
	WebOrigins                []string          `json:"webOrigins"`
	FullScopeAllowed          *bool             `json:"fullScopeAllowed,omitempty"`
	ConsentRequired           *bool             `json:"consentRequired,omitempty"`
	FrontchannelLogout        *bool             `json:"frontchannelLogout,omitempty"`
	Attributes                map[string]string `json:"attributes,omitempty"`
}

// UnmarshalJSON decodes a ClientRepresentation but drops its "secret":
// Keycloak includes a confidential client's secret in every GET of the
// client, and the provider must not hold it for clients that do not
// authenticate with it (client-x509). The secret is read, where wanted, only
// from .../client-secret (Credential). Secret is for sending only.
func (c *OpenIDClient) UnmarshalJSON(data []byte) error {
	type plain OpenIDClient // no methods: no recursion
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	p.Secret = nil
	*c = OpenIDClient(p)
	return nil
}

// Credential is the answer of GET .../clients/{id}/client-secret.
type Credential struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// User is the part of a UserRepresentation this provider reads.
type User struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

// Role is a RoleRepresentation.
type Role struct {
	ID          string `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Composite   bool   `json:"composite,omitempty"`
	ClientRole  bool   `json:"clientRole,omitempty"`
	ContainerID string `json:"containerId,omitempty"`
}

// ProtocolMapper is a ProtocolMapperRepresentation. Keycloak replaces the
// whole config on update, so callers always send every key they manage.
type ProtocolMapper struct {
	ID             string            `json:"id,omitempty"`
	Name           string            `json:"name"`
	Protocol       string            `json:"protocol"`
	ProtocolMapper string            `json:"protocolMapper"`
	Config         map[string]string `json:"config"`
}

// Component is a ComponentRepresentation (used for key providers).
type Component struct {
	ID           string              `json:"id,omitempty"`
	Name         string              `json:"name"`
	ProviderID   string              `json:"providerId"`
	ProviderType string              `json:"providerType"`
	ParentID     string              `json:"parentId"`
	Config       map[string][]string `json:"config"`
}
