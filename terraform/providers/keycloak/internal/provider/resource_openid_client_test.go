package provider

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// --- helpers -------------------------------------------------------------

func clientSchema(t *testing.T) schema.Schema {
	t.Helper()
	var resp resource.SchemaResponse
	(&openIDClientResource{}).Schema(context.Background(), resource.SchemaRequest{}, &resp)
	noErrors(t, "schema", resp.Diagnostics)
	return resp.Schema
}

func noErrors(t *testing.T, what string, diags diag.Diagnostics) {
	t.Helper()
	if diags.HasError() {
		t.Fatalf("%s: %v", what, diags)
	}
}

func nullRaw(s schema.Schema) tftypes.Value {
	return tftypes.NewValue(s.Type().TerraformType(context.Background()), nil)
}

func stateOf(t *testing.T, s schema.Schema, m openIDClientModel) tfsdk.State {
	t.Helper()
	st := tfsdk.State{Schema: s, Raw: nullRaw(s)}
	noErrors(t, "state", st.Set(context.Background(), &m))
	return st
}

func planOf(t *testing.T, s schema.Schema, m openIDClientModel) tfsdk.Plan {
	t.Helper()
	st := stateOf(t, s, m)
	return tfsdk.Plan{Schema: s, Raw: st.Raw}
}

func configOf(t *testing.T, s schema.Schema, m openIDClientModel) tfsdk.Config {
	t.Helper()
	st := stateOf(t, s, m)
	return tfsdk.Config{Schema: s, Raw: st.Raw}
}

func modelOf(t *testing.T, st tfsdk.State) openIDClientModel {
	t.Helper()
	var m openIDClientModel
	noErrors(t, "state get", st.Get(context.Background(), &m))
	return m
}

func strMap(kv ...string) types.Map {
	elems := map[string]attr.Value{}
	for i := 0; i < len(kv); i += 2 {
		elems[kv[i]] = types.StringValue(kv[i+1])
	}
	return types.MapValueMust(types.StringType, elems)
}

// workloadConfig is a workload client as terraform/identity configures it
// for RFC 8705: client-x509 with a subject DN and certificate-bound tokens.
func workloadConfig() openIDClientModel {
	return openIDClientModel{
		ID:                        types.StringNull(),
		RealmID:                   types.StringValue("zt"),
		ClientID:                  types.StringValue("python-client"),
		Name:                      types.StringValue("Workload python-client"),
		Description:               types.StringNull(),
		Enabled:                   types.BoolValue(true),
		AccessType:                types.StringValue(accessConfidential),
		ClientSecret:              types.StringNull(),
		ClientAuthenticatorType:   types.StringValue(authClientX509),
		StandardFlowEnabled:       types.BoolValue(false),
		ImplicitFlowEnabled:       types.BoolValue(false),
		DirectAccessGrantsEnabled: types.BoolValue(false),
		ServiceAccountsEnabled:    types.BoolValue(true),
		ValidRedirectURIs:         types.SetNull(types.StringType),
		WebOrigins:                types.SetNull(types.StringType),
		FullScopeAllowed:          types.BoolValue(true),
		ConsentRequired:           types.BoolValue(false),
		FrontchannelLogoutEnabled: types.BoolValue(false),
		AccessTokenLifespan:       types.StringNull(),
		ExtraConfig: strMap(
			"x509.subjectdn", "CN=python-client",
			"x509.allow.regex.pattern.comparison", "false",
			"tls.client.certificate.bound.access.tokens", "true",
		),
		ServiceAccountUserID: types.StringNull(),
	}
}

// apiConfig is the resource server: client-secret by default, no extra_config.
func apiConfig() openIDClientModel {
	m := workloadConfig()
	m.ClientID = types.StringValue("zerotrust-api")
	m.Name = types.StringValue("API")
	m.ClientAuthenticatorType = types.StringValue(authClientSecret) // the schema default
	m.ServiceAccountsEnabled = types.BoolValue(false)
	m.ExtraConfig = types.MapNull(types.StringType)
	return m
}

// planFor runs ModifyPlan like Terraform does for a plan: computed values
// not in the configuration start unknown on create, or from state (through
// UseStateForUnknown) on update.
func planFor(t *testing.T, r *openIDClientResource, s schema.Schema, config openIDClientModel, prior *openIDClientModel) tfsdk.Plan {
	t.Helper()
	ctx := context.Background()
	planned := config
	state := tfsdk.State{Schema: s, Raw: nullRaw(s)}
	if prior == nil {
		planned.ID = types.StringUnknown()
		planned.ServiceAccountUserID = types.StringUnknown()
		if config.ClientSecret.IsNull() {
			planned.ClientSecret = types.StringUnknown()
		}
	} else {
		planned.ID = prior.ID
		planned.ServiceAccountUserID = prior.ServiceAccountUserID
		if config.ClientSecret.IsNull() {
			planned.ClientSecret = prior.ClientSecret
		}
		state = stateOf(t, s, *prior)
	}
	req := resource.ModifyPlanRequest{Config: configOf(t, s, config), Plan: planOf(t, s, planned), State: state}
	resp := resource.ModifyPlanResponse{Plan: req.Plan}
	r.ModifyPlan(ctx, req, &resp)
	noErrors(t, "ModifyPlan", resp.Diagnostics)
	return resp.Plan
}

func plannedModel(t *testing.T, p tfsdk.Plan) openIDClientModel {
	t.Helper()
	var m openIDClientModel
	noErrors(t, "plan get", p.Get(context.Background(), &m))
	return m
}

// assertConsistent is Terraform's check after apply: every value known in
// the plan must be in the new state unchanged.
func assertConsistent(t *testing.T, plan tfsdk.Plan, state tfsdk.State) {
	t.Helper()
	var planned, applied map[string]tftypes.Value
	if err := plan.Raw.As(&planned); err != nil {
		t.Fatal(err)
	}
	if err := state.Raw.As(&applied); err != nil {
		t.Fatal(err)
	}
	for name, pv := range planned {
		if pv.IsFullyKnown() && !pv.Equal(applied[name]) {
			t.Errorf("inconsistent result after apply: %s planned %s, got %s", name, pv, applied[name])
		}
	}
}

func create(t *testing.T, r *openIDClientResource, s schema.Schema, plan tfsdk.Plan) tfsdk.State {
	t.Helper()
	resp := resource.CreateResponse{State: tfsdk.State{Schema: s, Raw: nullRaw(s)}}
	r.Create(context.Background(), resource.CreateRequest{Plan: plan}, &resp)
	noErrors(t, "Create", resp.Diagnostics)
	assertConsistent(t, plan, resp.State)
	return resp.State
}

func update(t *testing.T, r *openIDClientResource, s schema.Schema, plan tfsdk.Plan, prior tfsdk.State) tfsdk.State {
	t.Helper()
	resp := resource.UpdateResponse{State: tfsdk.State{Schema: s, Raw: nullRaw(s)}}
	r.Update(context.Background(), resource.UpdateRequest{Plan: plan, State: prior}, &resp)
	noErrors(t, "Update", resp.Diagnostics)
	assertConsistent(t, plan, resp.State)
	return resp.State
}

func refresh(t *testing.T, r *openIDClientResource, s schema.Schema, prior tfsdk.State) tfsdk.State {
	t.Helper()
	resp := resource.ReadResponse{State: prior}
	r.Read(context.Background(), resource.ReadRequest{State: prior}, &resp)
	noErrors(t, "Read", resp.Diagnostics)
	return resp.State
}

// assertNoChanges checks that a refresh leaves state as it is and that the
// next plan (from the same configuration) equals that state.
func assertNoChanges(t *testing.T, r *openIDClientResource, s schema.Schema, config openIDClientModel, st tfsdk.State) {
	t.Helper()
	refreshed := refresh(t, r, s, st)
	if !refreshed.Raw.Equal(st.Raw) {
		t.Errorf("refresh changed state:\n before %s\n after  %s", st.Raw, refreshed.Raw)
	}
	prior := modelOf(t, refreshed)
	next := planFor(t, r, s, config, &prior)
	if !next.Raw.Equal(refreshed.Raw) {
		t.Errorf("plan after apply is not empty:\n state %s\n plan  %s", refreshed.Raw, next.Raw)
	}
}

// --- representation mapping ---------------------------------------------

func TestToAPIMapsAuthenticatorAndExtraConfig(t *testing.T) {
	ctx := context.Background()
	r := &openIDClientResource{}
	m := workloadConfig()
	m.ClientSecret = types.StringValue("must-not-be-sent") // ValidateConfig refuses this; toAPI must not send it either
	m.AccessTokenLifespan = types.StringValue("300")
	rep, diags := r.toAPI(ctx, &m, strMap("x509.subjectdn", "CN=old", "removed.key", "x"))
	noErrors(t, "toAPI", diags)

	if rep.ClientAuthenticatorType != authClientX509 {
		t.Errorf("clientAuthenticatorType = %q, want %q", rep.ClientAuthenticatorType, authClientX509)
	}
	if rep.Secret != nil {
		t.Errorf("secret sent for client-x509: %q", *rep.Secret)
	}
	want := map[string]string{
		"x509.subjectdn":                             "CN=python-client",
		"x509.allow.regex.pattern.comparison":        "false",
		"tls.client.certificate.bound.access.tokens": "true",
		attrAccessTokenLifespan:                      "300",
		"removed.key":                                "", // removed from extra_config: Keycloak deletes it
	}
	if len(rep.Attributes) != len(want) {
		t.Errorf("attributes = %v, want %v", rep.Attributes, want)
	}
	for k, v := range want {
		if got, ok := rep.Attributes[k]; !ok || got != v {
			t.Errorf("attributes[%q] = %q (present %v), want %q", k, got, ok, v)
		}
	}

	// client-secret keeps today's behaviour: the secret in plan is sent.
	api := apiConfig()
	api.ClientSecret = types.StringValue("s3cr3t")
	rep, diags = r.toAPI(ctx, &api, types.MapNull(types.StringType))
	noErrors(t, "toAPI", diags)
	if rep.ClientAuthenticatorType != authClientSecret || rep.Secret == nil || *rep.Secret != "s3cr3t" {
		t.Errorf("client-secret client: type %q, secret %v", rep.ClientAuthenticatorType, rep.Secret)
	}
	if len(rep.Attributes) != 1 {
		t.Errorf("no extra_config: attributes = %v, want only %s", rep.Attributes, attrAccessTokenLifespan)
	}
}

func TestUsesSecret(t *testing.T) {
	for typ, want := range map[string]bool{
		authClientSecret: true, authClientSecretJWT: true, authClientJWT: false, authClientX509: false,
	} {
		if usesSecret(typ) != want {
			t.Errorf("usesSecret(%q) = %v, want %v", typ, !want, want)
		}
	}
}

// --- create / read / update against the fake Keycloak --------------------

func TestX509ClientSecretNeverRequestedOrStored(t *testing.T) {
	f, c := newFakeKeycloak(t)
	r := &openIDClientResource{clientHolder{client: c}}
	s := clientSchema(t)
	config := workloadConfig()

	plan := planFor(t, r, s, config, nil)
	if p := plannedModel(t, plan); !p.ClientSecret.IsNull() {
		t.Fatalf("planned client_secret = %s, want null", p.ClientSecret)
	}
	st := create(t, r, s, plan)

	post := f.last("POST")
	if post.Body["clientAuthenticatorType"] != authClientX509 {
		t.Errorf("POST clientAuthenticatorType = %v", post.Body["clientAuthenticatorType"])
	}
	if _, ok := post.Body["secret"]; ok {
		t.Errorf("POST sent a secret: %v", post.Body["secret"])
	}
	attrs, _ := post.Body["attributes"].(map[string]any)
	for k, v := range map[string]string{
		"x509.subjectdn": "CN=python-client", "x509.allow.regex.pattern.comparison": "false",
		"tls.client.certificate.bound.access.tokens": "true",
	} {
		if attrs[k] != v {
			t.Errorf("POST attributes[%q] = %v, want %q", k, attrs[k], v)
		}
	}

	m := modelOf(t, st)
	if !m.ClientSecret.IsNull() {
		t.Errorf("state client_secret = %s, want null", m.ClientSecret)
	}
	if m.ClientAuthenticatorType.ValueString() != authClientX509 {
		t.Errorf("state client_authenticator_type = %s", m.ClientAuthenticatorType)
	}
	if !m.ExtraConfig.Equal(config.ExtraConfig) {
		t.Errorf("state extra_config = %s, want exactly the configured %s (Keycloak's own attributes left out)", m.ExtraConfig, config.ExtraConfig)
	}
	if m.ServiceAccountUserID.ValueString() != "user-uuid-python-client" {
		t.Errorf("service_account_user_id = %s", m.ServiceAccountUserID)
	}
	if strings.Contains(st.Raw.String(), fakeSecret) {
		t.Error("the Keycloak secret reached the state")
	}

	assertNoChanges(t, r, s, config, st)
	for _, p := range f.paths() {
		if strings.HasSuffix(p, "/client-secret") {
			t.Errorf("the secret was requested: %s", p)
		}
	}
}

func TestClientSecretAuthenticatorKeepsSecret(t *testing.T) {
	f, c := newFakeKeycloak(t)
	r := &openIDClientResource{clientHolder{client: c}}
	s := clientSchema(t)
	config := apiConfig()

	plan := planFor(t, r, s, config, nil)
	if p := plannedModel(t, plan); !p.ClientSecret.IsUnknown() {
		t.Fatalf("planned client_secret = %s, want unknown (generated by Keycloak)", p.ClientSecret)
	}
	st := create(t, r, s, plan)
	m := modelOf(t, st)
	if m.ClientSecret.ValueString() != fakeSecret {
		t.Errorf("state client_secret = %s, want Keycloak's", m.ClientSecret)
	}
	if m.ClientAuthenticatorType.ValueString() != authClientSecret || !m.ExtraConfig.IsNull() {
		t.Errorf("client_authenticator_type = %s, extra_config = %s", m.ClientAuthenticatorType, m.ExtraConfig)
	}
	if !slices.Contains(f.paths(), "GET /admin/realms/zt/clients/uuid-zerotrust-api/client-secret") {
		t.Errorf("secret not read: %v", f.paths())
	}
	assertNoChanges(t, r, s, config, st)
}

func TestSwitchingAuthenticatorTypes(t *testing.T) {
	f, c := newFakeKeycloak(t)
	r := &openIDClientResource{clientHolder{client: c}}
	s := clientSchema(t)

	// An existing client-secret workload (today's state) ...
	config := workloadConfig()
	config.ClientAuthenticatorType = types.StringValue(authClientSecret)
	config.ExtraConfig = types.MapNull(types.StringType)
	st := create(t, r, s, planFor(t, r, s, config, nil))
	if modelOf(t, st).ClientSecret.ValueString() != fakeSecret {
		t.Fatal("setup: secret expected in state")
	}

	// ... moves to client-x509: the plan drops the secret, nothing sends or reads it.
	config = workloadConfig()
	prior := modelOf(t, st)
	plan := planFor(t, r, s, config, &prior)
	if p := plannedModel(t, plan); !p.ClientSecret.IsNull() {
		t.Fatalf("planned client_secret = %s, want null", p.ClientSecret)
	}
	f.reset()
	st = update(t, r, s, plan, st)
	put := f.last("PUT")
	if _, ok := put.Body["secret"]; ok || put.Body["clientAuthenticatorType"] != authClientX509 {
		t.Errorf("PUT secret present %v, clientAuthenticatorType %v", ok, put.Body["clientAuthenticatorType"])
	}
	for _, p := range f.paths() {
		if strings.HasSuffix(p, "/client-secret") {
			t.Errorf("the secret was requested: %s", p)
		}
	}
	if strings.Contains(st.Raw.String(), fakeSecret) {
		t.Error("the Keycloak secret stayed in state")
	}
	assertNoChanges(t, r, s, config, st)

	// And back: the plan may not promise null, the secret is read again.
	config.ClientAuthenticatorType = types.StringValue(authClientSecret)
	config.ExtraConfig = types.MapNull(types.StringType)
	prior = modelOf(t, st)
	plan = planFor(t, r, s, config, &prior)
	if p := plannedModel(t, plan); !p.ClientSecret.IsUnknown() {
		t.Fatalf("planned client_secret = %s, want unknown", p.ClientSecret)
	}
	st = update(t, r, s, plan, st)
	if modelOf(t, st).ClientSecret.ValueString() != fakeSecret {
		t.Error("secret not read back after switching to client-secret")
	}
	// extra_config went away: its keys were deleted in Keycloak.
	if _, ok := f.attributes("uuid-python-client")["x509.subjectdn"]; ok {
		t.Error("x509.subjectdn left in Keycloak after extra_config was removed")
	}
}

func TestExtraConfigKeyRemovalAndDrift(t *testing.T) {
	f, c := newFakeKeycloak(t)
	r := &openIDClientResource{clientHolder{client: c}}
	s := clientSchema(t)
	config := workloadConfig()
	config.ExtraConfig = strMap("x509.subjectdn", "CN=python-client", "custom.a", "1", "custom.b", "2")
	st := create(t, r, s, planFor(t, r, s, config, nil))

	config.ExtraConfig = strMap("x509.subjectdn", "CN=python-client", "custom.a", "1")
	prior := modelOf(t, st)
	f.reset()
	st = update(t, r, s, planFor(t, r, s, config, &prior), st)
	attrs, _ := f.last("PUT").Body["attributes"].(map[string]any)
	if v, ok := attrs["custom.b"]; !ok || v != "" {
		t.Errorf("PUT attributes[custom.b] = %v (present %v), want \"\"", v, ok)
	}
	if _, ok := f.attributes("uuid-python-client")["custom.b"]; ok {
		t.Error("custom.b not removed in Keycloak")
	}
	assertNoChanges(t, r, s, config, st)

	// Changed in Keycloak: the refresh shows Keycloak's value (drift), and
	// a deleted key disappears from state, so the plan puts both back.
	f.attributes("uuid-python-client")["x509.subjectdn"] = "CN=someone-else"
	delete(f.attributes("uuid-python-client"), "custom.a")
	got := modelOf(t, refresh(t, r, s, st)).ExtraConfig
	if want := strMap("x509.subjectdn", "CN=someone-else"); !got.Equal(want) {
		t.Errorf("refreshed extra_config = %s, want %s", got, want)
	}
}

func TestExtraConfigValueReadsOnlyConfiguredKeys(t *testing.T) {
	ctx := context.Background()
	keycloakAttrs := map[string]string{
		"x509.subjectdn":              "CN=python-client",
		"client.secret.creation.time": "1733097600",
		"access.token.lifespan":       "300",
	}
	for _, tc := range []struct {
		name  string
		prior types.Map
		want  types.Map
	}{
		{"null stays null (import, or not used)", types.MapNull(types.StringType), types.MapNull(types.StringType)},
		{"empty stays empty", strMap(), strMap()},
		{"only configured keys", strMap("x509.subjectdn", "CN=old"), strMap("x509.subjectdn", "CN=python-client")},
		{"absent key dropped (drift)", strMap("x509.subjectdn", "CN=python-client", "gone", "1"), strMap("x509.subjectdn", "CN=python-client")},
		{"\"\" means absent", strMap("gone", ""), strMap("gone", "")},
	} {
		var diags diag.Diagnostics
		got := extraConfigValue(ctx, tc.prior, keycloakAttrs, &diags)
		noErrors(t, tc.name, diags)
		if !got.Equal(tc.want) {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

// --- validation ----------------------------------------------------------

func TestExtraConfigRejectsDedicatedKeys(t *testing.T) {
	ctx := context.Background()
	for key, wantErr := range map[string]bool{
		attrAccessTokenLifespan:                      true,
		"pkce.code.challenge.method":                 true,
		"login_theme":                                true,
		"x509.subjectdn":                             false,
		"tls.client.certificate.bound.access.tokens": false,
	} {
		req := validator.MapRequest{Path: path.Root("extra_config"), ConfigValue: strMap(key, "v")}
		var resp validator.MapResponse
		extraConfigValidator{}.ValidateMap(ctx, req, &resp)
		if resp.Diagnostics.HasError() != wantErr {
			t.Errorf("extra_config key %q: error = %v, want %v", key, resp.Diagnostics.HasError(), wantErr)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	ctx := context.Background()
	s := clientSchema(t)
	r := &openIDClientResource{}
	validate := func(m openIDClientModel) diag.Diagnostics {
		var resp resource.ValidateConfigResponse
		r.ValidateConfig(ctx, resource.ValidateConfigRequest{Config: configOf(t, s, m)}, &resp)
		return resp.Diagnostics
	}

	if d := validate(workloadConfig()); d.HasError() || d.WarningsCount() != 0 {
		t.Errorf("workload config: %v", d)
	}
	withSecret := workloadConfig()
	withSecret.ClientSecret = types.StringValue("x")
	if !validate(withSecret).HasError() {
		t.Error("client_secret with client-x509 must be refused")
	}
	noDN := workloadConfig()
	noDN.ExtraConfig = types.MapNull(types.StringType)
	if d := validate(noDN); d.HasError() || d.WarningsCount() != 1 {
		t.Errorf("client-x509 without x509.subjectdn: want one warning, got %v", d)
	}
	api := apiConfig()
	api.ClientSecret = types.StringValue("x")
	if d := validate(api); d.HasError() {
		t.Errorf("client_secret with client-secret: %v", d)
	}
}

func TestSchemaMatchesOfficialNames(t *testing.T) {
	s := clientSchema(t)
	auth, ok := s.Attributes["client_authenticator_type"].(schema.StringAttribute)
	if !ok || !auth.Optional || !auth.Computed || auth.Default == nil {
		t.Errorf("client_authenticator_type: want an optional string with a default, got %#v", s.Attributes["client_authenticator_type"])
	}
	extra, ok := s.Attributes["extra_config"].(schema.MapAttribute)
	if !ok || !extra.Optional || extra.Computed || !extra.ElementType.Equal(types.StringType) {
		t.Errorf("extra_config: want an optional, not computed map of string, got %#v", s.Attributes["extra_config"])
	}
	secret, ok := s.Attributes["client_secret"].(schema.StringAttribute)
	if !ok || !secret.Sensitive {
		t.Error("client_secret must stay sensitive")
	}
}
