package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure        = (*audienceMapperResource)(nil)
	_ resource.ResourceWithConfigValidators = (*audienceMapperResource)(nil)
	_ resource.ResourceWithImportState      = (*audienceMapperResource)(nil)
)

// audienceMapperResource adds a client id or a custom string to the aud claim.
type audienceMapperResource struct{ clientHolder }

func newAudienceMapperResource() resource.Resource { return &audienceMapperResource{} }

type audienceMapperModel struct {
	ID                      types.String `tfsdk:"id"`
	RealmID                 types.String `tfsdk:"realm_id"`
	ClientID                types.String `tfsdk:"client_id"`
	ClientScopeID           types.String `tfsdk:"client_scope_id"`
	Name                    types.String `tfsdk:"name"`
	IncludedClientAudience  types.String `tfsdk:"included_client_audience"`
	IncludedCustomAudience  types.String `tfsdk:"included_custom_audience"`
	AddToIDToken            types.Bool   `tfsdk:"add_to_id_token"`
	AddToAccessToken        types.Bool   `tfsdk:"add_to_access_token"`
	AddToTokenIntrospection types.Bool   `tfsdk:"add_to_token_introspection"`
}

func (m *audienceMapperModel) parent() mapperParent {
	return mapperParent{RealmID: m.RealmID, ClientID: m.ClientID, ClientScopeID: m.ClientScopeID}
}

func (r *audienceMapperResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_openid_audience_protocol_mapper"
}

func (r *audienceMapperResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := mapperParentAttributes()
	attrs["included_client_audience"] = schema.StringAttribute{
		Optional: true, Description: "client_id (not internal id) of a client to add to aud.",
	}
	attrs["included_custom_audience"] = schema.StringAttribute{
		Optional: true, Description: "Custom string to add to aud.",
	}
	for _, name := range []string{"add_to_id_token", "add_to_access_token", "add_to_token_introspection"} {
		attrs[name] = schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true), Description: "Default true."}
	}
	resp.Schema = schema.Schema{
		Description: "An oidc-audience-mapper protocol mapper.",
		Attributes:  attrs,
	}
}

func (r *audienceMapperResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.ExactlyOneOf(path.MatchRoot("client_id"), path.MatchRoot("client_scope_id")),
		resourcevalidator.ExactlyOneOf(path.MatchRoot("included_client_audience"), path.MatchRoot("included_custom_audience")),
	}
}

func (r *audienceMapperResource) toAPI(m *audienceMapperModel) *keycloak.ProtocolMapper {
	config := map[string]string{
		"id.token.claim":            configBool(m.AddToIDToken),
		"access.token.claim":        configBool(m.AddToAccessToken),
		"introspection.token.claim": configBool(m.AddToTokenIntrospection),
	}
	if v := m.IncludedClientAudience.ValueString(); v != "" {
		config["included.client.audience"] = v
	}
	if v := m.IncludedCustomAudience.ValueString(); v != "" {
		config["included.custom.audience"] = v
	}
	return &keycloak.ProtocolMapper{
		ID:             m.ID.ValueString(),
		Name:           m.Name.ValueString(),
		Protocol:       "openid-connect",
		ProtocolMapper: "oidc-audience-mapper",
		Config:         config,
	}
}

func (r *audienceMapperResource) read(ctx context.Context, prior *audienceMapperModel) (audienceMapperModel, error) {
	rep, err := getMapper(ctx, r.client, prior.parent(), prior.ID.ValueString())
	if err != nil {
		return audienceMapperModel{}, err
	}
	return audienceMapperModel{
		ID:                      types.StringValue(rep.ID),
		RealmID:                 prior.RealmID,
		ClientID:                prior.ClientID,
		ClientScopeID:           prior.ClientScopeID,
		Name:                    types.StringValue(rep.Name),
		IncludedClientAudience:  optionalString(types.StringNull(), rep.Config["included.client.audience"]),
		IncludedCustomAudience:  optionalString(types.StringNull(), rep.Config["included.custom.audience"]),
		AddToIDToken:            boolFromConfig(rep.Config, "id.token.claim"),
		AddToAccessToken:        boolFromConfig(rep.Config, "access.token.claim"),
		AddToTokenIntrospection: boolFromConfig(rep.Config, "introspection.token.claim"),
	}, nil
}

func (r *audienceMapperResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan audienceMapperModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := createMapper(ctx, r.client, plan.parent(), r.toAPI(&plan))
	if err != nil {
		resp.Diagnostics.AddError("Creating audience mapper "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	plan.ID = types.StringValue(id)
	state, err := r.read(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading audience mapper after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *audienceMapperResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior audienceMapperModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, err := r.read(ctx, &prior)
	if err != nil {
		notFoundRemoves(ctx, err, resp, "audience mapper")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *audienceMapperResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan audienceMapperModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := updateMapper(ctx, r.client, plan.parent(), r.toAPI(&plan)); err != nil {
		resp.Diagnostics.AddError("Updating audience mapper "+plan.Name.ValueString()+" failed", err.Error())
		return
	}
	state, err := r.read(ctx, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading audience mapper after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *audienceMapperResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state audienceMapperModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := deleteMapper(ctx, r.client, state.parent(), state.ID.ValueString()); err != nil {
		resp.Diagnostics.AddError("Deleting audience mapper failed", err.Error())
	}
}

func (r *audienceMapperResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importMapper(ctx, req, resp)
}
