package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

var (
	_ resource.ResourceWithConfigure   = (*roleResource)(nil)
	_ resource.ResourceWithImportState = (*roleResource)(nil)
)

type roleResource struct{ clientHolder }

func newRoleResource() resource.Resource { return &roleResource{} }

type roleModel struct {
	ID             types.String `tfsdk:"id"`
	RealmID        types.String `tfsdk:"realm_id"`
	ClientID       types.String `tfsdk:"client_id"`
	Name           types.String `tfsdk:"name"`
	Description    types.String `tfsdk:"description"`
	CompositeRoles types.Set    `tfsdk:"composite_roles"`
}

func (r *roleResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_role"
}

func (r *roleResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		Description: "A realm role, or a client role when client_id is set.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"realm_id": schema.StringAttribute{Required: true, PlanModifiers: replace},
			"client_id": schema.StringAttribute{
				Optional: true, PlanModifiers: replace,
				Description: "Internal id of the client owning the role; omit for a realm role.",
			},
			"name":        schema.StringAttribute{Required: true},
			"description": schema.StringAttribute{Optional: true},
			"composite_roles": schema.SetAttribute{
				Optional: true, ElementType: types.StringType,
				Description: "Ids of the roles this role includes.",
			},
		},
	}
}

// rolesPath is .../roles of the realm, or of the client when clientID is set.
func rolesPath(realm, clientID string, rest ...string) string {
	segments := []string{"realms", realm, "roles"}
	if clientID != "" {
		segments = []string{"realms", realm, "clients", clientID, "roles"}
	}
	return keycloak.Path(append(segments, rest...)...)
}

// lookupRole finds a realm role (clientID == "") or client role by name.
func lookupRole(ctx context.Context, c *keycloak.Client, realm, clientID, name string) (*keycloak.Role, error) {
	var role keycloak.Role
	if err := c.Get(ctx, rolesPath(realm, clientID, name), &role); err != nil {
		return nil, err
	}
	return &role, nil
}

func roleByIDPath(realm, id string, rest ...string) string {
	return keycloak.Path(append([]string{"realms", realm, "roles-by-id", id}, rest...)...)
}

func (r *roleResource) read(ctx context.Context, realm, id string, prior *roleModel) (roleModel, error) {
	var rep keycloak.Role
	if err := r.client.Get(ctx, roleByIDPath(realm, id), &rep); err != nil {
		return roleModel{}, err
	}
	var composites []keycloak.Role
	if err := r.client.Get(ctx, roleByIDPath(realm, id, "composites"), &composites); err != nil {
		return roleModel{}, err
	}
	ids := make([]string, 0, len(composites))
	for _, c := range composites {
		ids = append(ids, c.ID)
	}
	m := roleModel{
		ID:             types.StringValue(rep.ID),
		RealmID:        types.StringValue(realm),
		ClientID:       types.StringNull(),
		Name:           types.StringValue(rep.Name),
		Description:    optionalString(prior.Description, rep.Description),
		CompositeRoles: optionalStringSet(prior.CompositeRoles, ids),
	}
	if rep.ClientRole {
		m.ClientID = types.StringValue(rep.ContainerID)
	}
	return m, nil
}

// syncComposites adds and removes composites so the role has exactly want.
func (r *roleResource) syncComposites(ctx context.Context, realm, id string, want []string) error {
	var current []keycloak.Role
	if err := r.client.Get(ctx, roleByIDPath(realm, id, "composites"), &current); err != nil {
		return err
	}
	have := map[string]bool{}
	for _, c := range current {
		have[c.ID] = true
	}
	var add, remove []keycloak.Role
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w] = true
		if !have[w] {
			add = append(add, keycloak.Role{ID: w})
		}
	}
	for _, c := range current {
		if !wanted[c.ID] {
			remove = append(remove, keycloak.Role{ID: c.ID, Name: c.Name})
		}
	}
	if len(add) > 0 {
		if _, err := r.client.Post(ctx, roleByIDPath(realm, id, "composites"), add); err != nil {
			return fmt.Errorf("adding composite roles: %w", err)
		}
	}
	if len(remove) > 0 {
		if err := r.client.Delete(ctx, roleByIDPath(realm, id, "composites"), remove); err != nil {
			return fmt.Errorf("removing composite roles: %w", err)
		}
	}
	return nil
}

func (r *roleResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan roleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	composites := stringSlice(ctx, plan.CompositeRoles, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, clientID, name := plan.RealmID.ValueString(), plan.ClientID.ValueString(), plan.Name.ValueString()
	rep := keycloak.Role{Name: name, Description: plan.Description.ValueString()}
	if _, err := r.client.Post(ctx, rolesPath(realm, clientID), rep); err != nil {
		resp.Diagnostics.AddError("Creating role "+name+" failed", err.Error())
		return
	}
	// The Location header of a new role names it, so look the id up.
	created, err := lookupRole(ctx, r.client, realm, clientID, name)
	if err != nil {
		resp.Diagnostics.AddError("Looking up new role "+name+" failed", err.Error())
		return
	}
	// Save the id at once so a failure below does not orphan the role.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), created.ID)...)
	if err := r.syncComposites(ctx, realm, created.ID, composites); err != nil {
		resp.Diagnostics.AddError("Setting composites of role "+name+" failed", err.Error())
		return
	}
	state, err := r.read(ctx, realm, created.ID, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading role after create failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *roleResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var prior roleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	state, err := r.read(ctx, prior.RealmID.ValueString(), prior.ID.ValueString(), &prior)
	if err != nil {
		notFoundRemoves(ctx, err, resp, "role")
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *roleResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan roleModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	composites := stringSlice(ctx, plan.CompositeRoles, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	realm, id := plan.RealmID.ValueString(), plan.ID.ValueString()
	rep := keycloak.Role{ID: id, Name: plan.Name.ValueString(), Description: plan.Description.ValueString()}
	if err := r.client.Put(ctx, roleByIDPath(realm, id), rep); err != nil {
		resp.Diagnostics.AddError("Updating role "+rep.Name+" failed", err.Error())
		return
	}
	if err := r.syncComposites(ctx, realm, id, composites); err != nil {
		resp.Diagnostics.AddError("Setting composites of role "+rep.Name+" failed", err.Error())
		return
	}
	state, err := r.read(ctx, realm, id, &plan)
	if err != nil {
		resp.Diagnostics.AddError("Reading role after update failed", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func (r *roleResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state roleModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.Delete(ctx, roleByIDPath(state.RealmID.ValueString(), state.ID.ValueString()), nil)
	if err != nil && !keycloak.IsNotFound(err) {
		resp.Diagnostics.AddError("Deleting role failed", err.Error())
	}
}

// ImportState takes "{realm}/{role id}".
func (r *roleResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	parts, err := splitImportID(req.ID, 2, "{realm}/{role id}")
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[1])...)
}
