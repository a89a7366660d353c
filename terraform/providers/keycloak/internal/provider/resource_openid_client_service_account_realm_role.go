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
	_ resource.ResourceWithConfigure   = (*serviceAccountRealmRoleResource)(nil)
	_ resource.ResourceWithImportState = (*serviceAccountRealmRoleResource)(nil)
)

// serviceAccountRealmRoleResource maps one realm role to a client's service
// account user.
type serviceAccountRealmRoleResource struct{ clientHolder }

func newServiceAccountRealmRoleResource() resource.Resource {
	return &serviceAccountRealmRoleResource{}
}

type serviceAccountRealmRoleModel struct {
	ID                   types.String `tfsdk:"id"`
	RealmID              types.String `tfsdk:"realm_id"`
	ServiceAccountUserID types.String `tfsdk:"service_account_user_id"`
	Role                 types.String `tfsdk:"role"`
}

func (r *serviceAccountRealmRoleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_openid_client_service_account_realm_role"
}

func (r *serviceAccountRealmRoleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Grants a realm role to a client's service account. id is {service_account_user_id}/{role id}.",
		Attributes: map[string]schema.Attribute{
			"id":                      idAttribute(),
			"realm_id":                requiredReplaceString("Realm of the client and the role."),
			"service_account_user_id": requiredReplaceString("service_account_user_id of the keycloak_openid_client."),
			"role":                    requiredReplaceString("Name of the realm role."),
		},
	}
}

func (r *serviceAccountRealmRoleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan serviceAccountRealmRoleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, userID, name := plan.RealmID.ValueString(), plan.ServiceAccountUserID.ValueString(), plan.Role.ValueString()
	role, err := lookupRole(ctx, r.client, realm, "", name)
	if err != nil {
		resp.Diagnostics.AddError("Looking up realm role "+name+" failed", err.Error())
		return
	}
	if err := addRoleMapping(ctx, r.client, realm, userID, "", role); err != nil {
		resp.Diagnostics.AddError("Granting realm role "+name+" failed", err.Error())
		return
	}
	plan.ID = types.StringValue(userID + "/" + role.ID)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountRealmRoleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state serviceAccountRealmRoleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	role, err := findRoleMapping(ctx, r.client, state.RealmID.ValueString(), state.ServiceAccountUserID.ValueString(),
		"", roleIDFromMappingID(state.ID.ValueString()))
	if err != nil {
		notFoundRemoves(ctx, err, resp, "service account realm role")
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
func (r *serviceAccountRealmRoleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan serviceAccountRealmRoleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *serviceAccountRealmRoleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state serviceAccountRealmRoleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	role := &keycloak.Role{ID: roleIDFromMappingID(state.ID.ValueString()), Name: state.Role.ValueString()}
	if err := removeRoleMapping(ctx, r.client, state.RealmID.ValueString(), state.ServiceAccountUserID.ValueString(), "", role); err != nil {
		resp.Diagnostics.AddError("Revoking realm role "+role.Name+" failed", err.Error())
	}
}

// ImportState takes "{realm}/{service account user id}/{role id}".
func (r *serviceAccountRealmRoleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := splitImportID(req.ID, 3, "{realm}/{service account user id}/{role id}")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("service_account_user_id"), parts[1])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[1]+"/"+parts[2])...)
}
