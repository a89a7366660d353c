package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure      = (*openIDClientResource)(nil)
	_ resource.ResourceWithImportState    = (*openIDClientResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*openIDClientResource)(nil)
	_ resource.ResourceWithValidateConfig = (*openIDClientResource)(nil)
)

const (
	accessConfidential = "CONFIDENTIAL"
	accessPublic       = "PUBLIC"
	accessBearerOnly   = "BEARER-ONLY"

	attrAccessTokenLifespan = "access.token.lifespan"

	// Client authenticators of a default Keycloak (clientAuthenticatorType).
	authClientSecret    = "client-secret"     // client_secret (basic or post)
	authClientSecretJWT = "client-secret-jwt" // JWT signed with the secret (HS256)
	authClientJWT       = "client-jwt"        // JWT signed with the client's private key
	authClientX509      = "client-x509"       // mutual TLS, RFC 8705 tls_client_auth

	attrX509SubjectDN = "x509.subjectdn"
)

// usesSecret reports whether a client authenticator type authenticates with
// the client secret. Only for those does the provider read the secret from
// Keycloak and keep it in state; for client-x509 and client-jwt the secret is
// never requested (Keycloak may still hold one internally) and state holds
// null.
func usesSecret(authenticatorType string) bool {
	return authenticatorType == authClientSecret || authenticatorType == authClientSecretJWT
}

type openIDClientResource struct{ clientHolder }

func newOpenIDClientResource() resource.Resource { return &openIDClientResource{} }

type openIDClientModel struct {
	ID                        types.String `tfsdk:"id"`
	RealmID                   types.String `tfsdk:"realm_id"`
	ClientID                  types.String `tfsdk:"client_id"`
	Name                      types.String `tfsdk:"name"`
	Description               types.String `tfsdk:"description"`
	Enabled                   types.Bool   `tfsdk:"enabled"`
	AccessType                types.String `tfsdk:"access_type"`
	ClientSecret              types.String `tfsdk:"client_secret"`
	ClientAuthenticatorType   types.String `tfsdk:"client_authenticator_type"`
	StandardFlowEnabled       types.Bool   `tfsdk:"standard_flow_enabled"`
	ImplicitFlowEnabled       types.Bool   `tfsdk:"implicit_flow_enabled"`
	DirectAccessGrantsEnabled types.Bool   `tfsdk:"direct_access_grants_enabled"`
	ServiceAccountsEnabled    types.Bool   `tfsdk:"service_accounts_enabled"`
	ValidRedirectURIs         types.Set    `tfsdk:"valid_redirect_uris"`
	WebOrigins                types.Set    `tfsdk:"web_origins"`
	FullScopeAllowed          types.Bool   `tfsdk:"full_scope_allowed"`
	ConsentRequired           types.Bool   `tfsdk:"consent_required"`
	FrontchannelLogoutEnabled types.Bool   `tfsdk:"frontchannel_logout_enabled"`
	AccessTokenLifespan       types.String `tfsdk:"access_token_lifespan"`
	ExtraConfig               types.Map    `tfsdk:"extra_config"`
	ServiceAccountUserID      types.String `tfsdk:"service_account_user_id"`
}

func (r *openIDClientResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_openid_client"
}

func (r *openIDClientResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	boolDefault := func(def bool, desc string) schema.BoolAttribute {
		return schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(def), Description: desc}
	}
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}

	resp.Schema = schema.Schema{
		Description: "An OpenID Connect client. Its id is Keycloak's internal client id (a UUID).",
		Attributes: map[string]schema.Attribute{
			"id":          schema.StringAttribute{Computed: true, PlanModifiers: keep},
			"realm_id":    schema.StringAttribute{Required: true, PlanModifiers: replace},
			"client_id":   schema.StringAttribute{Required: true, PlanModifiers: replace, Description: "The OAuth client_id."},
			"name":        schema.StringAttribute{Optional: true},
			"description": schema.StringAttribute{Optional: true},
			"enabled":     boolDefault(true, "Default true."),
			"access_type": schema.StringAttribute{
				Required:    true,
				Description: "CONFIDENTIAL, PUBLIC or BEARER-ONLY.",
				Validators:  []validator.String{stringvalidator.OneOf(accessConfidential, accessPublic, accessBearerOnly)},
			},
			"client_secret": schema.StringAttribute{
				Optional: true, Computed: true, Sensitive: true, PlanModifiers: keep,
				Description: "Secret of a CONFIDENTIAL or BEARER-ONLY client whose client_authenticator_type is " +
					"client-secret or client-secret-jwt; generated by Keycloak when not set. With client-x509 or " +
					"client-jwt it cannot be set and is never read from Keycloak: it stays null.",
			},
			"client_authenticator_type": schema.StringAttribute{
				Optional: true, Computed: true, Default: stringdefault.StaticString(authClientSecret),
				Description: "How the client authenticates: client-secret (default), client-secret-jwt, client-jwt " +
					"or client-x509 (mutual TLS; set extra_config \"x509.subjectdn\").",
				Validators: []validator.String{stringvalidator.OneOf(authClientSecret, authClientSecretJWT, authClientJWT, authClientX509)},
			},
			"standard_flow_enabled":        boolDefault(false, "Authorization code flow. Default false."),
			"implicit_flow_enabled":        boolDefault(false, "Implicit flow. Default false."),
			"direct_access_grants_enabled": boolDefault(false, "Resource owner password grant. Default false."),
			"service_accounts_enabled":     boolDefault(false, "Client credentials grant. Default false."),
			"valid_redirect_uris":          schema.SetAttribute{Optional: true, ElementType: types.StringType},
			"web_origins":                  schema.SetAttribute{Optional: true, ElementType: types.StringType},
			"full_scope_allowed":           boolDefault(true, "Put all of the user's roles in tokens. Default true."),
			"consent_required":             boolDefault(false, "Default false."),
			"frontchannel_logout_enabled":  boolDefault(false, "Default false."),
			"access_token_lifespan": schema.StringAttribute{
				Optional:    true,
				Description: "Access token lifespan in seconds, overriding the realm's.",
				Validators:  []validator.String{integerStringValidator{}},
			},
			"extra_config": schema.MapAttribute{
				Optional: true, ElementType: types.StringType,
				Description: "Further client attributes, merged into the client's attributes (e.g. x509.subjectdn, " +
					"tls.client.certificate.bound.access.tokens). Keys with a dedicated argument are refused; " +
					"a removed key is deleted in Keycloak; only the keys set here are read back.",
				Validators: []validator.Map{extraConfigValidator{}},
			},
			"service_account_user_id": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				Description: "Id of the service account user when service_accounts_enabled is true.",
			},
		},
	}
}

// ValidateConfig refuses a client_secret for an authenticator that does not
// use one, and warns when client-x509 has no subject DN to match.
func (r *openIDClientResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var config openIDClientModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	authType := config.ClientAuthenticatorType
	if authType.IsNull() || authType.IsUnknown() {
		return
	}
	if !usesSecret(authType.ValueString()) && !config.ClientSecret.IsNull() {
		resp.Diagnostics.AddAttributeError(path.Root("client_secret"), "client_secret not allowed",
			fmt.Sprintf("client_authenticator_type %q does not authenticate with a client secret; remove client_secret.", authType.ValueString()))
	}
	if authType.ValueString() == authClientX509 && !config.ExtraConfig.IsUnknown() {
		if _, ok := config.ExtraConfig.Elements()[attrX509SubjectDN]; !ok {
			resp.Diagnostics.AddAttributeWarning(extraConfigPath, "client-x509 without a subject DN",
				"Keycloak authenticates a client-x509 client by its certificate's subject DN: set extra_config \""+attrX509SubjectDN+"\" (and usually \"x509.allow.regex.pattern.comparison\" = \"false\").")
		}
	}
}

// ModifyPlan marks values that Keycloak derives as unknown when what they
// derive from changes, so the plan does not promise the old value, and plans
// client_secret as null for authenticators that use no secret.
func (r *openIDClientResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() { // destroy
		return
	}
	var plan, state, config openIDClientModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	creating := req.State.Raw.IsNull()
	if !creating {
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	secretPath := path.Root("client_secret")
	switch {
	case !config.ClientSecret.IsNull():
		// Set in the configuration: the plan already holds it.
	case plan.ClientAuthenticatorType.IsUnknown():
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, secretPath, types.StringUnknown())...)
	case !usesSecret(plan.ClientAuthenticatorType.ValueString()):
		// Never read, never stored.
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, secretPath, types.StringNull())...)
	case creating:
		// Unknown until Keycloak generates it.
	case !plan.AccessType.Equal(state.AccessType) || state.ClientSecret.IsNull():
		// A new access type, or an authenticator that now uses the secret
		// (state holds null, which UseStateForUnknown would have kept).
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, secretPath, types.StringUnknown())...)
	}

	if !creating && !plan.ServiceAccountsEnabled.Equal(state.ServiceAccountsEnabled) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("service_account_user_id"), types.StringUnknown())...)
	}
}

// toAPI builds the representation to send. prior is the extra_config in
// state (null on create): its keys that m no longer has are sent as "" so
// Keycloak deletes them.
func (r *openIDClientResource) toAPI(ctx context.Context, m *openIDClientModel, prior types.Map) (*keycloak.OpenIDClient, diag.Diagnostics) {
	var diags diag.Diagnostics
	public := m.AccessType.ValueString() == accessPublic
	bearerOnly := m.AccessType.ValueString() == accessBearerOnly
	authType := m.ClientAuthenticatorType.ValueString()
	if m.ClientAuthenticatorType.IsNull() || m.ClientAuthenticatorType.IsUnknown() {
		authType = authClientSecret
	}
	rep := &keycloak.OpenIDClient{
		ClientID:                  m.ClientID.ValueString(),
		Name:                      clearableString(m.Name),
		Description:               clearableString(m.Description),
		Enabled:                   boolPtr(m.Enabled),
		Protocol:                  "openid-connect",
		PublicClient:              &public,
		BearerOnly:                &bearerOnly,
		ClientAuthenticatorType:   authType,
		StandardFlowEnabled:       boolPtr(m.StandardFlowEnabled),
		ImplicitFlowEnabled:       boolPtr(m.ImplicitFlowEnabled),
		DirectAccessGrantsEnabled: boolPtr(m.DirectAccessGrantsEnabled),
		ServiceAccountsEnabled:    boolPtr(m.ServiceAccountsEnabled),
		RedirectURIs:              stringSlice(ctx, m.ValidRedirectURIs, &diags),
		WebOrigins:                stringSlice(ctx, m.WebOrigins, &diags),
		FullScopeAllowed:          boolPtr(m.FullScopeAllowed),
		ConsentRequired:           boolPtr(m.ConsentRequired),
		FrontchannelLogout:        boolPtr(m.FrontchannelLogoutEnabled),
		// Keycloak removes an attribute that is sent as "".
		Attributes: map[string]string{attrAccessTokenLifespan: m.AccessTokenLifespan.ValueString()},
	}
	mergeExtraConfig(ctx, rep.Attributes, m.ExtraConfig, prior, &diags)
	if !public && usesSecret(authType) {
		rep.Secret = stringPtr(m.ClientSecret)
	}
	return rep, diags
}

func accessTypeOf(rep *keycloak.OpenIDClient) string {
	switch {
	case rep.BearerOnly != nil && *rep.BearerOnly:
		return accessBearerOnly
	case rep.PublicClient != nil && *rep.PublicClient:
		return accessPublic
	default:
		return accessConfidential
	}
}

// read fetches the client, its secret (only for authenticators that use
// one) and its service account user. prior supplies what is read back
// only when configured (the plan after create/update, the state on refresh).
func (r *openIDClientResource) read(ctx context.Context, realm, id string, prior *openIDClientModel) (openIDClientModel, error) {
	var rep keycloak.OpenIDClient // never holds the secret: see OpenIDClient.UnmarshalJSON
	if err := r.client.Get(ctx, keycloak.Path("realms", realm, "clients", id), &rep); err != nil {
		return openIDClientModel{}, err
	}
	authType := rep.ClientAuthenticatorType
	if authType == "" {
		authType = authClientSecret
	}
	var diags diag.Diagnostics
	extraConfig := extraConfigValue(ctx, prior.ExtraConfig, rep.Attributes, &diags)
	if diags.HasError() {
		return openIDClientModel{}, fmt.Errorf("reading extra_config: %v", diags)
	}
	m := openIDClientModel{
		ID:                        types.StringValue(rep.ID),
		RealmID:                   types.StringValue(realm),
		ClientID:                  types.StringValue(rep.ClientID),
		Name:                      optionalString(prior.Name, derefString(rep.Name)),
		Description:               optionalString(prior.Description, derefString(rep.Description)),
		Enabled:                   derefBool(rep.Enabled),
		AccessType:                types.StringValue(accessTypeOf(&rep)),
		ClientAuthenticatorType:   types.StringValue(authType),
		StandardFlowEnabled:       derefBool(rep.StandardFlowEnabled),
		ImplicitFlowEnabled:       derefBool(rep.ImplicitFlowEnabled),
		DirectAccessGrantsEnabled: derefBool(rep.DirectAccessGrantsEnabled),
		ServiceAccountsEnabled:    derefBool(rep.ServiceAccountsEnabled),
		ValidRedirectURIs:         optionalStringSet(prior.ValidRedirectURIs, rep.RedirectURIs),
		WebOrigins:                optionalStringSet(prior.WebOrigins, rep.WebOrigins),
		FullScopeAllowed:          derefBool(rep.FullScopeAllowed),
		ConsentRequired:           derefBool(rep.ConsentRequired),
		FrontchannelLogoutEnabled: derefBool(rep.FrontchannelLogout),
		AccessTokenLifespan:       optionalString(types.StringNull(), rep.Attributes[attrAccessTokenLifespan]),
		ExtraConfig:               extraConfig,
		ClientSecret:              types.StringValue(""),
		ServiceAccountUserID:      types.StringValue(""),
	}

	switch {
	case !usesSecret(authType):
		// client-x509, client-jwt: the secret is never requested nor stored.
		m.ClientSecret = types.StringNull()
	case m.AccessType.ValueString() != accessPublic:
		var cred keycloak.Credential
		if err := r.client.Get(ctx, keycloak.Path("realms", realm, "clients", id, "client-secret"), &cred); err != nil {
			return openIDClientModel{}, err
		}
		m.ClientSecret = types.StringValue(cred.Value)
	}
	if m.ServiceAccountsEnabled.ValueBool() {
		var user keycloak.User
		if err := r.client.Get(ctx, keycloak.Path("realms", realm, "clients", id, "service-account-user"), &user); err != nil {
			return openIDClientModel{}, fmt.Errorf("looking up the service account user: %w", err)
		}
		m.ServiceAccountUserID = types.StringValue(user.ID)
	}
	return m, nil
}

func (r *openIDClientResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan openIDClientModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	rep, diags := r.toAPI(ctx, &plan, types.MapNull(types.StringType))
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm := plan.RealmID.ValueString()
	id, err := r.client.Post(ctx, keycloak.Path("realms", realm, "clients"), rep)
	if err != nil {
		resp.Diagnostics.AddError("Creating client "+rep.ClientID+" failed", err.Error())
		return
	}
	if id == "" {
		resp.Diagnostics.AddError("Creating client "+rep.ClientID+" failed", "Keycloak did not return the new client's location")
		return
	}
	state, err := r.read(ctx, realm, id, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading client after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *openIDClientResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior openIDClientModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, err := r.read(ctx, prior.RealmID.ValueString(), prior.ID.ValueString(), &prior)
	if err != nil {
		notFoundRemoves(ctx, err, resp, "client")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *openIDClientResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, prior openIDClientModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	rep, diags := r.toAPI(ctx, &plan, prior.ExtraConfig)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, id := plan.RealmID.ValueString(), plan.ID.ValueString()
	rep.ID = id
	if err := r.client.Put(ctx, keycloak.Path("realms", realm, "clients", id), rep); err != nil {
		resp.Diagnostics.AddError("Updating client "+rep.ClientID+" failed", err.Error())
		return
	}
	state, err := r.read(ctx, realm, id, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading client after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *openIDClientResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state openIDClientModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.Delete(ctx, keycloak.Path("realms", state.RealmID.ValueString(), "clients", state.ID.ValueString()), nil)
	if err != nil && !keycloak.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting client failed", err.Error())
	}
}

// ImportState takes "{realm}/{client internal id}".
func (r *openIDClientResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := splitImportID(req.ID, 2, "{realm}/{client internal id}")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[1])...)
}
