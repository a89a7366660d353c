// Package provider implements a small Terraform provider for Keycloak whose
// resource and attribute names are a compatible subset of the official
// keycloak/keycloak provider.
package provider

import (
	"context"
	"os"
	"strconv"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var _ provider.Provider = (*keycloakProvider)(nil)

type keycloakProvider struct {
	version string
}

// New returns a constructor for the provider, as providerserver expects.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &keycloakProvider{version: version} }
}

type providerModel struct {
	URL                   types.String `tfsdk:"url"`
	BasePath              types.String `tfsdk:"base_path"`
	Realm                 types.String `tfsdk:"realm"`
	ClientID              types.String `tfsdk:"client_id"`
	ClientSecret          types.String `tfsdk:"client_secret"`
	Username              types.String `tfsdk:"username"`
	Password              types.String `tfsdk:"password"`
	RootCACertificate     types.String `tfsdk:"root_ca_certificate"`
	TLSInsecureSkipVerify types.Bool   `tfsdk:"tls_insecure_skip_verify"`
	ClientTimeout         types.Int64  `tfsdk:"client_timeout"`
}

func (p *keycloakProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "keycloak"
	resp.Version = p.version
}

func (p *keycloakProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manages Keycloak through its admin REST API. Arguments fall back to the environment variable named in their description, as in the official provider.",
		Attributes: map[string]schema.Attribute{
			"url": schema.StringAttribute{
				Optional:    true,
				Description: "Base URL of Keycloak, e.g. https://keycloak.example:8443 (KEYCLOAK_URL).",
			},
			"base_path": schema.StringAttribute{
				Optional:    true,
				Description: "Path prefix of the API, \"/auth\" for the legacy WildFly distribution (KEYCLOAK_BASE_PATH). Default empty.",
			},
			"realm": schema.StringAttribute{
				Optional:    true,
				Description: "Realm to log in to (KEYCLOAK_REALM). Default \"master\".",
			},
			"client_id": schema.StringAttribute{
				Optional:    true,
				Description: "Client used to log in, e.g. admin-cli (KEYCLOAK_CLIENT_ID).",
			},
			"client_secret": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Client secret; without username this selects the client_credentials grant (KEYCLOAK_CLIENT_SECRET).",
			},
			"username": schema.StringAttribute{
				Optional:    true,
				Description: "User for the password grant (KEYCLOAK_USER).",
			},
			"password": schema.StringAttribute{
				Optional:    true,
				Sensitive:   true,
				Description: "Password for the password grant (KEYCLOAK_PASSWORD).",
			},
			"root_ca_certificate": schema.StringAttribute{
				Optional:    true,
				Description: "PEM CA certificate(s) used as the only trust roots for HTTPS instead of the system roots.",
			},
			"tls_insecure_skip_verify": schema.BoolAttribute{
				Optional:    true,
				Description: "Skip TLS certificate verification. Dangerous; for local tests only. Default false.",
			},
			"client_timeout": schema.Int64Attribute{
				Optional:    true,
				Description: "HTTP timeout in seconds (KEYCLOAK_CLIENT_TIMEOUT). Default 15.",
			},
		},
	}
}

func (p *keycloakProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	str := func(name string, v types.String, env string) string {
		if v.IsUnknown() {
			resp.Diagnostics.AddAttributeError(path.Root(name), "Unknown provider argument",
				"The keycloak provider needs "+name+" to be known at plan time.")
			return ""
		}
		if !v.IsNull() || env == "" {
			return v.ValueString()
		}
		return os.Getenv(env)
	}

	c := keycloak.Config{
		URL:               str("url", cfg.URL, "KEYCLOAK_URL"),
		BasePath:          str("base_path", cfg.BasePath, "KEYCLOAK_BASE_PATH"),
		Realm:             str("realm", cfg.Realm, "KEYCLOAK_REALM"),
		ClientID:          str("client_id", cfg.ClientID, "KEYCLOAK_CLIENT_ID"),
		ClientSecret:      str("client_secret", cfg.ClientSecret, "KEYCLOAK_CLIENT_SECRET"),
		Username:          str("username", cfg.Username, "KEYCLOAK_USER"),
		Password:          str("password", cfg.Password, "KEYCLOAK_PASSWORD"),
		RootCACertificate: str("root_ca_certificate", cfg.RootCACertificate, ""),
		UserAgent:         "terraform-provider-keycloak-zerotrust/" + p.version,
	}

	switch {
	case cfg.TLSInsecureSkipVerify.IsUnknown():
		resp.Diagnostics.AddAttributeError(path.Root("tls_insecure_skip_verify"), "Unknown provider argument",
			"The keycloak provider needs tls_insecure_skip_verify to be known at plan time.")
	case !cfg.TLSInsecureSkipVerify.IsNull():
		c.TLSInsecureSkipVerify = cfg.TLSInsecureSkipVerify.ValueBool()
	}

	c.Timeout = 15 * time.Second
	switch {
	case cfg.ClientTimeout.IsUnknown():
		resp.Diagnostics.AddAttributeError(path.Root("client_timeout"), "Unknown provider argument",
			"The keycloak provider needs client_timeout to be known at plan time.")
	case !cfg.ClientTimeout.IsNull():
		c.Timeout = time.Duration(cfg.ClientTimeout.ValueInt64()) * time.Second
	case os.Getenv("KEYCLOAK_CLIENT_TIMEOUT") != "":
		secs, err := strconv.Atoi(os.Getenv("KEYCLOAK_CLIENT_TIMEOUT"))
		if err != nil {
			resp.Diagnostics.AddError("Invalid KEYCLOAK_CLIENT_TIMEOUT", err.Error())
		}
		c.Timeout = time.Duration(secs) * time.Second
	}
	if resp.Diagnostics.HasError() {
		return
	}

	client, err := keycloak.NewClient(c)
	if err != nil {
		resp.Diagnostics.AddError("Invalid keycloak provider configuration", err.Error())
		return
	}
	resp.ResourceData = client
	resp.DataSourceData = client
}

func (p *keycloakProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newRealmResource,
		newRealmKeystoreRSAGeneratedResource,
		newOpenIDClientResource,
		newRoleResource,
		newAudienceMapperResource,
		newHardcodedClaimMapperResource,
		newServiceAccountRealmRoleResource,
		newServiceAccountClientRoleResource,
	}
}

func (p *keycloakProvider) DataSources(context.Context) []func() datasource.DataSource {
	return nil
}
