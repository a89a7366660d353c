package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure        = (*hardcodedClaimMapperResource)(nil)
	_ resource.ResourceWithConfigValidators = (*hardcodedClaimMapperResource)(nil)
	_ resource.ResourceWithImportState      = (*hardcodedClaimMapperResource)(nil)
)

// hardcodedClaimMapperResource puts a fixed claim into tokens.
type hardcodedClaimMapperResource struct{ clientHolder }

func newHardcodedClaimMapperResource() resource.Resource { return &hardcodedClaimMapperResource{} }

type hardcodedClaimMapperModel struct {
	ID               types.String `tfsdk:"id"`
	RealmID          types.String `tfsdk:"realm_id"`
	ClientID         types.String `tfsdk:"client_id"`
	ClientScopeID    types.String `tfsdk:"client_scope_id"`
	Name             types.String `tfsdk:"name"`
	ClaimName        types.String `tfsdk:"claim_name"`
	ClaimValue       types.String `tfsdk:"claim_value"`
	ClaimValueType   types.String `tfsdk:"claim_value_type"`
	AddToIDToken     types.Bool   `tfsdk:"add_to_id_token"`
	AddToAccessToken types.Bool   `tfsdk:"add_to_access_token"`
	AddToUserinfo    types.Bool   `tfsdk:"add_to_userinfo"`
}

func (m *hardcodedClaimMapperModel) parent() mapperParent {
	return mapperParent{RealmID: m.RealmID, ClientID: m.ClientID, ClientScopeID: m.ClientScopeID}
}

func (r *hardcodedClaimMapperResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_openid_hardcoded_claim_protocol_mapper"
}

func (r *hardcodedClaimMapperResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := mapperParentAttributes()
	attrs["claim_name"] = schema.StringAttribute{Required: true, Description: "Claim name; dots nest (a.b)."}
	attrs["claim_value"] = schema.StringAttribute{Required: true}
	attrs["claim_value_type"] = schema.StringAttribute{
		Optional: true, Computed: true, Default: stringdefault.StaticString("String"),
		Description: "String, JSON, long, int or boolean. Default String.",
		Validators:  []validator.String{stringvalidator.OneOf("String", "JSON", "long", "int", "boolean")},
	}
	for _, name := range []string{"add_to_id_token", "add_to_access_token", "add_to_userinfo"} {
		attrs[name] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true), Description: "Default true."}
	}
	resp.Schema = schema.Schema{
		Description: "An oidc-hardcoded-claim-mapper protocol mapper.",
		Attributes:  attrs,
	}
}

func (r *hardcodedClaimMapperResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("client_id"), path.MatchRoot("client_scope_id")),
	}
}

func (r *hardcodedClaimMapperResource) toAPI(m *hardcodedClaimMapperModel) *keycloak.ProtocolMapper {
	return &keycloak.ProtocolMapper{
		ID:             m.ID.ValueString(),
		Name:           m.Name.ValueString(),
		Protocol:       "openid-connect",
		ProtocolMapper: "oidc-hardcoded-claim-mapper",
		Config: map[string]string{
			"claim.name":           m.ClaimName.ValueString(),
			"claim.value":          m.ClaimValue.ValueString(),
			"jsonType.label":       m.ClaimValueType.ValueString(),
			"id.token.claim":       configBool(m.AddToIDToken),
			"access.token.claim":   configBool(m.AddToAccessToken),
			"userinfo.token.claim": configBool(m.AddToUserinfo),
		},
	}
}

func (r *hardcodedClaimMapperResource) read(ctx context.Context, prior *hardcodedClaimMapperModel) (hardcodedClaimMapperModel, error) {
	rep, err := getMapper(ctx, r.client, prior.parent(), prior.ID.ValueString())
	if err != nil {
		return hardcodedClaimMapperModel{}, err
	}
	return hardcodedClaimMapperModel{
		ID:               types.StringValue(rep.ID),
		RealmID:          prior.RealmID,
		ClientID:         prior.ClientID,
		ClientScopeID:    prior.ClientScopeID,
		Name:             types.StringValue(rep.Name),
		ClaimName:        types.StringValue(rep.Config["claim.name"]),
		ClaimValue:       types.StringValue(rep.Config["claim.value"]),
		ClaimValueType:   types.StringValue(rep.Config["jsonType.label"]),
		AddToIDToken:     boolFromConfig(rep.Config, "id.token.claim"),
		AddToAccessToken: boolFromConfig(rep.Config, "access.token.claim"),
		AddToUserinfo:    boolFromConfig(rep.Config, "userinfo.token.claim"),
	}, nil
}

func (r *hardcodedClaimMapperResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan hardcodedClaimMapperModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := createMapper(ctx, r.client, plan.parent(), r.toAPI(&plan))
	if err != nil {
		resp.Diagnostics.AddError("Creating hardcoded claim mapper "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	plan.ID = types.StringValue(id)
	state, err := r.read(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading hardcoded claim mapper after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *hardcodedClaimMapperResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior hardcodedClaimMapperModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, err := r.read(ctx, &prior)
	if err != nil {
		notFoundRemoves(ctx, err, resp, "hardcoded claim mapper")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *hardcodedClaimMapperResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan hardcodedClaimMapperModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := updateMapper(ctx, r.client, plan.parent(), r.toAPI(&plan)); err != nil {
		resp.Diagnostics.AddError("Updating hardcoded claim mapper "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	state, err := r.read(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading hardcoded claim mapper after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *hardcodedClaimMapperResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state hardcodedClaimMapperModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := deleteMapper(ctx, r.client, state.parent(), state.ID.ValueString()); err != nil {
		resp.Diagnostics.AddError("Deleting hardcoded claim mapper failed", err.Error())
	}
}

func (r *hardcodedClaimMapperResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importMapper(ctx, req, resp)
}
