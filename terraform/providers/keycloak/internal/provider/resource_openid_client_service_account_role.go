package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure   = (*serviceAccountClientRoleResource)(nil)
	_ resource.ResourceWithImportState = (*serviceAccountClientRoleResource)(nil)
)

// serviceAccountClientRoleResource maps one client role to a client's
// service account user.
type serviceAccountClientRoleResource struct{ clientHolder }

func newServiceAccountClientRoleResource() resource.Resource {
	return &serviceAccountClientRoleResource{}
}

type serviceAccountClientRoleModel struct {
	ID                   types.String `tfsdk:"id"`
	RealmID              types.String `tfsdk:"realm_id"`
	ServiceAccountUserID types.String `tfsdk:"service_account_user_id"`
	ClientID             types.String `tfsdk:"client_id"`
	Role                 types.String `tfsdk:"role"`
}

func (r *serviceAccountClientRoleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_openid_client_service_account_role"
}

func (r *serviceAccountClientRoleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Grants a client role to a client's service account. id is {service_account_user_id}/{role id}.",
		Attributes: map[string]schema.Attribute{
			"id":                      idAttribute(),
			"realm_id":                requiredReplaceString("Realm of the clients and the role."),
			"service_account_user_id": requiredReplaceString("service_account_user_id of the keycloak_openid_client."),
			"client_id":               requiredReplaceString("Internal id of the client that owns the role."),
			"role":                    requiredReplaceString("Name of the client role."),
		},
	}
}

func (r *serviceAccountClientRoleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountClientRoleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, userID := plan.RealmID.ValueString(), plan.ServiceAccountUserID.ValueString()
	clientID, name := plan.ClientID.ValueString(), plan.Role.ValueString()
	role, err := lookupRole(ctx, r.client, realm, clientID, name)
	if err != nil {
		resp.Diagnostics.AddError("Looking up client role "+name+" failed", err.Error())
		return
	}
	if err := addRoleMapping(ctx, r.client, realm, userID, clientID, role); err != nil {
		resp.Diagnostics.AddError("Granting client role "+name+" failed", err.Error())
		return
	}
	plan.ID = types.StringValue(userID + "/" + role.ID)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountClientRoleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceAccountClientRoleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	role, err := findRoleMapping(ctx, r.client, state.RealmID.ValueString(), state.ServiceAccountUserID.ValueString(),
		state.ClientID.ValueString(), roleIDFromMappingID(state.ID.ValueString()))
	if err != nil {
		notFoundRemoves(ctx, err, resp, "service account client role")
		return
	}
	if role == nil { // mapping removed outside Terraform
		resp.State.RemoveResource(ctx)
		return
	}
	state.Role = types.StringValue(role.Name)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// Update is never called: every argument forces replacement.
func (r *serviceAccountClientRoleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan serviceAccountClientRoleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountClientRoleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serviceAccountClientRoleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	role := &keycloak.Role{ID: roleIDFromMappingID(state.ID.ValueString()), Name: state.Role.ValueString()}
	err := removeRoleMapping(ctx, r.client, state.RealmID.ValueString(), state.ServiceAccountUserID.ValueString(),
		state.ClientID.ValueString(), role)
	if err != nil {
		resp.Diagnostics.AddError("Revoking client role "+role.Name+" failed", err.Error())
	}
}

// ImportState takes "{realm}/{service account user id}/{client internal id}/{role id}".
func (r *serviceAccountClientRoleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := splitImportID(req.ID, 4, "{realm}/{service account user id}/{client internal id}/{role id}")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("service_account_user_id"), parts[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("client_id"), parts[2])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[1]+"/"+parts[3])...)
}
