package provider

import (
	"context"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"zerotrust/terraform-provider-keycloak/internal/keycloak"
)

// Code shared by the OpenID protocol mapper resources. A mapper belongs to
// either a client (client_id, the client's internal id) or a client scope
// (client_scope_id); exactly one of them is set.

// mapperParent is the part of every protocol mapper model that says where
// the mapper lives.
type mapperParent struct {
	RealmID       types.String
	ClientID      types.String
	ClientScopeID types.String
}

func (p mapperParent) modelsPath(rest ...string) string {
	segments := []string{"realms", p.RealmID.ValueString()}
	if !p.ClientID.IsNull() && p.ClientID.ValueString() != "" {
		segments = append(segments, "clients", p.ClientID.ValueString())
	} else {
		segments = append(segments, "client-scopes", p.ClientScopeID.ValueString())
	}
	segments = append(segments, "protocol-mappers", "models")
	return keycloak.Path(append(segments, rest...)...)
}

// mapperParentAttributes are the schema attributes for id and parent.
func mapperParentAttributes() map[string]schema.Attribute {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	return map[string]schema.Attribute{
		"id": schema.StringAttribute{
			Computed:      true,
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
		},
		"realm_id": schema.StringAttribute{Required: true, PlanModifiers: replace},
		"client_id": schema.StringAttribute{
			Optional: true, PlanModifiers: replace,
			Description: "Internal id of the client. Conflicts with client_scope_id.",
		},
		"client_scope_id": schema.StringAttribute{
			Optional: true, PlanModifiers: replace,
			Description: "Id of the client scope. Conflicts with client_id.",
		},
		"name": schema.StringAttribute{Required: true, Description: "Name of the mapper."},
	}
}

func createMapper(ctx context.Context, c *keycloak.Client, parent mapperParent, m *keycloak.ProtocolMapper) (string, error) {
	return c.Post(ctx, parent.modelsPath(), m)
}

func getMapper(ctx context.Context, c *keycloak.Client, parent mapperParent, id string) (*keycloak.ProtocolMapper, error) {
	var m keycloak.ProtocolMapper
	if err := c.Get(ctx, parent.modelsPath(id), &m); err != nil {
		return nil, err
	}
	return &m, nil
}

func updateMapper(ctx context.Context, c *keycloak.Client, parent mapperParent, m *keycloak.ProtocolMapper) error {
	return c.Put(ctx, parent.modelsPath(m.ID), m)
}

func deleteMapper(ctx context.Context, c *keycloak.Client, parent mapperParent, id string) error {
	err := c.Delete(ctx, parent.modelsPath(id), nil)
	if keycloak.IsNotFound(err) {
		return nil
	}
	return err
}

// importMapper accepts {realm}/client/{client id}/{mapper id} and
// {realm}/client-scope/{client scope id}/{mapper id}.
func importMapper(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	const format = "{realm}/client/{client id}/{mapper id} or {realm}/client-scope/{client scope id}/{mapper id}"
	parts, err := splitImportID(req.ID, 4, format)
	if err == nil && parts[1] != "client" && parts[1] != "client-scope" {
		err = errInvalidImport(req.ID, format)
	}
	if err != nil {
		resp.Diagnostics.AddError("Invalid import ID", err.Error())
		return
	}
	parentAttr := "client_id"
	if parts[1] == "client-scope" {
		parentAttr = "client_scope_id"
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("realm_id"), parts[0])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root(parentAttr), parts[2])...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), parts[3])...)
}

// Mapper config values are strings; booleans are "true"/"false".
func configBool(v types.Bool) string { return strconv.FormatBool(v.ValueBool()) }

func boolFromConfig(config map[string]string, key string) types.Bool {
	b, _ := strconv.ParseBool(config[key])
	return types.BoolValue(b)
}
