package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure   = (*realmResource)(nil)
	_ resource.ResourceWithImportState = (*realmResource)(nil)
)

type realmResource struct{ clientHolder }

func newRealmResource() resource.Resource { return &realmResource{} }

type realmModel struct {
	ID                        types.String            `tfsdk:"id"`
	Realm                     types.String            `tfsdk:"realm"`
	Enabled                   types.Bool              `tfsdk:"enabled"`
	DisplayName               types.String            `tfsdk:"display_name"`
	RegistrationAllowed       types.Bool              `tfsdk:"registration_allowed"`
	SSLRequired               types.String            `tfsdk:"ssl_required"`
	AccessTokenLifespan       types.String            `tfsdk:"access_token_lifespan"`
	SSOSessionIdleTimeout     types.String            `tfsdk:"sso_session_idle_timeout"`
	SSOSessionMaxLifespan     types.String            `tfsdk:"sso_session_max_lifespan"`
	DefaultSignatureAlgorithm types.String            `tfsdk:"default_signature_algorithm"`
	RevokeRefreshToken        types.Bool              `tfsdk:"revoke_refresh_token"`
	SecurityDefenses          []securityDefensesModel `tfsdk:"security_defenses"`
}

type securityDefensesModel struct {
	Headers             []securityHeadersModel `tfsdk:"headers"`
	BruteForceDetection []bruteForceModel      `tfsdk:"brute_force_detection"`
}

type securityHeadersModel struct {
	XFrameOptions                   types.String `tfsdk:"x_frame_options"`
	ContentSecurityPolicy           types.String `tfsdk:"content_security_policy"`
	ContentSecurityPolicyReportOnly types.String `tfsdk:"content_security_policy_report_only"`
	XContentTypeOptions             types.String `tfsdk:"x_content_type_options"`
	XRobotsTag                      types.String `tfsdk:"x_robots_tag"`
	StrictTransportSecurity         types.String `tfsdk:"strict_transport_security"`
	ReferrerPolicy                  types.String `tfsdk:"referrer_policy"`
}

type bruteForceModel struct {
	PermanentLockout             types.Bool  `tfsdk:"permanent_lockout"`
	MaxLoginFailures             types.Int64 `tfsdk:"max_login_failures"`
	WaitIncrementSeconds         types.Int64 `tfsdk:"wait_increment_seconds"`
	QuickLoginCheckMilliSeconds  types.Int64 `tfsdk:"quick_login_check_milli_seconds"`
	MinimumQuickLoginWaitSeconds types.Int64 `tfsdk:"minimum_quick_login_wait_seconds"`
	MaxFailureWaitSeconds        types.Int64 `tfsdk:"max_failure_wait_seconds"`
	FailureResetTimeSeconds      types.Int64 `tfsdk:"failure_reset_time_seconds"`
}

// Keycloak's JSON keys for the headers block, in schema order.
var securityHeaderKeys = []struct{ attr, key, def string }{
	{"x_frame_options", "xFrameOptions", "SAMEORIGIN"},
	{"content_security_policy", "contentSecurityPolicy", "frame-src 'self'; frame-ancestors 'self'; object-src 'none';"},
	{"content_security_policy_report_only", "contentSecurityPolicyReportOnly", ""},
	{"x_content_type_options", "xContentTypeOptions", "nosniff"},
	{"x_robots_tag", "xRobotsTag", "none"},
	{"strict_transport_security", "strictTransportSecurity", "max-age=31536000; includeSubDomains"},
	{"referrer_policy", "referrerPolicy", "no-referrer"},
}

func (r *realmResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_realm"
}

func (r *realmResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	// Optional attributes that Keycloak fills in when they are not set.
	computedString := func(desc string, validators ...validator.String) schema.StringAttribute {
		return schema.StringAttribute{
			Optional: true, Computed: true, Description: desc, Validators: validators,
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
		}
	}
	computedBool := func(desc string) schema.BoolAttribute {
		return schema.BoolAttribute{
			Optional: true, Computed: true, Description: desc,
			PlanModifiers: []planmodifier.Bool{boolplanmodifier.UseStateForUnknown()},
		}
	}
	intDefault := func(def int64, desc string) schema.Int64Attribute {
		return schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(def), Description: desc}
	}

	headerAttrs := map[string]schema.Attribute{}
	for _, h := range securityHeaderKeys {
		headerAttrs[h.attr] = schema.StringAttribute{
			Optional: true, Computed: true, Default: stringdefault.StaticString(h.def),
			Description: "Value of the " + h.key + " browser security header. Default " + `"` + h.def + `".`,
		}
	}

	resp.Schema = schema.Schema{
		Description: "A Keycloak realm. Its id is the realm name, which is what other resources take as realm_id.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"realm": schema.StringAttribute{
				Required:      true,
				Description:   "Realm name; also used as the realm's internal id.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"enabled": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				Description: "Default true.",
			},
			"display_name":         schema.StringAttribute{Optional: true},
			"registration_allowed": computedBool("Show a registration link on the login page."),
			"ssl_required": computedString("all, external or none.",
				stringvalidator.OneOf("all", "external", "none")),
			"access_token_lifespan":       computedString("Go duration, e.g. \"5m0s\".", durationValidator{}),
			"sso_session_idle_timeout":    computedString("Go duration, e.g. \"30m0s\".", durationValidator{}),
			"sso_session_max_lifespan":    computedString("Go duration, e.g. \"10h0m0s\".", durationValidator{}),
			"default_signature_algorithm": computedString("e.g. RS256."),
			"revoke_refresh_token":        computedBool("Revoke refresh tokens once used."),
		},
		Blocks: map[string]schema.Block{
			"security_defenses": schema.ListNestedBlock{
				Validators: []validator.List{listvalidator.SizeAtMost(1)},
				NestedObject: schema.NestedBlockObject{
					Blocks: map[string]schema.Block{
						"headers": schema.ListNestedBlock{
							Description:  "Browser security headers. When omitted Keycloak's values are left alone.",
							Validators:   []validator.List{listvalidator.SizeAtMost(1)},
							NestedObject: schema.NestedBlockObject{Attributes: headerAttrs},
						},
						"brute_force_detection": schema.ListNestedBlock{
							Description: "Brute force detection; when omitted it is turned off.",
							Validators:  []validator.List{listvalidator.SizeAtMost(1)},
							NestedObject: schema.NestedBlockObject{
								Attributes: map[string]schema.Attribute{
									"permanent_lockout": schema.BoolAttribute{
										Optional: true, Computed: true, Default: booldefault.StaticBool(false),
									},
									"max_login_failures":               intDefault(30, "Failures before a wait is imposed."),
									"wait_increment_seconds":           intDefault(60, "Lockout added per threshold reached."),
									"quick_login_check_milli_seconds":  intDefault(1000, "Failures closer than this count as quick."),
									"minimum_quick_login_wait_seconds": intDefault(60, "Wait after a quick login failure."),
									"max_failure_wait_seconds":         intDefault(900, "Longest temporary lockout."),
									"failure_reset_time_seconds":       intDefault(43200, "When the failure count is reset."),
								},
							},
						},
					},
				},
			},
		},
	}
}

func (r *realmResource) toAPI(m *realmModel) (*keycloak.Realm, diag.Diagnostics) {
	var diags diag.Diagnostics
	rep := &keycloak.Realm{
		ID:                        m.Realm.ValueString(),
		Realm:                     m.Realm.ValueString(),
		Enabled:                   boolPtr(m.Enabled),
		DisplayName:               clearableString(m.DisplayName),
		RegistrationAllowed:       boolPtr(m.RegistrationAllowed),
		SSLRequired:               stringPtr(m.SSLRequired),
		DefaultSignatureAlgorithm: stringPtr(m.DefaultSignatureAlgorithm),
		RevokeRefreshToken:        boolPtr(m.RevokeRefreshToken),
	}
	for _, d := range []struct {
		attr string
		in   types.String
		out  **int64
	}{
		{"access_token_lifespan", m.AccessTokenLifespan, &rep.AccessTokenLifespan},
		{"sso_session_idle_timeout", m.SSOSessionIdleTimeout, &rep.SSOSessionIdleTimeout},
		{"sso_session_max_lifespan", m.SSOSessionMaxLifespan, &rep.SSOSessionMaxLifespan},
	} {
		secs, err := durationSeconds(d.in)
		if err != nil {
			diags.AddAttributeError(path.Root(d.attr), "Invalid duration", err.Error())
		}
		*d.out = secs
	}

	// No brute_force_detection block means brute force detection is off.
	protected := len(m.SecurityDefenses) == 1 && len(m.SecurityDefenses[0].BruteForceDetection) == 1
	rep.BruteForceProtected = &protected
	if len(m.SecurityDefenses) == 1 {
		sd := m.SecurityDefenses[0]
		if protected {
			bf := sd.BruteForceDetection[0]
			rep.PermanentLockout = boolPtr(bf.PermanentLockout)
			rep.FailureFactor = int64Ptr(bf.MaxLoginFailures)
			rep.WaitIncrementSeconds = int64Ptr(bf.WaitIncrementSeconds)
			rep.QuickLoginCheckMilliSeconds = int64Ptr(bf.QuickLoginCheckMilliSeconds)
			rep.MinimumQuickLoginWait = int64Ptr(bf.MinimumQuickLoginWaitSeconds)
			rep.MaxFailureWaitSeconds = int64Ptr(bf.MaxFailureWaitSeconds)
			rep.MaxDeltaTimeSeconds = int64Ptr(bf.FailureResetTimeSeconds)
		}
		if len(sd.Headers) == 1 {
			values := sd.Headers[0].values()
			rep.BrowserSecurityHeaders = map[string]string{}
			for i, h := range securityHeaderKeys {
				rep.BrowserSecurityHeaders[h.key] = values[i].ValueString()
			}
		}
	}
	return rep, diags
}

func (h *securityHeadersModel) values() []*types.String {
	return []*types.String{
		&h.XFrameOptions, &h.ContentSecurityPolicy, &h.ContentSecurityPolicyReportOnly,
		&h.XContentTypeOptions, &h.XRobotsTag, &h.StrictTransportSecurity, &h.ReferrerPolicy,
	}
}

// fromAPI copies Keycloak's answer into m. prior is the plan or state that
// came in, used to keep optional blocks and duration spellings stable.
func (r *realmResource) fromAPI(rep *keycloak.Realm, prior *realmModel) realmModel {
	m := realmModel{
		ID:                        types.StringValue(rep.Realm),
		Realm:                     types.StringValue(rep.Realm),
		Enabled:                   derefBool(rep.Enabled),
		DisplayName:               optionalString(prior.DisplayName, derefString(rep.DisplayName)),
		RegistrationAllowed:       derefBool(rep.RegistrationAllowed),
		SSLRequired:               types.StringValue(derefString(rep.SSLRequired)),
		AccessTokenLifespan:       durationValue(prior.AccessTokenLifespan, rep.AccessTokenLifespan),
		SSOSessionIdleTimeout:     durationValue(prior.SSOSessionIdleTimeout, rep.SSOSessionIdleTimeout),
		SSOSessionMaxLifespan:     durationValue(prior.SSOSessionMaxLifespan, rep.SSOSessionMaxLifespan),
		DefaultSignatureAlgorithm: types.StringValue(derefString(rep.DefaultSignatureAlgorithm)),
		RevokeRefreshToken:        derefBool(rep.RevokeRefreshToken),
	}

	var sd securityDefensesModel
	if rep.BruteForceProtected != nil && *rep.BruteForceProtected {
		sd.BruteForceDetection = []bruteForceModel{{
			PermanentLockout:             derefBool(rep.PermanentLockout),
			MaxLoginFailures:             derefInt64(rep.FailureFactor),
			WaitIncrementSeconds:         derefInt64(rep.WaitIncrementSeconds),
			QuickLoginCheckMilliSeconds:  derefInt64(rep.QuickLoginCheckMilliSeconds),
			MinimumQuickLoginWaitSeconds: derefInt64(rep.MinimumQuickLoginWait),
			MaxFailureWaitSeconds:        derefInt64(rep.MaxFailureWaitSeconds),
			FailureResetTimeSeconds:      derefInt64(rep.MaxDeltaTimeSeconds),
		}}
	}
	// Keycloak always has headers; show them only when they are managed.
	if len(prior.SecurityDefenses) == 1 && len(prior.SecurityDefenses[0].Headers) == 1 {
		var hm securityHeadersModel
		for i, v := range hm.values() {
			*v = types.StringValue(rep.BrowserSecurityHeaders[securityHeaderKeys[i].key])
		}
		sd.Headers = []securityHeadersModel{hm}
	}
	if sd.BruteForceDetection != nil || sd.Headers != nil {
		m.SecurityDefenses = []securityDefensesModel{sd}
	}
	return m
}

func (r *realmResource) read(ctx context.Context, name string, prior *realmModel) (realmModel, error) {
	var rep keycloak.Realm
	if err := r.client.Get(ctx, keycloak.Path("realms", name), &rep); err != nil {
		return realmModel{}, err
	}
	return r.fromAPI(&rep, prior), nil
}

func (r *realmResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan realmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	rep, diags := r.toAPI(&plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if _, err := r.client.Post(ctx, keycloak.Path("realms"), rep); err != nil {
		resp.Diagnostics.AddError("Creating realm failed", err.Error())
		return
	}
	state, err := r.read(ctx, rep.Realm, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading realm after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior realmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, err := r.read(ctx, prior.ID.ValueString(), &prior)
	if err != nil {
		notFoundRemoves(ctx, err, resp, "realm")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan realmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	rep, diags := r.toAPI(&plan)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	rep.ID = "" // the internal id cannot change; realms not created here may have a UUID
	if err := r.client.Put(ctx, keycloak.Path("realms", rep.Realm), rep); err != nil {
		resp.Diagnostics.AddError("Updating realm failed", err.Error())
		return
	}
	state, err := r.read(ctx, rep.Realm, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading realm after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *realmResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state realmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.Delete(ctx, keycloak.Path("realms", state.ID.ValueString()), nil)
	if err != nil && !keycloak.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting realm failed", err.Error())
	}
}

// ImportState takes the realm name.
func (r *realmResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}
